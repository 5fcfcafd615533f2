"""The parsers and row rules as they were before the parse-speed work: the oracle that
`tests/ingest/test_parse_oracle.py` holds the production parser to (same rows, same bytes,
same quarantine)."""

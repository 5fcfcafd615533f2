"""Project scripts: the demo, the portable-SQL check and the import contracts `make lint` runs."""

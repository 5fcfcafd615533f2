"""The warehouse dbt builds and everything that reads it as a whole: run results and QA
(warehouse.runs), the gate ledger (warehouse.gate_ledger), publish to the read-only serving
copy (warehouse.publish), the DuckDB plugin dbt loads (warehouse.dbt_plugin) and the BigQuery
side: lake upload and raw-table load (warehouse.gcs, warehouse.bigquery).
It imports `core` and `lake`, never the loaders, the trainer or the API.
"""

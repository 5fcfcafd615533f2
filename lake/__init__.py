"""The Parquet lake: dataset schemas (lake.schemas), the partition layout, its MANIFEST,
atomic whole-partition writes, quarantine and the one partition reader every consumer uses
(lake.store). It imports only `core`; loaders, the warehouse and the trainer import it.
"""

"""Vendor loaders that land raw responses and Hive-partitioned Parquet in the lake."""

from ingest.errors import (
    ChecksumMismatch,
    ConfigError,
    DataUnavailable,
    IngestError,
    IPBanned,
    MalformedResponse,
    NetworkUnavailable,
    NotFound,
    RateLimited,
    SchemaDrift,
    VendorHTTPError,
)
from ingest.lake import Lake, Manifest, PartitionKey
from ingest.schemas import DATASETS, Dataset

__all__ = [
    "DATASETS",
    "ChecksumMismatch",
    "ConfigError",
    "DataUnavailable",
    "Dataset",
    "IPBanned",
    "IngestError",
    "Lake",
    "MalformedResponse",
    "Manifest",
    "NetworkUnavailable",
    "NotFound",
    "PartitionKey",
    "RateLimited",
    "SchemaDrift",
    "VendorHTTPError",
]

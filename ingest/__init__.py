"""Vendor loaders that land raw responses and Hive-partitioned Parquet in the lake."""

from ingest._client import REPLAY_HEADER, ClientStats, Fetched, HttpClient
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
    "REPLAY_HEADER",
    "ChecksumMismatch",
    "ClientStats",
    "ConfigError",
    "DataUnavailable",
    "Dataset",
    "Fetched",
    "HttpClient",
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

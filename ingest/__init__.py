"""Vendor loaders that land raw responses and Hive-partitioned Parquet in the lake."""

from ingest._client import (
    REPLAY_HEADER,
    ClientConfig,
    ClientStats,
    Fetched,
    HttpClient,
    RetryPolicy,
    WeightBudget,
)
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

__all__ = [
    "REPLAY_HEADER",
    "ChecksumMismatch",
    "ClientConfig",
    "ClientStats",
    "ConfigError",
    "DataUnavailable",
    "Fetched",
    "HttpClient",
    "IPBanned",
    "IngestError",
    "MalformedResponse",
    "NetworkUnavailable",
    "NotFound",
    "RateLimited",
    "RetryPolicy",
    "SchemaDrift",
    "VendorHTTPError",
    "WeightBudget",
]

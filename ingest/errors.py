"""The ingest exception tree: every known failure is an IngestError with a readable message."""

from __future__ import annotations


class IngestError(Exception):
    """Base of every known ingest failure; the CLI shows its message without a traceback."""


class VendorHTTPError(IngestError):
    """A vendor answered with an error status (after retries, where retrying made sense)."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class NotFound(VendorHTTPError):
    """HTTP 404: the resource does not exist (archive loaders fall back to another source)."""


class RateLimited(VendorHTTPError):
    """HTTP 429 persisted past the retry budget."""


class IPBanned(VendorHTTPError):
    """HTTP 418: the vendor banned this IP; retrying would lengthen the ban."""

    def __init__(self, message: str, *, retry_after_s: float | None, url: str | None = None):
        super().__init__(message, status=418, url=url)
        self.retry_after_s = retry_after_s


class NetworkUnavailable(IngestError):
    """The vendor host cannot be reached at all (DNS, refused, no route)."""


class MalformedResponse(IngestError):
    """A response body that is not the shape the vendor documents."""


class SchemaDrift(MalformedResponse):
    """A vendor changed its row layout (columns added, removed or retyped)."""


class ChecksumMismatch(IngestError):
    """An archive file does not match its published .CHECKSUM."""


class DataUnavailable(IngestError):
    """The vendor cannot serve the requested range (e.g. open interest older than 30 days)."""


class ConfigError(IngestError):
    """An ingest configuration or argument is invalid."""

"""The ingest exception tree: every known failure is an IngestError with a readable message."""

from __future__ import annotations

from core import errors as core_errors


class IngestError(core_errors.BtcfsError):
    """Base of every known ingest failure; the CLI shows its message without a traceback."""


class VendorHTTPError(IngestError):
    """A vendor answered with an error status (after retries, where retrying made sense)."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class VendorError(IngestError):
    """Base of failures specific to one vendor's API (auth, throttling, envelope, drift).

    Messages are one line, start with the vendor's name and never hold a secret (the client
    redacts every registered key).
    """


class VendorKeyMissing(VendorError):
    """The vendor's key is not in the environment: the vendor is skipped, not failed."""


class VendorAuthError(VendorError, VendorHTTPError):
    """The vendor refused the key (HTTP 401, CoinAPI's 403, or an auth code in an envelope)."""


class VendorThrottled(VendorError, VendorHTTPError):
    """Throttled in a way the client cannot wait out: Alpha Vantage's `Information`/`Note`
    in an HTTP 200, or a business rate-limit code inside a vendor envelope."""


class VendorEnvelopeError(VendorError, VendorHTTPError):
    """The vendor's envelope says the call failed (CoinGlass `code` != "0", CryptoQuant's
    `status.code`, Alpha Vantage's `Error Message`), whatever the HTTP status."""


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

    hint = "No network? `make demo` runs the whole pipeline offline against the replay server."


class MalformedResponse(IngestError):
    """A response body that is not the shape the vendor documents."""


class ResponseTooLarge(MalformedResponse):
    """A body over the client's size cap: refused while reading, never parsed."""


class SchemaDrift(MalformedResponse, VendorError):
    """A vendor changed its row layout (columns added, removed or retyped)."""


class ChecksumMismatch(IngestError):
    """An archive file does not match its published .CHECKSUM."""


class DataUnavailable(IngestError):
    """The vendor cannot serve the requested range (e.g. open interest older than 30 days)."""


class ConfigError(IngestError, core_errors.ConfigError):
    """An ingest configuration or argument is invalid."""

"""Reaching BigQuery and GCS: the one place that checks the client library is installed,
probes an emulator endpoint before a Google client would retry it for minutes, builds the
client and turns its errors into one line. Importable without the `bigquery` extra.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from core.errors import BtcfsError

if TYPE_CHECKING:
    from google.cloud import bigquery

INSTALL_HINT = "pip install -e '.[bigquery]'"


def first_line(exc: BaseException) -> str:
    """An exception's first line (Google errors carry whole response bodies)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def require_bigquery(purpose: str, error: type[BtcfsError] = BtcfsError) -> None:
    """`error` unless google-cloud-bigquery is installed (the `bigquery` extra)."""
    if importlib.util.find_spec("google.cloud.bigquery") is None:
        raise error(f"{purpose} needs google-cloud-bigquery ({INSTALL_HINT})")


def reachable(url: str, what: str, error: type[BtcfsError] = BtcfsError) -> None:
    """`error` at once, in one line, when an emulator endpoint does not answer."""
    import httpx

    try:
        httpx.get(url, timeout=5.0)
    except httpx.HTTPError as exc:
        raise error(f"cannot reach the {what} endpoint {url}: {exc}") from None


def bigquery_client(
    project: str,
    api_endpoint: str | None = None,
    *,
    purpose: str,
    error: type[BtcfsError] = BtcfsError,
    **kwargs: Any,
) -> bigquery.Client:
    """A BigQuery client for `purpose`: application-default credentials, or anonymous ones
    on an emulator at `api_endpoint` (probed first). Every failure is one `error` line."""
    require_bigquery(purpose, error)
    if api_endpoint:
        reachable(api_endpoint, "BigQuery", error)
    from warehouse.bigquery import client

    try:
        return client(project, api_endpoint, **kwargs)
    except Exception as exc:  # google.auth's DefaultCredentialsError and kin
        raise error(f"cannot connect to BigQuery project {project}: {first_line(exc)}") from None

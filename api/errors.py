"""Domain errors of the API and the one place that maps them (and validation) to HTTP."""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

log = logging.getLogger("api")


class ApiError(Exception):
    """Base of every known failure; `status_code` and `extra` go into the response."""

    status_code = 500

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(ApiError):
    """A request the API will not read (an unserved Host, a JSON body nested too deep) or a
    job request that does not validate (unknown key, wrong type, a missing config file)."""

    status_code = 400


class Forbidden(ApiError):
    """A write from another site's page (its Origin is not this API's)."""

    status_code = 403


class UnsupportedMediaType(ApiError):
    """A request body that is not application/json."""

    status_code = 415


class TooManyRequests(ApiError):
    """One client holding more streams than it may."""

    status_code = 429


class NotFound(ApiError):
    """An unknown symbol, position or model (the valid values are listed)."""

    status_code = 404


class InvalidInput(ApiError):
    """A parameter or body that parses but makes no sense (start after end, unknown interval)."""

    status_code = 422


class Unauthorized(ApiError):
    status_code = 401


class Conflict(ApiError):
    """A state change that cannot happen twice (closing a closed position)."""

    status_code = 409


class Unavailable(ApiError):
    """Nothing published yet, or a pinned model that the registry no longer has."""

    status_code = 503


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error response: the HTTP status, what went wrong, and details such as the
    valid values of a parameter or the failing field."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


#: Longest string an error body repeats (a detail, a value in `extra`): input echoed back
#: is cut here, so a 60 KB query parameter does not come back as a 60 KB error.
MAX_ERROR_TEXT = 300


def _clipped(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_ERROR_TEXT else value[:MAX_ERROR_TEXT] + "… (cut)"
    if depth > 4:
        return None
    if isinstance(value, dict):
        return {_clipped(k, depth + 1): _clipped(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clipped(v, depth + 1) for v in value[:50]]
    return value


def _respond(status: int, detail: str, extra: Any) -> Response[ErrorBody]:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(
        ErrorBody(status_code=status, detail=_clipped(detail), extra=_clipped(extra) or None),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    return _respond(exc.status_code, exc.detail, exc.extra)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    # Unparseable or out-of-range input is 422 here (Litestar says 400); `extra` names the
    # field (`key`) and what was wrong with it.
    return _respond(422, exc.detail, exc.extra)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    return _respond(exc.status_code, exc.detail, exc.extra)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(500, "internal error", None)


def _unreadable(request: Request[Any, Any, Any], exc: duckdb.IOException) -> Response[ErrorBody]:
    # The published file is damaged or cut short on disk (DuckDB checks block checksums): the
    # service is unavailable until the next publish, and the reply says which file.
    services = request.app.state.get("services")
    path = getattr(getattr(services, "db", None), "path", "serve.duckdb")
    log.error("cannot read %s on %s %s: %s", path, request.method, request.url.path, exc)
    first = str(exc).splitlines()[0][:300]
    detail = f"the published warehouse {path} cannot be read ({first}): run `btcfs publish`"
    return _respond(503, detail, None)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _api_error,
    duckdb.IOException: _unreadable,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}

_DESCRIPTIONS = {
    400: "Unserved Host header, or a JSON body nested too deep",
    401: "Missing or wrong bearer token",
    403: "Cross-site write: the Origin is not this API's",
    404: "Unknown symbol, position or model (valid values in `extra`)",
    409: "Conflicting state change",
    413: "Request body too large",
    415: "Request body not application/json",
    422: "Invalid parameter or body (the field is named in `extra`)",
    429: "This client already holds the most streams it may",
    503: "Nothing published yet, or the pinned model is missing from the registry",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a handler can return."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[code],
                           generate_examples=False)
        for code in codes
    }  # fmt: skip

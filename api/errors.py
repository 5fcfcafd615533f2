"""Domain errors of the API and the one place that maps them (and validation) to HTTP."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, TypeVar

import duckdb
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.types import ExceptionHandlersMap

T = TypeVar("T")

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
    """Every error response, as RFC 9457 problem details (`application/problem+json`): `type`
    (about:blank: the status says it all), `title` (the status's phrase), `status`, `detail`
    (what went wrong), and as extension members `extra` (the field, `key`, and its valid
    values, `valid`, where there are some) and `status_code` (= `status`, kept for clients
    of earlier versions)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None
    status_code: int

    @classmethod
    def of(cls, status: int, detail: str, extra: Any = None) -> ErrorBody:
        return cls(
            title=HTTPStatus(status).phrase,
            status=status,
            detail=detail,
            extra=extra,
            status_code=status,
        )


#: The media type of every error (RFC 9457).
PROBLEM_JSON = "application/problem+json"


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
        ErrorBody.of(status, _clipped(detail), _clipped(extra) or None),
        status_code=status,
        media_type=PROBLEM_JSON,
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
    409: "Conflicting state change (a closed position; a reused client_order_id; a fill at "
    "a stale price without accept_stale)",
    413: "Request body too large",
    415: "Request body not application/json",
    422: "Invalid parameter or body (the field is named in `extra`)",
    429: "This client already holds the most streams it may",
    503: "Nothing published yet, or the pinned model is missing from the registry",
}


#: One real answer per status, as the API words it (the OpenAPI examples).
_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"detail": "this server does not serve Host 'evil.example'", "extra": None},
    401: {"detail": "missing or wrong bearer token", "extra": None},
    403: {"detail": "cross-site write refused: Origin https://evil.example", "extra": None},
    404: {
        "detail": "unknown symbol 'SOLUSDT'",
        "extra": {"key": "symbol", "valid": ["BTCUSDT", "ETHUSDT"]},
    },
    409: {"detail": "position 7 is already closed", "extra": None},
    413: {"detail": "request body larger than 1048576 bytes", "extra": None},
    415: {"detail": "request body must be application/json", "extra": None},
    422: {
        "detail": "interval: '7m' is not one of 5m, 15m, 1h, 4h, 1d",
        "extra": {"key": "interval", "valid": ["5m", "15m", "1h", "4h", "1d"]},
    },
    429: {"detail": "this client already holds 4 streams", "extra": None},
    503: {"detail": "nothing published yet: run `btcfs publish`", "extra": None},
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a handler can return, each with an example
    (400 always: any request with a Host this server does not serve gets it)."""
    codes = tuple(dict.fromkeys((400, *codes)))
    return {
        code: ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS[code],
            media_type=PROBLEM_JSON,
            generate_examples=False,
            examples=[Example(summary=_DESCRIPTIONS[code],
                              value=msgspec.to_builtins(ErrorBody.of(code, **_EXAMPLES[code])))],
        )
        for code in codes
    }  # fmt: skip


async def strictly(request: Request[Any, Any, Any], kind: type[T]) -> T:
    """The body decoded again without Litestar's lenient conversions (which would take
    `"true"` or `0` for a boolean, `"100"` for a number): a value of the wrong type is a 422
    naming its field."""
    try:
        return msgspec.json.decode(await request.body(), type=kind, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid request: {exc}", key=_where(str(exc))) from None
    except msgspec.DecodeError as exc:  # not JSON at all (a body Litestar did not parse)
        raise BadRequest(f"request body is not JSON: {exc}", key="body") from None


def _where(message: str) -> str:
    found = re.search(r"at `\$\.?([^`]*)`", message)
    return found.group(1) or "body" if found else "body"

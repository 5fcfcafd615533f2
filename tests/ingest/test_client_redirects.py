"""HttpClient redirects, between real listeners on loopback: a redirect to another host is
followed without the vendor key (header, bearer or query); one within the origin keeps it."""

from __future__ import annotations

from typing import Any

import pytest

from ingest import ClientConfig, HttpClient, RetryPolicy
from ingest.errors import VendorHTTPError
from ingest.vendors import VENDORS
from ingest.vendors.base import build_client
from tests.ingest.recorder import Answer, Recorder

KEY = "vendor-key-3b9f1c7e5a2d-never-elsewhere"
OK = (200, {"Content-Type": "application/json"}, b'{"data": []}')


def ok(_: str) -> tuple[int, dict[str, str], bytes]:
    return OK


def redirect(location: str) -> tuple[int, dict[str, str], bytes]:
    return 302, {"Location": location}, b""


def fetch(vendor: str, answer: Answer, path: str) -> tuple[Recorder, Any]:
    """GET `path` from a listener answering with `answer`, through the vendor's own client."""
    with Recorder(answer=answer) as vendor_host:
        client = build_client(VENDORS[vendor], KEY, base_url=vendor_host.url)
        with client:
            _, fetched = client.get_json(path, {"symbol": "BTC"})
    return vendor_host, fetched


# Every vendor that takes a key (Binance's market data is public: it sends none).
KEYED = sorted(name for name, spec in VENDORS.items() if spec.env_key is not None)


@pytest.mark.parametrize("vendor", KEYED)
def test_a_redirect_to_another_host_carries_no_key(vendor: str) -> None:
    """CoinGlass' CG-API-KEY and CoinAPI's X-CoinAPI-Key used to follow a 302 anywhere."""
    with Recorder("127.0.0.2", ok) as foreign:
        vendor_host, fetched = fetch(vendor, lambda _: redirect(f"{foreign.url}/landing"), "/a")
    assert fetched.url.startswith(foreign.url)
    assert vendor_host.carried(KEY) == [KEY]  # the key was in use ...
    assert [seen.path for seen in foreign.seen] == ["/landing"]
    assert foreign.carried(KEY) == []  # ... and never left its host


def test_a_location_echoing_the_key_is_followed_without_it() -> None:
    """A vendor (or a host pretending to be one) that puts the key into the Location."""
    echo = f"/x?api_key={KEY}&series_id=DGS10&k={KEY}"
    with Recorder("127.0.0.2", ok) as foreign:
        fetch("fred", lambda _: redirect(foreign.url + echo), "/fred/series/observations")
    assert [seen.path for seen in foreign.seen] == ["/x?series_id=DGS10"]
    assert foreign.carried(KEY) == []


def test_localhost_is_another_origin_than_127_0_0_1() -> None:
    """Same machine, other name: the origin is the name, so the key stays behind."""
    with Recorder("127.0.0.1", ok) as target:
        fetch("coinapi", lambda _: redirect(f"http://localhost:{target.port}/moved"), "/v1")
    assert [seen.path for seen in target.seen] == ["/moved"]
    assert target.carried(KEY) == []


def test_a_redirect_within_the_origin_keeps_the_key() -> None:
    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        return OK if path.startswith("/v2") else redirect("/v2" + path)

    vendor_host, _ = fetch("coinglass", answer, "/api/price")
    assert [seen.path for seen in vendor_host.seen] == [
        "/api/price?symbol=BTC",
        "/v2/api/price?symbol=BTC",
    ]
    assert all(dict(seen.headers).get("CG-API-KEY") == KEY for seen in vendor_host.seen)


def test_endless_redirects_fail_with_a_clear_error() -> None:
    with Recorder(answer=lambda _: redirect("/again")) as loop:
        client = HttpClient(
            loop.url, vendor="looping", config=ClientConfig(retry=RetryPolicy(max_retries=0))
        )
        with client, pytest.raises(VendorHTTPError, match="TooManyRedirects"):
            client.get("/start")
    assert 2 < len(loop.seen) <= 22

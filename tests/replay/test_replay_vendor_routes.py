"""The replay server's vendor plumbing: the X-Btcfs-Replay header and mounted vendor routes."""

from __future__ import annotations

import httpx
import pytest

from replay import ReplayServer
from replay.rest import Reply
from replay.server import REPLAY_HEADER
from replay.vendors import ReplayContext, VendorRequest, VendorRoutes, json_reply

NOW = "2024-02-20T10:30:30Z"


@pytest.mark.parametrize("path", ["/api/v3/ping", "/fapi/v1/klines", "/nope", "/__replay/stats"])
def test_every_binance_response_says_it_is_synthetic(synthetic_url: str, path: str) -> None:
    response = httpx.get(f"{synthetic_url}{path}")
    assert response.headers[REPLAY_HEADER] == "synthetic"


def test_a_recorded_market_says_recorded(real_market) -> None:
    with ReplayServer(real_market) as url:
        assert httpx.get(f"{url}/api/v3/ping").headers[REPLAY_HEADER] == "recorded"


class EchoRoutes(VendorRoutes):
    name = "echo"
    prefixes = ("/echo/",)

    def handle(self, request: VendorRequest) -> Reply:
        if not request.headers.get("x-echo-key"):
            return json_reply(401, {"message": "no key"})
        return json_reply(200, {"path": request.path, "now": request.now_us})

    def fault_reply(self, status: int) -> Reply:
        return json_reply(status, {"message": f"echo {status}"})

    def vendor_fault(self, request: VendorRequest) -> Reply:
        return json_reply(200, {"message": "echo business error"})


@pytest.fixture
def echo_server(synthetic_market, monkeypatch: pytest.MonkeyPatch):
    import replay.server as server_module

    def build(ctx: ReplayContext) -> list[VendorRoutes]:
        return [EchoRoutes(ctx)]

    monkeypatch.setattr(server_module, "build_routes", build)
    return synthetic_market


def test_vendor_routes_are_mounted_with_clock_auth_and_their_own_fault_bodies(echo_server):
    with ReplayServer(echo_server, now=NOW) as url:
        assert httpx.get(f"{url}/echo/x").status_code == 401
        ok = httpx.get(f"{url}/echo/x", headers={"X-Echo-Key": "k"})
        assert ok.status_code == 200 and ok.headers[REPLAY_HEADER] == "synthetic"
        assert ok.json()["now"] == 1708425030000000
    with ReplayServer(echo_server, now=NOW, faults="5xx=1") as url:
        failed = httpx.get(f"{url}/echo/x", headers={"X-Echo-Key": "k"})
        assert failed.status_code in (500, 502, 503)
        assert failed.json()["message"].startswith("echo ")
    with ReplayServer(echo_server, now=NOW, faults="vendor=1") as url:
        business = httpx.get(f"{url}/echo/x", headers={"X-Echo-Key": "k"})
        assert business.json() == {"message": "echo business error"}
        # Binance paths have no vendor fault: they answer normally.
        assert httpx.get(f"{url}/api/v3/ping").status_code == 200
        assert httpx.get(f"{url}/__replay/stats").json()["faults"]["vendor"] == 1

"""The API as a web server, attacked over real HTTP on loopback against a live `btcfs serve`
(a small hand-made published warehouse): DNS rebinding, cross-site and non-JSON writes,
deep JSON, echoed input, too many streams, a short admin token, the security headers, and
the dashboard and Swagger UI still working in headless Chromium under the CSP."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.apipipeline import ADMIN_TOKEN, BuiltWarehouse, Pipeline, free_port, live_server
from tests.api.cdp import Browser, find_chromium
from tests.api.publishfixtures import make_build, write_run_results
from tests.ml.mlpipeline import BIN, REPO

pytestmark = [pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"content-type": "application/json"}
EVIL = "http://evil.example"
#: The published warehouse's bars are from 2025 and no live loop runs here: every price is
#: stale, so the writes these tests make accept that explicitly.
STALE_OK = {"accept_stale": True}
#: Every endpoint that takes a body.
BODY_PATHS = (
    "/v1/paper/positions",
    "/v1/predict",
    "/v1/jobs",
    "/v1/admin/reload",
    "/v1/forecast",
)
LIMITS = {
    "BTCFS_API_MAX_OPEN_POSITIONS": "3",
    "BTCFS_API_SSE_MAX_PER_CLIENT": "2",
    "BTCFS_API_SSE_MAX_CLIENTS": "3",
    "BTCFS_API_SSE_MAX_SECONDS": "4",
    "BTCFS_API_KEEPALIVE_S": "1",
    "BTCFS_API_ALLOWED_HOSTS": "api.internal.example",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A published warehouse of hand-made marts (one BTCUSDT bar at close 100)."""
    pipeline = Pipeline(BuiltWarehouse(tmp_path_factory.mktemp("websec")))
    make_build(pipeline.warehouse.database, close=100.0)
    write_run_results(pipeline.warehouse.target)
    pipeline.publish()
    return pipeline


@pytest.fixture(scope="module")
def url(pipeline: Pipeline) -> Iterator[str]:
    state = pipeline.root / "state" / "paper.sqlite"
    with live_server(pipeline, BTCFS_STATE_DB=str(state), **LIMITS) as (base, _server):
        yield base


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The API's error shape with this status."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    # RFC 9457 problem details, one shape for every error
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == body["status_code"] == status and body["detail"], body
    assert body["type"] == "about:blank" and body["title"] == HTTPStatus(status).phrase, body
    return body


def positions(url: str) -> int:
    total: int = httpx.get(f"{url}/v1/paper/positions", timeout=10).json()["total"]
    return total


def close_all(url: str) -> None:
    book = httpx.get(f"{url}/v1/paper/positions", params={"limit": 1000}, timeout=10).json()
    for position in book["positions"]:
        if position["status"] == "open":
            closed = httpx.post(f"{url}/v1/paper/positions/{position['id']}/close",
                                json=STALE_OK, timeout=10)  # fmt: skip
            assert closed.status_code == 200, closed.text


# ------------------------------------------------------------------------- Host header


def test_a_foreign_host_header_is_refused(url: str) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends its own name.
    refused = httpx.get(f"{url}/health", headers={"Host": "evil.example"}, timeout=10)
    assert "evil.example" in error(refused, 400)["detail"]
    also = httpx.get(f"{url}/v1/bars", headers={"Host": f"evil.example:{port(url)}"}, timeout=10)
    error(also, 400)
    before = positions(url)
    write = httpx.post(f"{url}/v1/paper/positions", json={"amount_usd": 10},
                       headers={"Host": "evil.example"}, timeout=10)  # fmt: skip
    error(write, 400)
    assert positions(url) == before
    # Loopback names and the configured list are served, with or without a port.
    served = (f"localhost:{port(url)}", "127.0.0.1", f"[::1]:{port(url)}", "LocalHost.",
              "api.internal.example:443")  # fmt: skip
    for host in served:
        assert httpx.get(f"{url}/health", headers={"Host": host}, timeout=10).status_code == 200


# -------------------------------------------------------------------- cross-site writes


def test_a_cross_site_text_plain_post_is_refused(url: str) -> None:
    # What a page on evil.example can send without a preflight: text/plain, its Origin.
    before = positions(url)
    body = '{"amount_usd": 10}'
    simple = {"content-type": "text/plain", "Origin": EVIL}
    refused = httpx.post(f"{url}/v1/paper/positions", content=body, headers=simple, timeout=10)
    assert "evil.example" in error(refused, 403)["detail"]
    # The same JSON content type from that origin (it would need a preflight, but still).
    refused = httpx.post(f"{url}/v1/paper/positions", json={"amount_usd": 10},
                         headers={"Origin": EVIL}, timeout=10)  # fmt: skip
    error(refused, 403)
    # Closing is a write too (an empty body).
    refused = httpx.post(f"{url}/v1/paper/positions/1/close", headers={"Origin": EVIL}, timeout=10)
    error(refused, 403)
    # text/plain without an Origin (not a browser): still not JSON.
    plain = httpx.post(f"{url}/v1/paper/positions", content=body,
                       headers={"content-type": "text/plain"}, timeout=10)  # fmt: skip
    assert "application/json" in error(plain, 415)["detail"]
    assert positions(url) == before


def test_a_form_encoded_post_is_refused(url: str) -> None:
    before = positions(url)
    form = {"amount_usd": "10"}
    error(httpx.post(f"{url}/v1/paper/positions", data=form, headers={"Origin": EVIL},
                     timeout=10), 403)  # fmt: skip
    error(httpx.post(f"{url}/v1/paper/positions", data=form, timeout=10), 415)
    multipart = httpx.post(f"{url}/v1/paper/positions", files={"amount_usd": ("a", b"10")},
                           timeout=10)  # fmt: skip
    error(multipart, 415)
    assert positions(url) == before


@pytest.mark.parametrize("path", BODY_PATHS)
def test_every_body_must_be_json(url: str, path: str) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**AUTH, **({"content-type": content_type} if content_type else {})}
        response = httpx.post(f"{url}{path}", content=b'{"a": 1}', headers=headers, timeout=10)
        error(response, 415)


def test_same_origin_writes_from_a_browser_are_accepted(url: str) -> None:
    for origin in (url, f"http://localhost:{port(url)}", f"http://[::1]:{port(url)}"):
        opened = httpx.post(f"{url}/v1/paper/positions", json={"amount_usd": 5, **STALE_OK},
                            headers={"Origin": origin}, timeout=10)  # fmt: skip
        assert opened.status_code == 201, opened.text
        closed = httpx.post(f"{url}/v1/paper/positions/{opened.json()['id']}/close",
                            json=STALE_OK, headers={"Origin": origin}, timeout=10)  # fmt: skip
        assert closed.status_code == 200, closed.text
    # Another port on this machine, https, a sandboxed frame: other origins.
    others = (f"http://localhost:{port(url) + 1}", f"https://127.0.0.1:{port(url)}", "null",
              f"http://127.0.0.1.evil.example:{port(url)}", "http://[::1", "garbage")  # fmt: skip
    for origin in others:
        refused = httpx.post(f"{url}/v1/paper/positions", json={"amount_usd": 5},
                             headers={"Origin": origin}, timeout=10)  # fmt: skip
        error(refused, 403)


# ------------------------------------------------------------------- hostile bodies, echo


@pytest.mark.parametrize("path", [p for p in BODY_PATHS if p != "/v1/admin/reload"])
def test_a_json_body_nested_10000_levels_is_a_400(url: str, path: str) -> None:
    # (The check runs as a handler reads its body: reload reads none, so it ignores one.)
    for deep in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000,
                 '{"amount_usd": ' + "[" * 10_000 + "]" * 10_000 + "}"):  # fmt: skip
        response = httpx.post(f"{url}{path}", content=deep, headers={**JSON, **AUTH}, timeout=30)
        assert "nested" in error(response, 400)["detail"]
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_error_messages_do_not_echo_unbounded_input(url: str) -> None:
    long = "X" * 50_000
    for params, status in (({"interval": long}, 422), ({"symbol": long}, 404),
                           ({"start": long}, 422)):  # fmt: skip
        response = httpx.get(f"{url}/v1/bars", params=params, timeout=10)
        body = error(response, status)
        assert len(response.content) < 3_000, (params.keys(), len(response.content))
        assert long not in response.text and "XXXXXXXX" in body["detail"]
    response = httpx.post(f"{url}/v1/paper/positions", json={"amount_usd": 10, "symbol": long},
                          timeout=10)  # fmt: skip
    assert response.status_code in (404, 422) and len(response.content) < 3_000


# ------------------------------------------------------------------------ paper limits


def test_open_positions_are_capped_and_the_list_is_paginated(url: str) -> None:
    close_all(url)
    order = {"amount_usd": 100, **STALE_OK}
    opened = [httpx.post(f"{url}/v1/paper/positions", json=order, timeout=10)
              for _ in range(3)]  # fmt: skip
    assert [r.status_code for r in opened] == [201, 201, 201]
    refused = httpx.post(f"{url}/v1/paper/positions", json=order, timeout=10)
    assert "BTCFS_API_MAX_OPEN_POSITIONS=3" in error(refused, 409)["detail"]
    first = opened[0].json()["id"]
    closed = httpx.post(f"{url}/v1/paper/positions/{first}/close", json=STALE_OK, timeout=10)
    assert closed.status_code == 200
    again = httpx.post(f"{url}/v1/paper/positions", json=order, timeout=10)
    assert again.status_code == 201

    everything = httpx.get(f"{url}/v1/paper/positions", params={"limit": 1000}, timeout=10).json()
    total = everything["total"]
    assert total == len(everything["positions"]) and everything["next_offset"] is None
    assert everything["open_count"] == 3
    page = httpx.get(f"{url}/v1/paper/positions", params={"limit": 2, "offset": 1},
                     timeout=10).json()  # fmt: skip
    assert [p["id"] for p in page["positions"]] == [p["id"] for p in everything["positions"][1:3]]
    assert page["next_offset"] == (3 if total > 3 else None) and page["total"] == total
    # Totals cover every position, not the page.
    for key in ("invested_usd", "value_usd", "pnl_usd", "realised_pnl_usd"):
        assert page[key] == pytest.approx(everything[key]), key
    assert everything["invested_usd"] == pytest.approx(300)
    too_many = httpx.get(f"{url}/v1/paper/positions", params={"limit": 100_000}, timeout=10)
    error(too_many, 422)


def test_paper_writes_need_the_admin_token_beyond_loopback(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    env = pipeline.env(BTCFS_STATE_DB=str(tmp_path / "paper.sqlite"), BTCFS_API_HOST="0.0.0.0")
    with TestClient(create_app(ApiSettings.from_env(env))) as client:
        error(client.post("/v1/paper/positions", json={"amount_usd": 10}), 401)
        opened = client.post("/v1/paper/positions", json={"amount_usd": 10, **STALE_OK},
                             headers=AUTH)  # fmt: skip
        assert opened.status_code == 201
        error(client.post(f"/v1/paper/positions/{opened.json()['id']}/close"), 401)
        assert client.get("/v1/paper/positions").status_code == 200  # reads stay open
    off = pipeline.env(BTCFS_STATE_DB=str(tmp_path / "paper.sqlite"), BTCFS_API_HOST="0.0.0.0",
                       BTCFS_ADMIN_TOKEN="")  # fmt: skip
    with TestClient(create_app(ApiSettings.from_env(off))) as client:
        refused = client.post("/v1/paper/positions", json={"amount_usd": 10}, headers=AUTH)
        assert "BTCFS_ADMIN_TOKEN" in error_body(refused, 401)


def error_body(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["detail"])


# ----------------------------------------------------------------------------- streams


class Stream:
    """One open /v1/stream connection from a given loopback source address."""

    def __init__(self, url: str, source: str = "127.0.0.1") -> None:
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(local_address=source), timeout=httpx.Timeout(10)
        )
        self.context = self.client.stream("GET", f"{url}/v1/stream")
        self.response = self.context.__enter__()
        if self.response.status_code == 200:
            self.lines = self.response.iter_lines()
            assert next(line for line in self.lines if line.startswith("event:")) == "event: hello"

    def close(self) -> None:
        self.context.__exit__(None, None, None)
        self.client.close()


def wait_until_admitted(url: str, source: str, timeout: float = 10) -> Stream:
    """A slot freed by a closed stream comes back once the server notices the disconnect."""
    deadline = time.monotonic() + timeout
    while True:
        stream = Stream(url, source)
        if stream.response.status_code == 200 or time.monotonic() > deadline:
            return stream
        stream.close()
        time.sleep(0.2)


def test_streams_are_capped_per_client_and_in_all(url: str) -> None:
    # Caps here: 2 per client address, 3 in all; 127.0.0.2 is a second loopback client.
    a1, a2 = Stream(url), Stream(url)
    b1: Stream | None = None
    try:
        assert a1.response.status_code == a2.response.status_code == 200
        a3 = Stream(url)
        body = a3.response.read()
        a3.close()
        assert a3.response.status_code == 429 and b"BTCFS_API_SSE_MAX_PER_CLIENT" in body
        b1 = Stream(url, "127.0.0.2")
        assert b1.response.status_code == 200
        b2 = Stream(url, "127.0.0.2")
        body = b2.response.read()
        b2.close()
        assert b2.response.status_code == 503 and b"BTCFS_API_SSE_MAX_CLIENTS" in body
        # A closed stream frees its slot.
        a1.close()
        b2 = wait_until_admitted(url, "127.0.0.2")
        assert b2.response.status_code == 200
        b2.close()
    finally:
        for stream in (a1, a2, b1):
            if stream is not None:
                stream.close()


def test_a_stream_ends_after_its_maximum_lifetime(url: str) -> None:
    stream = wait_until_admitted(url, "127.0.0.3")
    assert stream.response.status_code == 200
    started = time.monotonic()
    ended = threading.Event()

    def drain() -> None:
        for _line in stream.lines:
            pass
        ended.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ended.wait(timeout=20), "the stream outlived BTCFS_API_SSE_MAX_SECONDS=4"
        assert time.monotonic() - started >= 3
    finally:
        stream.close()


def test_the_bind_host_given_to_serve_is_a_served_name(pipeline: Pipeline) -> None:
    # `btcfs serve --host` reaches the app (uvicorn builds it from the environment).
    port_ = free_port()
    log = (pipeline.root / "serve-bind.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "btcfs"), "serve", "--host", "127.0.0.2", "--port", str(port_),
         "--log-level", "warning"],
        cwd=REPO, env=pipeline.env(BTCFS_API_ALLOWED_HOSTS=""), stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.2:{port_}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert health.status_code == 200, health.text
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


# ----------------------------------------------------------------------- admin token


def test_a_short_admin_token_refuses_to_start(pipeline: Pipeline) -> None:
    short = "hunter2-secret"  # 14 characters
    proc = subprocess.run(
        [str(BIN / "btcfs"), "serve", "--port", "1"],
        cwd=REPO, env=pipeline.env(BTCFS_ADMIN_TOKEN=short), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "BTCFS_ADMIN_TOKEN is 14 characters: use at least 16" in proc.stderr, proc.stderr
    assert short not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(ValueError, match="at least 16"):
        ApiSettings.from_env(pipeline.env(BTCFS_ADMIN_TOKEN="x" * 15))
    assert ApiSettings.from_env(pipeline.env(BTCFS_ADMIN_TOKEN="x" * 16)).admin_token


# -------------------------------------------------------------------- security headers


def test_pages_carry_the_security_headers(url: str) -> None:
    for path in ("/", "/docs", "/health", "/static/dashboard.js", "/no/such/page"):
        headers = httpx.get(f"{url}{path}", timeout=10).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
    docs = httpx.get(f"{url}/docs", timeout=10).text
    assert "<script>" not in docs.replace(" ", "") and "/static/swagger-init.js" in docs


CSP_PROBE = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@pytest.mark.browser
def test_dashboard_and_swagger_ui_run_under_the_csp(url: str, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not found: `apt-get install -y chromium` (.ci/run does it)")
    close_all(url)
    browser = Browser(chromium, tmp_path / "profile")
    try:
        page = browser.page()
        page.call("Page.addScriptToEvaluateOnNewDocument", source=CSP_PROBE)
        page.call("Page.navigate", url=f"{url}/")
        page.wait_for(
            "document.body !== null && ['ready', 'partial'].includes(document.body.dataset.state)"
        )
        assert page.evaluate("document.querySelectorAll('#chart canvas').length") > 0
        # A paper write from the page itself (same origin) goes through.
        # (No live loop runs here: the page accepts the stale published close explicitly.)
        page.evaluate("document.querySelector('#paper-amount').value = '7'")
        page.evaluate("document.querySelector('#paper-stale').checked = true")
        page.evaluate("document.querySelector('#paper-form button').click()")
        page.wait_for("document.querySelector('#paper-message').innerText !== ''")
        message = page.evaluate("document.querySelector('#paper-message').innerText")
        assert message.startswith("opened #") and "stale price" in message, message
        assert page.evaluate("window.__csp") == []
        page.call("Page.navigate", url=f"{url}/docs")
        page.wait_for("document.querySelectorAll('.opblock').length > 10")
        assert "btcfs API" in page.evaluate("document.querySelector('.title').innerText")
        assert page.evaluate("window.__csp") == []
    finally:
        browser.close()

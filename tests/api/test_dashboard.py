"""The dashboard in headless Chromium against a live `btcfs serve` on the real published
warehouse: what it renders, that it loads nothing from outside, that a publish announced on
the stream refreshes it, and a screenshot kept under test-artifacts/api/."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from tests.api.apipipeline import ADMIN_TOKEN, Pipeline, live_server, published_pipeline
from tests.api.cdp import Browser, Page, find_chromium
from tests.api.livefixtures import LiveLoopStandIn

pytestmark = [pytest.mark.slow, pytest.mark.dbt, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "api"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium not found: `apt-get install -y chromium` (.ci/run does it)")
    return found


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLoopStandIn]:
    """A stand-in for `btcfs live` writing its state file (the loop's own writer) twice a
    second: its exchange clock starts 30 s after the newest published bar closed, and it
    quotes each symbol's open bar a little above that bar's close."""
    pipeline = published_pipeline(tmp_path_factory)
    con = duckdb.connect(str(pipeline.serve), read_only=True)
    try:
        rows = con.execute(
            "select symbol, max(available_at), arg_max(cast(close as double), open_time)"
            " from bars_5m group by symbol"
        ).fetchall()
    finally:
        con.close()
    newest = max(row[1] for row in rows)
    prices = {(symbol, market): close * 1.001 for symbol, _, close in rows
              for market in ("spot", "perp")}  # fmt: skip
    path = tmp_path_factory.mktemp("live") / "state.json"
    stand_in = LiveLoopStandIn(path, newest + timedelta(seconds=30), prices)
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, loop: LiveLoopStandIn
) -> Iterator[tuple[Pipeline, str]]:
    pipeline = published_pipeline(tmp_path_factory)
    state = tmp_path_factory.mktemp("dashboard") / "paper.sqlite"
    with live_server(pipeline, BTCFS_STATE_DB=str(state), BTCFS_LIVE_STATE=str(loop.path)) as (
        url,
        _,
    ):
        yield pipeline, url


@pytest.fixture
def page(chromium: str, served: tuple[Pipeline, str], tmp_path: Path) -> Iterator[Page]:
    # A fresh profile per test, left to pytest's tmp cleanup (Chromium's helpers may still
    # be flushing it for a moment after the browser exits).
    browser = Browser(chromium, tmp_path / "profile")
    try:
        tab = browser.page()
        tab.call("Page.navigate", url=served[1] + "/")
        tab.wait_for(
            f"location.href.startsWith({served[1]!r}) && document.body !== null"
            " && ['ready', 'partial'].includes(document.body.dataset.state)"
        )
        yield tab
    finally:
        browser.close()


def text(page: Page, selector: str) -> str:
    return str(page.evaluate(f"document.querySelector({selector!r}).innerText"))


def test_dashboard_renders_chart_prediction_qa_model_and_paper(
    page: Page, served: tuple[Pipeline, str]
) -> None:
    _, url = served
    assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate(
        "document.body.dataset.errors"
    )
    drawn = page.evaluate("window.btcfsDashboard")
    assert drawn["bars"] == 144 and drawn["pathPoints"] == 13 and drawn["bandPoints"] == 13
    assert drawn["scored"] == 96
    assert page.evaluate("document.querySelectorAll('#chart canvas').length") > 0
    prediction = httpx.get(f"{url}/v1/predictions/latest").json()
    shown = text(page, "#prediction")
    assert prediction["model_version"] in shown and "p10 / p50 / p90" in shown
    assert "barriers" in shown and "%" in shown
    assert text(page, "#signal-now").split(" ")[0] in ("LONG", "SHORT", "FLAT")
    assert "bars:" in text(page, "#signals-summary")
    assert text(page, "#qa-status").startswith("PASS")
    model = text(page, "#model")
    assert prediction["model_version"] in model and "rank IC" in model
    assert page.wait_for("document.querySelector('#stream-status').innerText").startswith(
        "stream: connected"
    )
    # Paper: open a position from the form; the table and totals show it, amounts with their
    # currency and the fill price with its age.
    page.evaluate("document.querySelector('#paper-amount').value = '2500'")
    page.evaluate("document.querySelector('#paper-form button').click()")
    page.wait_for("document.querySelector('#paper-table').innerText.includes('2,500.00 USD')")
    table = text(page, "#paper-table")
    assert "old at the fill" in table and "No paper positions yet" not in table, table
    assert "P&L" in text(page, "#paper-totals") and "USD" in text(page, "#paper-totals")
    # Nothing came from anywhere but this server.
    urls = page.requested_urls()
    assert urls and all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in urls), urls
    shot = page.screenshot(ARTIFACTS / "dashboard.png")
    assert shot.stat().st_size > 20_000


def test_a_publish_on_the_stream_refreshes_the_dashboard(
    page: Page, served: tuple[Pipeline, str]
) -> None:
    _, url = served
    page.wait_for("document.querySelector('#stream-status').innerText.includes('connected')")
    before = int(page.evaluate("document.body.dataset.refreshes"))
    reload = httpx.post(
        f"{url}/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    )
    assert reload.status_code == 200
    page.wait_for(f"Number(document.body.dataset.refreshes) > {before}")
    assert "publish" in text(page, "#stream-status")
    page.screenshot(ARTIFACTS / "dashboard-after-publish.png")


def test_the_symbol_picker_switches_every_panel_without_a_reload(
    page: Page, served: tuple[Pipeline, str]
) -> None:
    _, url = served
    options = page.evaluate("[...document.querySelectorAll('#symbol option')].map(o => o.value)")
    assert options == ["BTCUSDT", "ETHUSDT"]
    assert page.evaluate("document.querySelector('#symbol').value") == "BTCUSDT"
    before = int(page.evaluate("document.body.dataset.refreshes"))
    page.evaluate("window.notReloaded = true")
    page.evaluate(
        "(() => { const s = document.querySelector('#symbol'); s.value = 'ETHUSDT';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(f"Number(document.body.dataset.refreshes) > {before}")
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate(
        "document.body.dataset.errors"
    )
    eth = httpx.get(f"{url}/v1/predictions/latest", params={"symbol": "ETHUSDT"}).json()
    assert f"{eth['model']} {eth['model_version']}" in text(page, "#prediction")
    assert eth["model"] == "ethusdt_5m" and "ETHUSDT:" in text(page, "#model")
    assert page.evaluate("location.search") == "?symbol=ETHUSDT"
    assert "ETHUSDT" in page.evaluate("document.title")
    bars = httpx.get(f"{url}/v1/bars", params={"symbol": "ETHUSDT", "limit": 1}).json()["bars"]
    assert page.evaluate("window.btcfsDashboard.lastClose") == pytest.approx(bars[-1]["close"])


def test_a_panel_that_cannot_load_says_why_instead_of_loading_forever(
    page: Page, served: tuple[Pipeline, str]
) -> None:
    _, url = served
    page.call("Page.navigate", url=f"{url}/?symbol=SOLUSDT")
    page.wait_for(
        "location.search === '?symbol=SOLUSDT' && document.body?.dataset.state === 'partial'"
    )
    prediction = text(page, "#prediction")
    assert "unknown symbol 'SOLUSDT'" in prediction and "loading" not in prediction
    model = text(page, "#model")
    assert "no pinned model forecasts SOLUSDT" in model and "btcfs train --symbol SOLUSDT" in model


def test_the_forecast_sits_on_a_real_time_axis_with_its_band_on_its_own_hours(
    page: Page, served: tuple[Pipeline, str]
) -> None:
    _, url = served
    drawn = page.evaluate("window.btcfsDashboard")
    # the served 5m model: 12 steps 5 minutes apart from the last close; the time axis runs
    # on in empty 5m slots, one per step and one for the forecast's start (the next bar's open)
    steps = [b - a for a, b in itertools.pairwise(drawn["pathTimes"])]
    assert steps == [300] * 12 and drawn["futureSlots"] == 13
    # a 12 x 1h path (the API's forecast moved to hourly steps, from a candidate model) is
    # drawn at its real hours: 145 empty 5m slots, each hour 12 bars wide on the axis
    forecast: dict[str, Any] = httpx.get(f"{url}/v1/forecast", params={"steps": 12}).json()
    start = datetime.fromisoformat(forecast["available_at"])
    for step, point in enumerate(forecast["path"], start=1):
        point["at"] = (start + timedelta(hours=step)).isoformat()
    forecast.update(horizon="1h", model_stage="candidate")
    page.evaluate(f"window.btcfsDrawForecast({json.dumps(forecast)})")
    page.evaluate("window.btcfsChart.timeScale().fitContent()")
    drawn = page.evaluate("window.btcfsDashboard")
    times = drawn["pathTimes"]
    assert [b - a for a, b in itertools.pairwise(times)] == [3600] * 12
    assert drawn["futureSlots"] == 145 and drawn["forecastHorizon"] == "1h"
    coordinates = (
        "(() => { const s = window.btcfsChart.timeScale(); const t = TIMES;"
        " return [s.timeToCoordinate(t[1]), s.timeToCoordinate(t[2]),"
        " s.timeToCoordinate(t[0] - 300), s.timeToCoordinate(t[0])]; })()"
    )
    x = page.evaluate(coordinates.replace("TIMES", json.dumps(times)))
    hour, bar = x[1] - x[0], x[3] - x[2]
    assert bar > 0 and hour == pytest.approx(12 * bar, rel=0.02), x
    # the band starts where the forecast does (the last close), not over the history
    assert drawn["bandPoints"] == 13
    assert page.evaluate("window.btcfsDashboard.bandStart") == times[0]
    legend = text(page, "#chart-legend")
    assert "CANDIDATE model (not promoted)" in legend and "12 × 1h" in legend
    prediction = httpx.get(f"{url}/v1/predictions/latest").json()
    barriers = prediction["barrier_probabilities"]
    if barriers and barriers["model_stage"] != "production":
        assert barriers["model_stage"].upper() in text(page, "#prediction")
    page.screenshot(ARTIFACTS / "dashboard-1h-forecast.png")


def test_the_live_price_ticks_without_a_reload_and_the_badge_turns_red_when_the_loop_stops(
    page: Page, served: tuple[Pipeline, str], loop: LiveLoopStandIn
) -> None:
    _, url = served
    first = loop.prices[("BTCUSDT", "spot")]
    page.wait_for("document.querySelector('#live-price').dataset.source === 'open-bar'")
    assert float(page.evaluate("document.querySelector('#live-price').dataset.price")) == (
        pytest.approx(first)
    )
    badge = "document.querySelector('#freshness')"
    assert page.evaluate(f"{badge}.dataset.status") == "live"
    assert "ok" in page.evaluate(f"{badge}.className") and "newest bar" in text(page, "#freshness")
    assert "open" in text(page, "#live-source") and "1m bar" in text(page, "#live-source")
    page.evaluate("window.notReloaded = true")
    # a paper short on the perpetual, filled at the live quote
    page.evaluate("(() => { const m = document.querySelector('#paper-market'); m.value = 'perp';"
                  " m.dispatchEvent(new Event('change'));"
                  " document.querySelector('#paper-side').value = 'short';"
                  " document.querySelector('#paper-amount').value = '1000';"
                  " document.querySelector('#paper-form button').click(); })()")  # fmt: skip
    page.wait_for("document.querySelector('#paper-table').innerText.includes('short BTCUSDT perp')")
    # the loop sees a new price: the page shows it without a reload, and marks the short
    moved = round(first * 0.99, 2)
    loop.prices[("BTCUSDT", "spot")] = moved
    loop.prices[("BTCUSDT", "perp")] = moved
    page.wait_for(
        f"Math.abs(Number(document.querySelector('#live-price').dataset.price) - {moved}) < 1e-6",
        timeout=30,
    )
    assert page.evaluate("window.notReloaded") is True
    page.wait_for(f"document.querySelector('#paper-table').innerText.includes({f'{moved:,.2f}'!r})",
                  timeout=30)  # fmt: skip
    book = httpx.get(f"{url}/v1/paper/positions").json()
    short = next(p for p in book["positions"] if p["side"] == "short" and p["status"] == "open")
    assert short["mark_price"] == pytest.approx(moved) and short["mark_source"] == "open-bar"
    assert short["unrealised_pnl_usd"] > 0  # the price fell under a short
    page.screenshot(ARTIFACTS / "dashboard-live.png")
    # the heartbeat stops: within a few seconds the badge says the loop is behind, in red
    loop.frozen.set()
    try:
        page.wait_for(f"{badge}.dataset.status === 'behind'", timeout=30)
        assert "bad" in page.evaluate(f"{badge}.className")
        assert "has not turned" in page.evaluate(f"{badge}.title")
        # /health follows: degraded, the loop's problem among its reasons
        page.wait_for("document.querySelector('#health').dataset.status === 'degraded'", 30)
        assert "live: " in page.evaluate("document.querySelector('#health').title")
        assert page.evaluate("window.notReloaded") is True
        page.screenshot(ARTIFACTS / "dashboard-live-behind.png")
    finally:
        loop.frozen.clear()
    page.wait_for(f"{badge}.dataset.status === 'live'", timeout=30)
    page.wait_for("document.querySelector('#health').dataset.status === 'ok'", 30)

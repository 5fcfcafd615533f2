"""The dashboard in headless Chromium against a live `btcfs serve` on the real published
warehouse: what it renders, that it loads nothing from outside, that a publish announced on
the stream refreshes it, and a screenshot kept under test-artifacts/api/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.apipipeline import ADMIN_TOKEN, Pipeline, live_server, published_pipeline
from tests.api.cdp import Browser, Page, find_chromium

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
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, str]]:
    pipeline = published_pipeline(tmp_path_factory)
    state = tmp_path_factory.mktemp("dashboard") / "paper.sqlite"
    with live_server(pipeline, BTCFS_STATE_DB=str(state)) as (url, _):
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

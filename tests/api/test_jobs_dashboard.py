"""The dashboard's jobs panel in headless Chromium against a live `btcfs serve` on an empty
data folder: a wrong token is refused, then the whole pipeline is started from the form
(the token typed by the user, kept in sessionStorage only), shown running and then
succeeded, and the publish it ends with refreshes the page (it then has bars to draw)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.apipipeline import ADMIN_TOKEN
from tests.api.cdp import Browser, Page, find_chromium
from tests.api.jobfixtures import Market, all_params, api_server, replay

pytestmark = [pytest.mark.slow, pytest.mark.dbt, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "api"


@pytest.fixture
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium not found: `apt-get install -y chromium` (.ci/run does it)")
    return found


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(chromium, tmp_path / "profile")
    try:
        yield opened
    finally:
        opened.close()


def text(page: Page, selector: str) -> str:
    return str(page.evaluate(f"document.querySelector({selector!r}).innerText"))


def fill(page: Page, selector: str, value: str) -> None:
    page.evaluate(
        f"(() => {{ const el = document.querySelector({selector!r}); el.value = {value!r};"
        " el.dispatchEvent(new Event('change')); })()"
    )


def test_the_jobs_panel_starts_a_pipeline_and_follows_it(browser: Browser, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with replay(Market()) as market_url, api_server(root) as api:
        page = browser.page()
        page.call("Page.navigate", url=api.url + "/")
        page.wait_for(
            f"location.href.startsWith({api.url!r}) && document.body !== null"
            " && ['ready', 'partial'].includes(document.body.dataset.state)"
        )
        # Jobs are admin-only: without a token the panel asks for one and lists nothing.
        assert text(page, "#jobs-summary") == "enter the admin token to see the jobs"
        before = int(page.evaluate("document.body.dataset.refreshes"))
        # A wrong token: refused, and said so.
        fill(page, "#job-token", "not-the-token")
        fill(page, "#job-pipeline", "all")
        fill(page, "#job-params", json.dumps(all_params(root, market_url)))
        page.evaluate("document.querySelector('#job-form button').click()")
        page.wait_for("document.querySelector('#job-message').innerText.startsWith('401')")
        page.wait_for("document.querySelector('#jobs-summary').innerText.startsWith('401')")
        assert page.evaluate("window.btcfsDashboard.jobs") == 0
        # The right one: the job starts and the panel follows it.
        fill(page, "#job-token", ADMIN_TOKEN)
        page.evaluate("document.querySelector('#job-form button').click()")
        page.wait_for("document.querySelector('#job-message').innerText.startsWith('started job')")
        page.wait_for("document.querySelectorAll('#jobs-table tbody tr').length === 1")
        state = page.wait_for(
            "document.querySelector('#jobs-table tbody tr').dataset.state", timeout=30
        )
        assert state in ("queued", "running", "succeeded"), state
        page.wait_for(
            "document.querySelector('#jobs-table tbody tr').dataset.state === 'running'"
            " || document.querySelector('#jobs-table tbody tr').dataset.state === 'succeeded'",
        )
        page.screenshot(ARTIFACTS / "dashboard-job-running.png")
        page.wait_for(
            "['succeeded', 'failed'].includes("
            "document.querySelector('#jobs-table tbody tr').dataset.state)",
            timeout=400,
        )
        row = text(page, "#jobs-table tbody tr")
        assert "succeeded" in row, (row, text(page, "#job-log"))
        assert "rows landed" in row and "production" in row and "published" in row
        # (the log pane is filled by the request after the table's: wait for it)
        page.wait_for("document.querySelector('#job-log').innerText.includes('succeeded')")
        assert text(page, "#jobs-summary") == "no job running"
        # The publish went out on the stream: the dashboard refreshed and now draws bars.
        page.wait_for(f"Number(document.body.dataset.refreshes) > {before}")
        page.wait_for("window.btcfsDashboard.bars > 0")
        # The token stayed in this tab: sessionStorage, never localStorage or a cookie.
        assert page.evaluate("sessionStorage.getItem('btcfs.adminToken')") == ADMIN_TOKEN
        assert page.evaluate("localStorage.length") == 0
        assert page.evaluate("document.cookie") == ""
        urls = page.requested_urls()
        assert urls and all(u.startswith(api.url) or u.startswith(("data:", "blob:")) for u in urls)
        page.screenshot(ARTIFACTS / "dashboard-jobs.png")

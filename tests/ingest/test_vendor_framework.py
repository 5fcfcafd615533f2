"""The shared vendor framework: key placement, raw pages, landing, the runner and the CLI.

A small fake vendor (one dataset of the lake contract, served by httpx.MockTransport) stands in
for the real ones, so these tests pin the framework alone.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import ingest.commands as commands
from btcfs.cli import cli
from ingest import HttpClient
from ingest.errors import VendorAuthError
from ingest.vendors import VENDORS
from ingest.vendors.base import (
    REPLAY_HEADER,
    DatasetLine,
    DatasetLoader,
    RowError,
    RowSet,
    VendorContext,
    VendorSpec,
    bearer,
    build_client,
    header,
    is_synthetic_response,
    land_rows,
    ms_to_datetime,
    plan_days,
    query,
    run_vendor,
    save_raw_page,
    to_decimal,
)
from lake.schemas import VENDOR_DATASETS
from lake.store import DAY_OPEN_NOTE, MANIFEST_FILE, Lake, PartitionKey

SECRET = "fw-secret-key-0123456789"
NOW = datetime(2024, 1, 3, 12, 0, 30, tzinfo=UTC)
DAY1, DAY2, DAY3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
DATASET = VENDOR_DATASETS["cg-liquidations"]
HOUR_MS = 3_600_000


def day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


class FakeLoader(DatasetLoader):
    """Lands `cg-liquidations` from GET /rows (hourly rows, {"rows": [...]} or an error)."""

    def load_dataset(self, name: str) -> list[DatasetLine]:
        ctx = self.ctx
        days = plan_days(ctx, name, "BTC", "1h")
        window = {"start": day_ms(days[0]), "end": day_ms(days[-1] + timedelta(1)) - 1}
        data, fetched = ctx.client.get_json("/rows", {"symbol": "BTC", **window})
        synthetic = is_synthetic_response(fetched)
        page = save_raw_page(ctx, name, days[0], fetched, "rows")
        rows = RowSet(VENDOR_DATASETS[name])
        for raw in data["rows"]:
            try:
                opened = ms_to_datetime(raw["t"], "t")
                values = {
                    "open_time": opened,
                    "long_liquidation_usd": to_decimal(raw["long"], "long"),
                    "short_liquidation_usd": to_decimal(raw["short"], "short"),
                }
            except RowError as exc:
                rows.reject(raw, str(exc))
                continue
            rows.add(values, raw, available_at=opened + timedelta(hours=1), is_synthetic=synthetic)
        landed = land_rows(ctx, name, "BTC", "1h", rows, [page], days=days, expected_rows=24)
        return [landed.line(name, "BTC")]


FAKE = VendorSpec(
    name="fakevendor",
    env_key="FAKEVENDOR_KEY",
    key_placement=header("X-Fake-Key"),
    default_base_url="https://fake.invalid",
    base_url_env="FAKEVENDOR_BASE_URL",
    datasets=("cg-liquidations",),
    make_loader=FakeLoader,
)


def hourly(days: list[date], **override: object) -> list[dict[str, object]]:
    return [
        {"t": day_ms(d) + h * HOUR_MS, "long": "1.5", "short": "2", **override}
        for d in days
        for h in range(24)
    ]


class FakeVendor:
    """The fake vendor's server: checks the key, serves `rows`, counts requests."""

    def __init__(self, rows: list[dict[str, object]], *, synthetic: bool = True) -> None:
        self.rows = rows
        self.synthetic = synthetic
        self.unfiltered = False
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("x-fake-key") != SECRET:
            return httpx.Response(401, json={"message": "bad key"})
        headers = {REPLAY_HEADER: "synthetic"} if self.synthetic else {}
        start, end = int(request.url.params["start"]), int(request.url.params["end"])
        # Rows whose time is not an int are served whatever the window (hostile rows).
        rows = [r for r in self.rows if not isinstance(r.get("t"), int) or start <= r["t"] <= end]
        if self.unfiltered:
            rows = self.rows
        return httpx.Response(200, json={"rows": rows}, headers=headers)


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def fake_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(VENDORS, FAKE.name, FAKE)
    yield


def run(fake: FakeVendor, root: Path, **kwargs: object):
    factory = partial(HttpClient, transport=httpx.MockTransport(fake.handler), sleep=lambda s: 0)
    options = {"start": DAY1, "end": DAY3, "config": {}, "now": NOW, **kwargs}
    return run_vendor(
        FAKE,
        lake=Lake(root / "lake"),
        raw_root=root / "raw",
        client_factory=factory,
        **options,  # type: ignore[arg-type]
    )


# ---- key placement and redaction -------------------------------------------------------------


def test_key_placements_put_the_key_where_the_vendor_wants_it() -> None:
    assert header("CG-API-KEY").headers("k1") == {"CG-API-KEY": "k1"}
    assert bearer().headers("k2") == {"Authorization": "Bearer k2"}
    assert query("api_key").params("k3") == {"api_key": "k3"}
    assert query("api_key").headers("k3") == {}


def test_a_query_key_is_sent_but_never_shown_or_saved(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"echo": str(request.url)})

    spec = VendorSpec(
        "q",
        "Q_KEY",
        query("api_key"),
        "https://q.invalid",
        "Q_BASE_URL",
        ("cg-liquidations",),
        FakeLoader,
    )
    mocked = partial(HttpClient, transport=httpx.MockTransport(handler))
    with build_client(spec, SECRET, client_factory=mocked) as client:
        _, fetched = client.get_json("/x", {"a": "1"})
        ctx = VendorContext(
            spec,
            client,
            Lake(tmp_path / "lake"),
            tmp_path / "raw",
            NOW,
            {},
            DAY1,
            DAY3,
            spec.datasets,
        )
        path = save_raw_page(ctx, "cg-liquidations", DAY1, fetched, "x")
    assert f"api_key={SECRET}" in seen[0]
    assert SECRET not in fetched.url
    files = list((tmp_path / "raw").rglob("*"))
    saved = b"".join(
        gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        for f in files
        if f.is_file()
    )
    assert SECRET.encode() not in saved  # the echoed URL in the body is redacted too
    assert path.endswith(".json.gz")
    meta = json.loads(next(f for f in files if f.name.endswith(".meta.json")).read_text())
    assert meta["redacted"] is True and "api_key=***" in meta["url"]


def test_a_query_key_name_that_would_not_be_redacted_is_refused() -> None:
    with pytest.raises(Exception, match="would not be redacted"):
        VendorSpec("q", "Q", query("sig"), "https://q", "Q_URL", ("cg-liquidations",), FakeLoader)


def test_a_refused_key_is_an_auth_error_without_the_key(tmp_path: Path) -> None:
    fake = FakeVendor([])
    with (
        build_client(
            FAKE,
            "wrong-key-abcdef",
            client_factory=partial(HttpClient, transport=httpx.MockTransport(fake.handler)),
        ) as client,
        pytest.raises(VendorAuthError) as info,
    ):
        client.get_json("/rows")
    assert "wrong-key-abcdef" not in str(info.value) and "bad key" in str(info.value)


# ---- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5", Decimal("1.50000000")),
        (2, Decimal("2")),
        (0.1, Decimal("0.1")),
        ("0.123456789", Decimal("0.12345679")),
    ],
)
def test_to_decimal(value: object, expected: Decimal) -> None:
    assert to_decimal(value, "x") == expected


@pytest.mark.parametrize("value", ["abc", None, "", "NaN", "Infinity", True, [1], {"a": 1}, "1e30"])
def test_to_decimal_rejects(value: object) -> None:
    with pytest.raises(RowError):
        to_decimal(value, "x")


# ---- landing ---------------------------------------------------------------------------------


def test_vendor_lands_days_with_manifest_and_a_rerun_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, lake_root: Path
) -> None:
    monkeypatch.setenv("FAKEVENDOR_KEY", SECRET)
    fake = FakeVendor(hourly([DAY1, DAY2, DAY3]))
    report = run(fake, lake_root)
    assert report.status == "ok", report
    # Day 3 holds bars up to 11:00 (closed at 12:00 <= now); 12:00 onwards are held back.
    assert (report.rows, report.days) == (24 + 24 + 12, 3)
    lake = Lake(lake_root / "lake")
    key = PartitionKey(DATASET, "BTC", "1h", DAY3)
    manifest = lake.read_manifest(key)
    assert manifest is not None and manifest.rows == 12 and DAY_OPEN_NOTE in manifest.notes
    assert not manifest.day_closed and not manifest.is_final
    table = lake.read_partition(key)
    assert table.column("is_synthetic").to_pylist() == [True] * 12
    assert min(table.column("available_at").to_pylist()) > table.column("open_time")[0].as_py()
    mtimes = {p: p.stat().st_mtime_ns for p in (lake_root / "lake").rglob("*.parquet")}
    again = run(fake, lake_root)
    assert again.status == "ok" and again.lines[0].written == 0
    assert {p: p.stat().st_mtime_ns for p in (lake_root / "lake").rglob("*.parquet")} == mtimes


def test_complete_past_days_are_not_fetched_again(
    monkeypatch: pytest.MonkeyPatch, lake_root: Path
) -> None:
    monkeypatch.setenv("FAKEVENDOR_KEY", SECRET)
    fake = FakeVendor(hourly([DAY1, DAY2, DAY3]))
    run(fake, lake_root, refresh_tail=1)
    ctx = VendorContext(
        FAKE,
        None,
        Lake(lake_root / "lake"),
        lake_root / "raw",
        NOW,
        {},  # type: ignore[arg-type]
        DAY1,
        DAY3,
        FAKE.datasets,
        refresh_tail=1,
    )
    assert plan_days(ctx, "cg-liquidations", "BTC", "1h") == [DAY3]


def test_bad_rows_duplicates_and_strays_are_quarantined_not_dropped(
    monkeypatch: pytest.MonkeyPatch, lake_root: Path
) -> None:
    monkeypatch.setenv("FAKEVENDOR_KEY", SECRET)
    rows = hourly([DAY1])
    rows += [dict(rows[0])]  # identical duplicate: collapsed
    rows += [{**rows[1], "long": "9"}]  # conflicting duplicate: both versions quarantined
    rows += [{**rows[2], "long": "-1"}, {**rows[3], "short": "abc"}, {"t": "x"}]
    rows += [{**rows[4], "long": "<script>\u0000" + "A" * 10_000}]
    rows += hourly([date(2023, 12, 31)])[:1]  # a day nobody asked for
    rows.reverse()  # out of order on the wire
    fake = FakeVendor(rows)
    fake.unfiltered = True
    report = run(fake, lake_root, end=DAY1)
    lake = Lake(lake_root / "lake")
    manifest = lake.read_manifest(PartitionKey(DATASET, "BTC", "1h", DAY1))
    assert report.status == "ok"
    assert manifest is not None
    # Bad rows are extra copies of good hours: 24 hours less the conflicting one land.
    assert manifest.rows == 23 and manifest.duplicates_identical == 1
    quarantine = pq.read_table(next((lake_root / "lake" / "_quarantine").rglob("*.parquet")))
    reasons = sorted(quarantine.column("reason").to_pylist())
    assert reasons.count("duplicate open_time with conflicting values") == 2
    assert "negative long_liquidation_usd" in reasons
    assert "outside the requested days" in reasons
    assert sum(r.startswith("unparsable") or r.startswith("missing") for r in reasons) == 3
    assert manifest.quarantined_rows == quarantine.num_rows == 7
    times = lake.read_partition(PartitionKey(DATASET, "BTC", "1h", DAY1)).column("open_time")
    assert times.to_pylist() == sorted(times.to_pylist())


# ---- runner ----------------------------------------------------------------------------------


def test_missing_key_skips_without_a_request(monkeypatch: pytest.MonkeyPatch, lake_root: Path):
    monkeypatch.delenv("FAKEVENDOR_KEY", raising=False)
    fake = FakeVendor(hourly([DAY1]))
    report = run(fake, lake_root)
    assert (report.status, report.message) == ("skipped", "FAKEVENDOR_KEY not set")
    assert fake.requests == []


def test_a_crashing_loader_is_a_failed_report_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, lake_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAKEVENDOR_KEY", SECRET)
    fake = FakeVendor([{"no": "t"}])  # KeyError inside the loader: a bug, not a known failure
    with caplog.at_level(logging.ERROR):
        report = run(fake, lake_root)
    assert report.status == "failed" and "internal error" in report.message


# ---- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(commands, "HttpClient", partial(HttpClient, sleep=lambda s: None))
    yield {"BTCFS_DATA_DIR": str(tmp_path / "data"), "BTCFS_NOW": NOW.isoformat()}
    root.handlers[:] = handlers
    root.setLevel(level)


def test_ingest_all_runs_vendors_and_ends_with_a_table(
    cli_env: dict[str, str],
    fake_registered: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fake = FakeVendor(hourly([DAY1, DAY2, DAY3]))
    config = tmp_path / "c.yml"
    config.write_text(
        "start: 2024-01-01\ndatasets: [{dataset: funding}]\n"
        "vendors:\n  fakevendor: {enabled: true}\n"
    )
    # Binance is pointed at a closed port: it fails, the vendor still runs, exit is non-zero.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    env = {
        **cli_env,
        "FAKEVENDOR_KEY": SECRET,
        "BINANCE_ARCHIVE_URL": "none",
        "BINANCE_FUTURES_BASE_URL": f"http://127.0.0.1:{closed}",
    }
    monkeypatch.setattr(
        commands, "HttpClient", partial(_routed, fake=fake, closed=f"http://127.0.0.1:{closed}")
    )
    result = CliRunner().invoke(cli, ["ingest", "all", "--config", str(config)], env=env)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("vendor "))) :]
    assert table[2].split()[:2] == ["binance", "failed"]
    assert table[3].split()[:4] == ["fakevendor", "ok", "60", "3"]
    assert "1 failed: binance" in result.output
    assert SECRET not in result.output

    # Without the key: one clear line, status skipped, the rest runs.
    env.pop("FAKEVENDOR_KEY")
    result = CliRunner().invoke(cli, ["ingest", "all", "--config", str(config)], env=env)
    assert "fakevendor: skipped (FAKEVENDOR_KEY not set)" in result.output.splitlines()
    assert result.output.count("FAKEVENDOR_KEY not set") == 2  # the line and the table's note


def _routed(base_url: str, *, fake: FakeVendor, closed: str, **kwargs: object) -> HttpClient:
    """Vendor clients talk to the fake; Binance's to the closed port, really."""
    if kwargs.get("vendor") == FAKE.name:
        kwargs["transport"] = httpx.MockTransport(fake.handler)
    return HttpClient(base_url, sleep=lambda s: 0, **kwargs)  # type: ignore[arg-type]


def test_ingest_vendor_without_key_is_a_clear_error(
    cli_env: dict[str, str], fake_registered: None
) -> None:
    result = CliRunner().invoke(
        cli, ["ingest", "vendor", "fakevendor", "--start", "2024-01-01"], env=cli_env
    )
    assert result.exit_code == 1
    assert "FAKEVENDOR_KEY not set" in result.output and "Traceback" not in result.output


def test_unknown_vendor_in_config_is_a_clear_error(cli_env: dict[str, str], tmp_path: Path):
    config = tmp_path / "c.yml"
    config.write_text("datasets: [{dataset: funding}]\nvendors:\n  nosuch: {}\n")
    result = CliRunner().invoke(cli, ["ingest", "all", "--config", str(config)], env=cli_env)
    assert result.exit_code == 1 and "unknown vendor 'nosuch'" in result.output


@pytest.mark.parametrize("args", [["ingest", "vendor"], ["ingest", "all"]])
def test_help_has_an_example(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_lake_status_lists_vendor_datasets(
    monkeypatch: pytest.MonkeyPatch, lake_root: Path, cli_env: dict[str, str]
) -> None:
    monkeypatch.setenv("FAKEVENDOR_KEY", SECRET)
    run(FakeVendor(hourly([DAY1, DAY2])), lake_root, end=DAY2)
    assert list((lake_root / "lake").rglob(MANIFEST_FILE))
    result = CliRunner().invoke(cli, ["lake", "status", "--json"], env=cli_env)
    status = json.loads(result.output)
    assert {(s["vendor"], s["dataset"], s["days"], s["rows"]) for s in status} == {
        ("coinglass", "cg_liquidations", 2, 48)
    }

"""The CLI: `btcfs ingest binance`, `btcfs ingest all`, `btcfs lake status` (click's CliRunner).

Everything runs offline: REST goes to a FakeBinance over httpx.MockTransport, the archive is a
local folder, and "unreachable" is a closed port on loopback.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner, Result

import ingest.commands as commands
from btcfs.cli import cli
from ingest import HttpClient
from ingest.binance.archive import daily_path
from ingest.timeutil import normalise_epoch_us
from lake.schemas import DATASETS, PRICE
from lake.store import MANIFEST_FILE, Lake, PartitionKey
from tests.ingest.binance_fakes import (
    DAY_MS,
    MINUTE_MS,
    REAL_1M,
    FakeBinance,
    day_ms,
    kline_grid,
    put_archive_file,
    real_days,
    requires_real_data,
)

D1 = date(2024, 1, 1)
D3 = date(2024, 1, 3)


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """The root command reconfigures logging onto CliRunner's (soon closed) stderr: undo it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ingest_level = logging.getLogger("ingest").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("ingest").setLevel(ingest_level)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A data dir in tmp, no host overrides from the caller's environment, clients that
    never really sleep."""
    for name in ("BINANCE_SPOT_BASE_URL", "BINANCE_FUTURES_BASE_URL", "BINANCE_ARCHIVE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(commands, "HttpClient", partial(HttpClient, sleep=lambda s: None))
    return {"BTCFS_DATA_DIR": str(tmp_path / "data"), "BTCFS_NOW": "2024-02-01T00:00Z"}


def fake_rest(monkeypatch: pytest.MonkeyPatch, fake: FakeBinance) -> None:
    """Every client the CLI builds talks to `fake`."""
    monkeypatch.setattr(
        commands,
        "HttpClient",
        partial(HttpClient, transport=httpx.MockTransport(fake.handler), sleep=lambda s: None),
    )


def run(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, args, env=env)


def assert_clean_failure(result: Result, exit_code: int = 1) -> str:
    """A known failure: the given exit code, a message, no traceback anywhere."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.output


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["ingest", "binance"], ["ingest", "all"], ["lake", "status"], []])
def test_help_has_an_example(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    short = CliRunner().invoke(cli, [*args, "-h"])
    assert short.output == result.output


# ---- ingest binance -----------------------------------------------------------------------


def test_ingest_binance_from_rest(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D3) + DAY_MS))
    fake_rest(monkeypatch, fake)
    args = ["ingest", "binance", "--dataset", "spot-klines", "--interval", "1m",
            "--start", "2024-01-01", "--end", "2024-01-03", "--archive", "none"]  # fmt: skip
    result = run(args, env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "spot-klines BTCUSDT 1m: 3 days written, 0 unchanged, 0 already complete; "
        "4,320 rows, 0 quarantined"
    )
    again = run(args, env)
    assert again.output.splitlines()[0] == (
        "spot-klines BTCUSDT 1m: 0 days written, 0 unchanged, 3 already complete; "
        "0 rows, 0 quarantined"
    )
    forced = run([*args, "--force"], env)
    assert "0 days written, 3 unchanged" in forced.output
    assert (tmp_path / "data" / "lake" / "binance" / "spot_klines").is_dir()


def test_ingest_binance_defaults(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No --interval: 1m for klines, 5m for open interest, none for funding; --end = today."""
    fake = FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D1) + DAY_MS + MINUTE_MS))
    fake_rest(monkeypatch, fake)
    env = {**env, "BTCFS_NOW": "2024-01-02T00:00:30Z"}
    result = run(["ingest", "binance", "--dataset", "spot-klines", "--start", "2024-01-01"], env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("spot-klines BTCUSDT 1m: 2 days written")
    assert "2024-01-02: incomplete, 0/1440 rows" in result.output


def test_incomplete_day_and_quarantine_are_reported(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = [r for r in kline_grid(day_ms(D1), day_ms(D1) + DAY_MS) if r[0] % (7 * MINUTE_MS)]
    grid[3][2] = "1.00000000"  # high below low
    fake_rest(monkeypatch, FakeBinance(klines=grid))
    result = run(["ingest", "binance", "--dataset", "spot-klines", "--start", "2024-01-01",
                  "--end", "2024-01-01", "--archive", "none"], env)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("  2024-01-01: incomplete, 1233/1440 rows, missing ")
    assert lines[1].count("(1 bars)") == 5
    assert lines[1].endswith(" …")  # more than five ranges: the rest is elided
    assert lines[2] == "  2024-01-01: 1 rows quarantined (see btcfs lake status)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-13-01"], "invalid date '2024-13-01'"),
        (["--start", "2024-01-03", "--end", "2024-01-01"], "before"),
        (["--start", "2030-01-01"], "in the future"),
        (["--start", "2024-01-01", "--symbol", "btc/usdt"], "invalid symbol"),
        (["--start", "2024-01-01", "--interval", "7m"], "interval '7m' not supported"),
        (["--start", "2024-01-01", "--refresh-tail", "-1"], "refresh-tail"),
        (["--start", "2024-01-01", "--archive", "/nonexistent/archive"], "does not exist"),
    ],
)
def test_known_errors_are_one_line_without_traceback(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = run(["ingest", "binance", "--dataset", "spot-klines", *args], env)
    output = assert_clean_failure(result)
    assert output.startswith("Error: ")
    assert message in output
    assert len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--dataset", "trades", "--start", "2024-01-01"],
        ["--dataset", "funding", "--interval", "1m", "--start", "2024-01-01"],
        ["--dataset", "spot-klines"],
        ["--dataset", "spot-klines", "--start", "2024-01-01", "--refresh-tail", "x"],
    ],
)
def test_usage_errors_exit_2_without_traceback(env: dict[str, str], args: list[str]) -> None:
    output = assert_clean_failure(run(["ingest", "binance", *args], env), exit_code=2)
    assert "Error:" in output
    assert "Usage:" in output


@pytest.mark.parametrize("archive", [[], ["--archive", "none"]])
def test_unreachable_host_fails_fast_and_names_make_demo(
    env: dict[str, str], archive: list[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    env = {**env, "BTCFS_NOW": "2024-01-02T12:00Z"}
    result = run(["ingest", "binance", "--dataset", "spot-klines", "--start", "2024-01-01",
                  "--base-url", url, *archive], env)  # fmt: skip
    output = assert_clean_failure(result)
    assert "make demo" in output
    assert len(output.strip().splitlines()) == 1


def test_unreachable_from_environment_variables(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("BINANCE_FUTURES_BASE_URL", url)
    monkeypatch.setenv("BINANCE_ARCHIVE_URL", "none")
    env = {**env, "BTCFS_NOW": "2024-01-02T12:00Z"}
    result = run(["ingest", "binance", "--dataset", "funding", "--start", "2024-01-02"], env)
    assert "make demo" in assert_clean_failure(result)


# ---- ingest all ---------------------------------------------------------------------------


def test_ingest_all_runs_every_configured_dataset(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeBinance(
        klines=kline_grid(day_ms(D1), day_ms(D3) + 12 * 60 * MINUTE_MS + 1),
        funding=[
            {"symbol": "BTCUSDT", "fundingTime": day_ms(D1) + i * 28_800_000 + 3,
             "fundingRate": "0.00010000", "markPrice": "42000.00000000"}
            for i in range(8)
        ],
    )  # fmt: skip
    fake_rest(monkeypatch, fake)
    config = tmp_path / "ingest.yml"
    config.write_text(
        "start: 2024-01-01\narchive: none\n"
        "datasets: [{dataset: spot-klines, interval: 1m}, {dataset: funding}]\n"
    )
    env = {**env, "BTCFS_NOW": "2024-01-03T12:00:30Z"}
    result = run(["ingest", "all", "--config", str(config)], env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("spot-klines BTCUSDT 1m: 3 days written")
    assert "2024-01-03: incomplete, 720/1440 rows, missing 12:00–23:59 (720 bars)" in lines[1]
    assert lines[2].startswith("funding BTCUSDT: 3 days written, 0 unchanged, 0 already complete;")
    status = json.loads(run(["lake", "status", "--json"], env).output)
    assert {(s["dataset"], s["days"]) for s in status} == {("spot_klines", 3), ("funding", 3)}
    # --json: the summary alone on stdout, the progress lines on stderr
    again = run(["ingest", "all", "--config", str(config), "--json"], env)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    binance = summary["vendors"][0]
    assert summary["failed"] == [] and binance["vendor"] == "binance"
    assert binance["status"] == "ok"
    assert {(d["dataset"], d["status"]) for d in binance["datasets"]} == {
        ("spot-klines", "ok"), ("funding", "ok")
    }  # fmt: skip
    assert "spot-klines BTCUSDT 1m:" in again.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("datasets: [\n", "not valid YAML"),
        ("datasets: [{dataset: funding}]\nsymbol: BTCUSDT\n", "unknown keys ['symbol']"),
        ("datasets: [{dataset: spot-klines, intervall: 1m}]\n", "unknown keys ['intervall']"),
        ("datasets: [{dataset: trades}]\n", "unknown dataset 'trades'"),
        ("datasets: [{dataset: spot-klines, interval: 7m}]\n", "interval '7m'"),
        ("archive: 5\ndatasets: [{dataset: funding}]\n", "`archive`"),
    ],
)
def test_ingest_all_bad_config_is_a_clear_error(
    env: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(text)
    output = assert_clean_failure(run(["ingest", "all", "--config", str(config)], env))
    assert message in output


def test_ingest_all_missing_config(env: dict[str, str], tmp_path: Path) -> None:
    output = assert_clean_failure(
        run(["ingest", "all", "--config", str(tmp_path / "none.yml")], env)
    )
    assert "not found" in output


# ---- lake status --------------------------------------------------------------------------


def test_lake_status_on_an_empty_lake(env: dict[str, str]) -> None:
    result = run(["lake", "status"], env)
    assert result.exit_code == 0
    assert "is empty" in result.output
    assert "make ingest" in result.output
    as_json = run(["lake", "status", "--json"], env)
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == []


def test_lake_status_on_a_filled_lake(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    grid = [
        r
        for r in kline_grid(day_ms(D1), day_ms(D3) + DAY_MS)
        if not day_ms(D1) + DAY_MS <= r[0] < day_ms(D1) + DAY_MS + 80 * MINUTE_MS
    ]
    fake_rest(monkeypatch, FakeBinance(klines=grid))
    run(["ingest", "binance", "--dataset", "spot-klines", "--start", "2024-01-01",
         "--end", "2024-01-03", "--archive", "none"], env)  # fmt: skip
    result = run(["lake", "status"], env)
    assert result.exit_code == 0
    assert "binance/spot_klines" in result.output
    assert "4,240" in result.output
    # As wide as the terminal says (piped too): a table when it fits, else a line per dataset;
    # never a value cut to an ellipsis.
    wide = run(["lake", "status"], {**env, "COLUMNS": "200"}).output
    assert max(len(line) for line in wide.splitlines()) <= 200 and "│" not in wide, wide
    assert re.search(r"binance/spot_klines +BTCUSDT +1m +2024-01-01 00:00", wide), wide
    assert "…" not in wide
    narrow = run(["lake", "status"], {**env, "COLUMNS": "80"}).output
    assert "…" not in narrow, narrow
    assert "binance/spot_klines BTCUSDT 1m: 3 days, 4,240 rows, 2024-01-01 00:00 to " in narrow
    assert "missing 80 rows (0 days), 1 incomplete, 0 quarantined" in narrow
    (status,) = json.loads(run(["lake", "status", "--json"], env).output)
    assert status["days"] == 3
    assert status["rows"] == 4240
    assert status["missing_rows"] == 80
    assert status["incomplete_days"] == ["2024-01-02"]
    assert status["first_at"] == "2024-01-01T00:00:00+00:00"
    assert status["last_at"] == "2024-01-03T23:59:00+00:00"


def test_lake_status_with_a_corrupt_manifest_is_one_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_rest(monkeypatch, FakeBinance(klines=kline_grid(day_ms(D1), day_ms(D1) + DAY_MS)))
    run(["ingest", "binance", "--dataset", "spot-klines", "--start", "2024-01-01",
         "--end", "2024-01-01", "--archive", "none"], env)  # fmt: skip
    next((tmp_path / "data" / "lake").rglob(MANIFEST_FILE)).write_text("{")
    assert "corrupt manifest" in assert_clean_failure(run(["lake", "status"], env))


# ---- real data: the archive's own 1m files ------------------------------------------------


@pytest.fixture(scope="module")
def real_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local archive (data.binance.vision layout, zips + .CHECKSUM) of every real 1m day."""
    if not REAL_1M.is_dir():
        pytest.skip(f"real Binance data not found at {REAL_1M}")
    root = tmp_path_factory.mktemp("archive")
    for day in real_days():
        csv = gzip.decompress((REAL_1M / f"BTCUSDT-1m-{day.isoformat()}.csv.gz").read_bytes())
        put_archive_file(root, daily_path("spot-klines", "BTCUSDT", "1m", day), csv)
    return root


def contiguous_runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][-1] + timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [(r[0], r[-1]) for r in runs]


def ingest_real(env: dict[str, str], archive: Path, start: date, end: date, *extra: str) -> Result:
    unreachable = f"http://127.0.0.1:{closed_port()}"  # REST must not be needed
    env = {**env, "BTCFS_NOW": "2026-01-01T00:00Z"}
    return run(["ingest", "binance", "--dataset", "spot-klines", "--interval", "1m",
                "--start", start.isoformat(), "--end", end.isoformat(),
                "--archive", str(archive), "--base-url", unreachable, *extra], env)  # fmt: skip


_CSV_NAMES = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip


def expected_columns(day: date) -> dict[str, pa.Array]:
    """The CSV's fields as text (decimals) and µs (times), to compare with the lake exactly."""
    table = pacsv.read_csv(
        REAL_1M / f"BTCUSDT-1m-{day.isoformat()}.csv.gz",
        read_options=pacsv.ReadOptions(column_names=_CSV_NAMES),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(_CSV_NAMES, pa.string())),
    )
    out: dict[str, pa.Array] = {}
    for name in ("open_time", "close_time"):
        raw = pc.cast(table.column(name), pa.int64()).to_numpy()
        out[name] = pa.array(normalise_epoch_us(raw))
    out["trade_count"] = pc.cast(table.column("trade_count"), pa.int64()).combine_chunks()
    for name in _CSV_NAMES[1:6] + _CSV_NAMES[7:8] + _CSV_NAMES[9:11]:
        # Every real value has exactly 8 decimals, so DECIMAL(28, 8) holds it exactly. The
        # string cast is not the CSV reader the loader uses: an independent reading.
        text = table.column(name).combine_chunks()
        assert pc.all(pc.match_substring_regex(text, r"^\d+\.\d{8}$")).as_py()
        out[name] = pc.cast(text, PRICE)
    return out


def landed_columns(lake: Lake, day: date) -> dict[str, pa.Array]:
    table = lake.read_partition(PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", day))
    out: dict[str, pa.Array] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name in ("open_time", "close_time"):
            out[name] = pc.cast(column, pa.int64())
        elif pa.types.is_decimal(column.type):
            assert column.type == PRICE
            out[name] = column
        elif name == "trade_count":
            out[name] = column
    return out


@pytest.mark.realdata
@requires_real_data
def test_every_real_day_lands_with_exact_values(
    env: dict[str, str], real_archive: Path, tmp_path: Path
) -> None:
    days = real_days()
    for start, end in contiguous_runs(days):
        result = ingest_real(env, real_archive, start, end)
        assert result.exit_code == 0, result.output
        assert f"{(end - start).days + 1} days written" in result.output.splitlines()[0]
    lake = Lake(tmp_path / "data" / "lake")
    for day in days:
        landed = landed_columns(lake, day)
        expected = expected_columns(day)
        assert set(landed) == set(expected)
        for name, values in expected.items():
            assert landed[name].equals(values), f"{day} {name}"
        if day != date(2023, 3, 24):
            assert len(landed["open_time"]) == 1440, day
    # A rerun finds every day complete and reads nothing, but the incomplete halt day.
    for start, end in contiguous_runs(days):
        again = ingest_real(env, real_archive, start, end, "--refresh-tail", "0")
        re_read = 1 if start <= date(2023, 3, 24) <= end else 0
        assert f"0 days written, {re_read} unchanged" in again.output


@pytest.mark.realdata
@requires_real_data
def test_real_exchange_halt_is_landed_incomplete_not_invented(
    env: dict[str, str], real_archive: Path, tmp_path: Path
) -> None:
    result = ingest_real(env, real_archive, date(2023, 3, 23), date(2023, 3, 25))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "spot-klines BTCUSDT 1m: 3 days written, 0 unchanged, 0 already complete; "
        "4,240 rows, 0 quarantined",
        "  2023-03-24: incomplete, 1360/1440 rows, missing 12:40–13:59 (80 bars)",
    ]
    lake = Lake(tmp_path / "data" / "lake")
    key = PartitionKey(DATASETS["spot-klines"], "BTCUSDT", "1m", date(2023, 3, 24))
    manifest = lake.read_manifest(key)
    assert manifest is not None
    assert (manifest.rows, manifest.expected_rows, manifest.missing_rows) == (1360, 1440, 80)
    assert manifest.is_complete is False
    assert manifest.notes == ["missing 12:40–13:59 (80 bars)"]
    assert manifest.source == "archive"
    assert manifest.quarantined_rows == 0
    table = lake.read_partition(key)
    by_open = {row["open_time"].strftime("%H:%M"): row for row in table.to_pylist()}
    assert not any(
        f"{h}:{m:02d}" in by_open for h in (12, 13) for m in range(60) if h == 13 or m >= 40
    )
    truncated = by_open["12:39"]
    assert truncated["close_time"].strftime("%H:%M:%S.%f") == "12:39:41.646000"
    flat = [by_open[f"{11 + (28 + i) // 60}:{(28 + i) % 60:02d}"] for i in range(72)]
    assert all(r["volume"] == 0 and r["open"] == r["close"] == r["high"] == r["low"] for r in flat)
    status = json.loads(run(["lake", "status", "--json"], env).output)
    assert status[0]["incomplete_days"] == ["2023-03-24"]
    assert status[0]["missing_rows"] == 80
    # Incomplete days are always re-read; the archive has nothing new: unchanged.
    again = ingest_real(
        env, real_archive, date(2023, 3, 23), date(2023, 3, 25), "--refresh-tail", "0"
    )
    assert again.output.splitlines()[0] == (
        "spot-klines BTCUSDT 1m: 0 days written, 1 unchanged, 2 already complete; "
        "1,360 rows, 0 quarantined"
    )
    assert "missing 12:40–13:59 (80 bars)" in again.output

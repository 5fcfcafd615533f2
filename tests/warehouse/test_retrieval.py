"""Point-in-time retrieval (warehouse.retrieval) on a real two-symbol warehouse: every answer
equals a brute-force scan of the mart on random events and on the edges (exactly at an
available_at, 1 µs before one, before the first row, across ETHUSDT's warm-up, across the
symbol boundary, after the last row, max_age); bad input gets a clear error; and the
truncation property holds for retrieval too (events before a cut get the same answers from a
warehouse built on the lake cut there)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from btcfs.cli import cli as root_cli
from lake.store import lake_digest
from tests.features.feature_harness import FeatureWarehouse, cut_at
from tests.warehouse import retrievalfixtures as fx
from warehouse.catalog import load_catalog
from warehouse.retrieval import (
    ADDED_COLUMNS,
    NO_ROW,
    TOO_OLD,
    BadEvents,
    RetrievalError,
    UnknownChoice,
    UnknownSymbol,
    historical_features,
    parse_max_age,
    summarise,
)

pytestmark = [pytest.mark.dbt, pytest.mark.slow]

US = timedelta(microseconds=1)
# Cuts outside ETHUSDT's missing day: inside it, the full build has imputed bars the cut
# lake cannot have yet (the gap is filled only once a later bar lands).
CUTS = [
    datetime(2025, 1, 6, 13, 37, 30, tzinfo=UTC),  # mid-bar, mid-day
    datetime(2025, 1, 8, 8, 0, 0, 5_000, tzinfo=UTC),  # just after a funding event
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> FeatureWarehouse:
    return fx.build(tmp_path_factory.mktemp("retrieval"))


def target(warehouse: FeatureWarehouse) -> Path:
    return warehouse.root / "target"


def get(warehouse: FeatureWarehouse, events: pa.Table | pd.DataFrame, **kwargs: Any) -> pa.Table:
    catalog = load_catalog(target(warehouse))
    result = historical_features(events, source=warehouse.database, catalog=catalog, **kwargs)
    assert isinstance(result, pa.Table)
    return result


def same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return actual == expected or (math.isnan(actual) and math.isnan(expected))
    return bool(actual == expected)


def assert_matches_reference(result: pa.Table, expected: list[dict[str, Any]]) -> None:
    assert result.num_rows == len(expected)
    for name in expected[0] if expected else []:
        values = result.column(name).to_pylist()
        for index, (actual, wanted) in enumerate(zip(values, expected, strict=True)):
            assert same(actual, wanted[name]), (
                f"event {index}, {name}: got {actual!r}, the reference says {wanted[name]!r}"
            )


def events_at(*rows: tuple[str, datetime]) -> pa.Table:
    return pa.table(
        {
            "symbol": [symbol for symbol, _ in rows],
            "event_time": pa.array([moment for _, moment in rows], pa.timestamp("us", tz="UTC")),
        }
    )


# ------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("interval", ["5m", "1h"])
def test_random_events_get_what_a_brute_force_scan_finds(
    built: FeatureWarehouse, interval: str
) -> None:
    events = fx.random_events(3000, seed=5 if interval == "5m" else 6)
    result = get(built, events, interval=interval)
    rows = fx.mart(built.database, f"features_{interval}")
    features = [n for n in rows.column_names if n not in ("symbol", "open_time", "available_at")]
    # every column of the mart by default, in mart order, after the caller's and the added
    assert result.column_names == [*events.column_names, *ADDED_COLUMNS, *features]
    # the caller's columns come back unchanged, in input order (unsorted, with repeats)
    assert result.select(events.column_names).equals(events)
    assert_matches_reference(result, fx.reference(rows, events, features))
    # the random events reach every case: matched, no row yet, repeated
    reasons = result.column("feature_null_reason").to_pylist()
    assert reasons.count(None) > 1000 and reasons.count(NO_ROW) > 100


def test_max_age_nulls_the_features_of_older_rows(built: FeatureWarehouse) -> None:
    events = fx.random_events(2000, seed=7)
    features = ["close", "ret_5m", "basis_bps", "funding_agg_source", "is_derivatives_complete"]
    result = get(built, events, features=features, max_age="3m")
    rows = fx.mart(built.database, "features_5m")
    assert_matches_reference(result, fx.reference(rows, events, features, timedelta(minutes=3)))
    summary = summarise(result)
    assert summary.null_by_reason[TOO_OLD] > 100 and summary.null_by_reason[NO_ROW] > 100
    assert summary.matched + sum(summary.null_by_reason.values()) == summary.events == 2000


def test_the_edges(built: FeatureWarehouse) -> None:
    rows = fx.mart(built.database, "features_5m").to_pandas()
    btc = rows[rows["symbol"] == "BTCUSDT"].reset_index(drop=True)
    eth = rows[rows["symbol"] == "ETHUSDT"].reset_index(drop=True)
    at = btc["available_at"][100].to_pydatetime()
    eth_first = eth["available_at"][0].to_pydatetime()
    last = btc["available_at"].iloc[-1].to_pydatetime()
    events = events_at(
        ("BTCUSDT", at),  # exactly at an available_at: that row, age 0
        ("BTCUSDT", at - US),  # 1 µs before: the row before
        ("BTCUSDT", btc["available_at"][0].to_pydatetime() - US),  # before the first row
        ("ETHUSDT", eth_first - timedelta(hours=6)),  # in ETHUSDT's warm-up: BTCUSDT has rows
        ("ETHUSDT", eth_first),  # ETHUSDT's first row
        ("BTCUSDT", eth_first),  # the same time, the other symbol: its own row
        ("BTCUSDT", last + timedelta(days=30)),  # after the last row: the last, 30 days old
        ("BTCUSDT", at),  # a repeat, out of order
    )
    result = get(built, events, features=["close"]).to_pylist()
    assert (result[0]["feature_available_at"], result[0]["feature_age_seconds"]) == (at, 0.0)
    assert result[0]["close"] == btc["close"][100]
    assert result[1]["feature_available_at"] == btc["available_at"][99]
    assert result[1]["feature_age_seconds"] == pytest.approx(300 - 1e-6)
    assert result[1]["close"] == btc["close"][99]
    for index in (2, 3):
        assert result[index]["feature_null_reason"] == NO_ROW
        assert result[index]["close"] is None and result[index]["feature_open_time"] is None
    assert result[4]["close"] == eth["close"][0] and result[4]["feature_null_reason"] is None
    btc_then = btc[btc["available_at"] == pd.Timestamp(eth_first)]
    assert result[5]["close"] == btc_then["close"].item() != result[4]["close"]
    assert result[6]["feature_available_at"] == last
    assert result[6]["feature_age_seconds"] == 30 * 86_400
    assert result[7] == result[0]


def test_a_feature_set_and_names_come_in_mart_order(built: FeatureWarehouse) -> None:
    catalog = load_catalog(target(built))
    events = events_at(("BTCUSDT", datetime(2025, 1, 6, 12, tzinfo=UTC)))
    chosen = get(built, events, features=["vol_z", "close", "ret_5m"])
    assert chosen.column_names[-3:] == ["close", "ret_5m", "vol_z"]
    derivatives = get(built, events, interval="1h", feature_set="derivatives")
    members = catalog.set_members("derivatives", "features_1h")
    assert derivatives.column_names[len(events.column_names) + len(ADDED_COLUMNS) :] == members
    frame = historical_features(
        events.to_pandas(), source=built.database, catalog=catalog, features=["close"],
        as_pandas=True,
    )  # fmt: skip
    assert isinstance(frame, pd.DataFrame) and list(frame.columns)[-1] == "close"


def test_times_as_text_and_naive_times(built: FeatureWarehouse) -> None:
    at = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    text = pa.table(
        {
            "symbol": ["BTCUSDT"] * 4,
            "event_time": [
                "2025-01-06T12:00:00Z",
                "2025-01-06 14:00:00+02:00",
                "2025-01-06T12:00:00",  # no offset: UTC
                "2025-01-06t11:59:59.999999z",
            ],
        }
    )
    result = get(built, text, features=["close"]).to_pylist()
    assert [r["feature_available_at"] for r in result[:3]] == [at] * 3
    assert result[3]["feature_available_at"] == at - timedelta(minutes=5)
    assert result[0]["event_time"] == "2025-01-06T12:00:00Z"  # carried through as given
    naive = events_at(("BTCUSDT", at)).cast(
        pa.schema([("symbol", pa.string()), ("event_time", pa.timestamp("ns"))])
    )
    assert get(built, naive, features=["close"]).to_pylist()[0]["feature_available_at"] == at


def test_an_empty_events_table_gives_an_empty_result(built: FeatureWarehouse) -> None:
    empty = events_at()
    result = get(built, empty, features=["close"])
    assert result.num_rows == 0 and result.column_names[-1] == "close"


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"features": ["clsoe"]}, UnknownChoice, "did you mean close"),
        ({"features": ["close", "close"]}, UnknownChoice, "chosen twice"),
        ({"features": ["close; drop table features_5m"]}, UnknownChoice, "unknown feature"),
        ({"feature_set": "macro"}, UnknownChoice, "spot, derivatives, vendors"),
        ({"features": ["close"], "feature_set": "spot"}, UnknownChoice, "not both"),
        ({"interval": "15m"}, UnknownChoice, "5m, 1h"),
        ({"max_age": "soon"}, UnknownChoice, "15m, 2h"),
        ({"features": ["symbol"]}, UnknownChoice, "unknown feature"),
    ],
)
def test_a_bad_choice_names_the_valid_ones(
    built: FeatureWarehouse, kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    events = events_at(("BTCUSDT", datetime(2025, 1, 6, tzinfo=UTC)))
    with pytest.raises(error, match=needle) as raised:
        get(built, events, **kwargs)
    if isinstance(raised.value, UnknownChoice) and "features" in kwargs:
        assert "close" in raised.value.valid and "symbol" not in raised.value.valid


def test_an_unknown_symbol_lists_the_symbols_there_are(built: FeatureWarehouse) -> None:
    events = events_at(("BTCUSDT", START_OF_ROWS), ("SOLUSDT", START_OF_ROWS))
    with pytest.raises(UnknownSymbol, match=r"'SOLUSDT'.*BTCUSDT, ETHUSDT") as raised:
        get(built, events)
    assert raised.value.valid == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(UnknownSymbol, match=r"'btcusdt': symbols are upper case \(BTCUSDT\)"):
        get(built, events_at(("btcusdt", START_OF_ROWS)))


START_OF_ROWS = datetime(2025, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("events", "needle"),
    [
        (pa.table({"symbol": ["BTCUSDT"]}), "lack the column event_time"),
        (pa.table({"ticker": ["BTCUSDT"], "event_time": ["2025-01-06T00:00:00Z"]}),
         "lack the column symbol"),
        (pa.table({"symbol": ["BTCUSDT"] * 3,
                   "event_time": ["2025-01-06T00:00:00Z", "2025-01-06", "x"]}),
         r"event_time\[1\]: '2025-01-06' is not an RFC 3339 time"),
        (pa.table({"symbol": ["BTCUSDT"] * 2,
                   "event_time": ["2025-01-06T00:00:00Z", "2025-02-30T00:00:00Z"]}),
         r"event_time\[1\]: '2025-02-30T00:00:00Z' is not a valid time"),
        (pa.table({"symbol": ["BTCUSDT"], "event_time": ["9999-12-31T23:59:59-01:00"]}),
         r"event_time\[0\]: '9999-12-31T23:59:59-01:00' is outside the years 1 to 9999"),
        (pa.table({"symbol": ["BTCUSDT", None], "event_time": ["2025-01-06T00:00:00Z"] * 2}),
         r"symbol\[1\] is empty"),
        (pa.table({"symbol": ["BTCUSDT"], "event_time": pa.array([None], pa.timestamp("us"))}),
         r"event_time\[0\] is empty"),
        (pa.table({"symbol": ["BTCUSDT"], "event_time": [20250106]}),
         "must be a timestamp or RFC 3339 text"),
        (pa.table({"symbol": ["BTCUSDT"], "event_time": ["2025-01-06T00:00:00Z"], "close": [1]}),
         "column close has the name of a column retrieval adds"),
    ],
)  # fmt: skip
def test_bad_events_get_a_clear_error(
    built: FeatureWarehouse, events: pa.Table, needle: str
) -> None:
    with pytest.raises(BadEvents, match=needle):
        get(built, events)


def test_no_warehouse_is_a_clear_error(built: FeatureWarehouse, tmp_path: Path) -> None:
    events = events_at(("BTCUSDT", START_OF_ROWS))
    with pytest.raises(RetrievalError, match="no warehouse at"):
        historical_features(events, source=tmp_path / "none.duckdb")


def test_max_age_reads_durations() -> None:
    assert parse_max_age("15m") == timedelta(minutes=15)
    assert parse_max_age("2h") == timedelta(hours=2)
    assert parse_max_age("1d") == timedelta(days=1)
    assert parse_max_age(timedelta(seconds=5)) == timedelta(seconds=5)
    with pytest.raises(UnknownChoice):
        parse_max_age("-5m")


# ------------------------------------------------------------------------- point in time


@pytest.mark.parametrize("cut", CUTS, ids=lambda c: c.strftime("%m%dT%H%M%S.%f"))
def test_events_before_a_cut_get_the_same_answers_from_a_lake_cut_there(
    built: FeatureWarehouse, tmp_path_factory: pytest.TempPathFactory, cut: datetime
) -> None:
    truncated = fx.build(
        tmp_path_factory.mktemp("retrieval_cut"), cut_at(fx.two_symbol_lake(), cut)
    )
    events = fx.random_events(3000, seed=9, start=datetime(2025, 1, 3, tzinfo=UTC), end=cut + US)
    assert pc.max(events.column("event_time")).as_py() <= cut
    for interval in ("5m", "1h"):
        full = get(built, events, interval=interval)
        assert_same_answers(full, get(truncated, events, interval=interval), interval)
        assert full.column("feature_null_reason").null_count > 300  # matched events
    # and the cut warehouse knows no row after the cut
    later = events_at(("BTCUSDT", cut + timedelta(hours=6)))
    assert get(truncated, later, features=["close"]).to_pylist()[0]["feature_available_at"] <= cut


def assert_same_answers(expected: pa.Table, actual: pa.Table, what: str) -> None:
    """Equal, floats within 1e-9 relative (a z-score's last bits follow DuckDB's parallel
    aggregation order, as in tests/features/test_point_in_time.py)."""
    assert actual.schema == expected.schema, what
    for name in expected.column_names:
        left, right = expected.column(name), actual.column(name)
        if pa.types.is_floating(left.type):
            assert left.is_null().equals(right.is_null()), f"{what}: {name}'s NULLs differ"
            a = left.to_numpy(zero_copy_only=False)
            b = right.to_numpy(zero_copy_only=False)
            close = np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
            assert close.all(), f"{what}: {name} differs at event {int(np.flatnonzero(~close)[0])}"
        else:
            assert left.equals(right), f"{what}: {name} differs"


# ------------------------------------------------------------------------------- the CLI


def cli(warehouse: FeatureWarehouse, *args: str) -> tuple[int, str]:
    env = {"BTCFS_DATA_DIR": str(warehouse.root), "DBT_TARGET_PATH": str(target(warehouse))}
    result = CliRunner().invoke(root_cli, list(args), env=env)
    return result.exit_code, result.output


def test_get_writes_the_answers_and_a_manifest_that_verify_checks(
    built: FeatureWarehouse, tmp_path: Path
) -> None:
    events = fx.random_events(500, seed=3)
    events_file = tmp_path / "labels.parquet"
    pq.write_table(events, events_file)
    out = tmp_path / "train.parquet"
    code, output = cli(built, "features", "get", "--events", str(events_file), "--out", str(out),
                       "--set", "spot", "--max-age", "15m")  # fmt: skip
    assert code == 0, output
    expected = get(built, events, feature_set="spot", max_age="15m")
    assert pq.read_table(out).equals(expected)
    summary = summarise(expected)
    assert output.strip().startswith(summary.line()) and "no UTC offset" not in output
    manifest = json.loads((tmp_path / "train.parquet.manifest.json").read_text())
    catalog = load_catalog(target(built))
    ledger = built_by(built)
    assert manifest["warehouse"]["dbt_invocation_id"] == ledger
    assert manifest["lake"] == lake_digest(built.lake) and manifest["lake"]["partitions"] > 100
    assert manifest["catalog"]["version"] == catalog.version()
    assert manifest["request"] == {
        "interval": "5m", "feature_set": "spot", "max_age_seconds": 900.0,
        "features": [c for c in catalog.set_members("spot") if c in expected.column_names],
    }  # fmt: skip
    assert manifest["summary"] == summary.to_dict()

    code, output = cli(built, "features", "verify", str(out))
    assert code == 0, output
    assert output.count("ok ") == 6 and "what the warehouse and lake of now retrieve" in output
    # a changed file is caught, and so are answers that no longer match
    table = pq.read_table(out)
    pq.write_table(table.set_column(table.column_names.index("close"), "close",
                                    pc.multiply(table.column("close"), 2.0)), out)  # fmt: skip
    code, output = cli(built, "features", "verify", str(out))
    assert code == 1
    assert "DIFFERS  output file" in output and "DIFFERS  answers" in output


def built_by(warehouse: FeatureWarehouse) -> str:
    rows = warehouse_rows(
        warehouse,
        "select invocation_id from btcfs_gate_ledger where unique_id = 'model.btcfs.features_5m'"
        " and status = 'success' order by run_started_at desc limit 1",
    )
    return str(rows[0][0])


def warehouse_rows(warehouse: FeatureWarehouse, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse.database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_get_reads_csv_writes_csv_and_says_once_that_times_without_offset_are_utc(
    built: FeatureWarehouse, tmp_path: Path
) -> None:
    events = tmp_path / "events.csv"
    events.write_text(
        "symbol,event_time,label\n"
        "BTCUSDT,2025-01-06T12:00:00Z,1\n"
        "BTCUSDT,2025-01-06T12:00:00,0\n"
        "ETHUSDT,2025-01-06 12:00:00,1\n"
        "BTCUSDT,2024-12-01T00:00:00+01:00,0\n"
    )
    out = tmp_path / "answers.csv"
    code, output = cli(built, "features", "get", "--events", str(events), "--out", str(out),
                       "--features", "close,ret_5m", "--interval", "1h")  # fmt: skip
    assert code == 0, output
    assert output.count("2 event time(s) had no UTC offset: read as UTC") == 1
    assert "4 events, 3 matched, NULL: 1 no_row_at_or_before_event" in output
    written = out.read_text().splitlines()
    assert written[0].replace('"', "") == (
        "symbol,event_time,label,feature_open_time,feature_available_at,feature_age_seconds,"
        "feature_null_reason,close,ret_5m"
    )
    assert len(written) == 5
    code, output = cli(built, "features", "verify", str(out) + ".manifest.json")
    assert code == 0, output


@pytest.mark.parametrize(
    ("name", "text", "args", "needle"),
    [
        ("bad.csv", "symbol,event_time\nBTCUSDT,2025-01-06T00:00:00Z\nBTCUSDT,x,y\n", [],
         "Error: bad.csv: line 3 has 3 fields, the header 2"),
        ("time.csv", "symbol,event_time\nBTCUSDT,2025-01-06T00:00:00Z\nBTCUSDT,yesterday\n", [],
         "Error: time.csv, line 3: event_time 'yesterday' is not an RFC 3339 time"),
        ("empty.csv", "symbol,event_time\n", [], "Error: empty.csv holds no events"),
        ("zero.csv", "", [], "Error: zero.csv is empty"),
        ("nosym.csv", "ticker,event_time\nBTCUSDT,2025-01-06T00:00:00Z\n", [],
         "lack the column symbol"),
        ("sol.csv", "symbol,event_time\nSOLUSDT,2025-01-06T00:00:00Z\n", [],
         "unknown symbol 'SOLUSDT': the warehouse holds BTCUSDT, ETHUSDT"),
        ("ok.csv", "symbol,event_time\nBTCUSDT,2025-01-06T00:00:00Z\n", ["--features", "clsoe"],
         "did you mean close"),
        ("ok.txt", "symbol,event_time\n", [], "unknown format '.txt'"),
    ],
)  # fmt: skip
def test_get_refuses_bad_input_in_one_line(
    built: FeatureWarehouse, tmp_path: Path, name: str, text: str, args: list[str], needle: str
) -> None:
    events = tmp_path / name
    events.write_text(text)
    out = tmp_path / "out.parquet"
    code, output = cli(built, "features", "get", "--events", str(events), "--out", str(out), *args)
    assert code == 1 and needle in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1 and not out.exists()


def test_get_and_verify_have_help_with_an_example(built: FeatureWarehouse) -> None:
    for command in ("get", "verify"):
        code, output = cli(built, "features", command, "--help")
        assert code == 0 and "Example: btcfs features " + command in output


def test_the_docs_example_builds_a_training_set_from_labelled_events_and_trains(
    built: FeatureWarehouse, tmp_path: Path
) -> None:
    env = {**os.environ, "BTCFS_DATA_DIR": str(built.root), "DBT_TARGET_PATH": str(target(built))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--warehouse", str(built.database), "--out", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no_row_at_or_before_event" in proc.stdout and "accuracy" in proc.stdout
    code, output = cli(built, "features", "verify", str(tmp_path / "my_training_set.parquet"))
    assert code == 0, output


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "train_on_my_events.py"

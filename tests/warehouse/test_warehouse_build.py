"""A full `dbt build` over a synthetic lake of all six datasets: gates, contract, semantics."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from tests.warehouse import lakefixtures as lf
from tests.warehouse.conftest import CORE, Warehouse, make_warehouse

pytestmark = pytest.mark.dbt

START = date(2024, 2, 27)  # crosses a leap day and a month end
DAYS = 4

BAR_CONTRACT = {
    "symbol": "VARCHAR",
    "open_time": "TIMESTAMP WITH TIME ZONE",
    "available_at": "TIMESTAMP WITH TIME ZONE",
    "open": "DECIMAL",
    "high": "DECIMAL",
    "low": "DECIMAL",
    "close": "DECIMAL",
    "volume": "DECIMAL",
    "quote_volume": "DECIMAL",
    "trade_count": "BIGINT",
    "taker_buy_base_volume": "DECIMAL",
    "taker_buy_quote_volume": "DECIMAL",
    "imputed_minutes": "INTEGER",
    "is_imputed": "BOOLEAN",
    "epoch_s": "BIGINT",
}
FUNDING_CONTRACT = {
    "symbol": "VARCHAR",
    "open_time": "TIMESTAMP WITH TIME ZONE",
    "available_at": "TIMESTAMP WITH TIME ZONE",
    "funding_rate": "DOUBLE",
    "funding_at": "TIMESTAMP WITH TIME ZONE",
    "funding_age_minutes": "BIGINT",
}
OI_CONTRACT = {
    "symbol": "VARCHAR",
    "open_time": "TIMESTAMP WITH TIME ZONE",
    "available_at": "TIMESTAMP WITH TIME ZONE",
    "sum_open_interest": "DOUBLE",
    "sum_open_interest_value": "DOUBLE",
    "oi_measured_at": "TIMESTAMP WITH TIME ZONE",
    "is_oi_forward_filled": "BOOLEAN",
    "oi_forward_fill_bars": "BIGINT",
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = make_warehouse(tmp_path_factory, "synthetic")
    market = lf.synthetic_market(START, DAYS, seed=11)
    # One missing open-interest measurement, forward-filled in the as-of models.
    oi_key = ("open-interest", "BTCUSDT", "5m")
    at = lf.datetime(2024, 2, 28, 10, tzinfo=lf.UTC)
    missing = lf.pa.scalar(at, lf.pa.timestamp("us", "UTC"))
    market[oi_key] = market[oi_key].filter(
        lf.pc.not_equal(market[oi_key].column("measured_at"), missing)
    )
    lf.land(warehouse.lake, market)
    warehouse.dbt("build", *CORE)
    return warehouse


def _columns(warehouse: Warehouse, relation: str) -> dict[str, str]:
    rows = warehouse.query(f"describe {relation}")
    return {name: kind.split("(")[0] for name, kind, *_ in rows}


def test_every_gate_and_unit_test_passes(synthetic: Warehouse) -> None:
    statuses = synthetic.runs[-1].statuses()
    failing = {k: v for k, v in statuses.items() if v not in ("pass", "success", "warn")}
    assert not failing
    unit = synthetic.runs[-1].statuses("unit_test.")
    assert unit and set(unit.values()) == {"pass"}
    # The only warnings are freshness (fixture rows were "ingested" on a fixed past date) and
    # ETHUSDT, a default symbol (var symbols) this BTCUSDT-only lake never landed.
    warned = {k for k, v in statuses.items() if v == "warn"}
    assert "symbols_have_rows__bars_5m" in warned
    assert all(k.startswith("freshness__") for k in warned - {"symbols_have_rows__bars_5m"})
    (line,) = [g for g in synthetic.runs[-1].gate_lines() if g["gate"].startswith("symbols_have")]
    assert (line["level"], line["symbol"]) == ("WARN", "ETHUSDT")
    assert "the var symbols lists ETHUSDT but bars_5m has no rows of it" in line["detail"]


@pytest.mark.parametrize(
    ("relation", "contract"),
    [
        ("bars_5m", BAR_CONTRACT),
        ("bars_15m", BAR_CONTRACT),
        ("bars_1h", BAR_CONTRACT),
        ("bars_4h", BAR_CONTRACT),
        ("bars_1d", BAR_CONTRACT),
        ("perp_bars_5m", {k: v for k, v in BAR_CONTRACT.items() if k != "trade_count"}),
        ("perp_bars_1h", {k: v for k, v in BAR_CONTRACT.items() if k != "trade_count"}),
        ("int_funding_as_of_bars_5m", FUNDING_CONTRACT),
        ("int_funding_as_of_bars_1h", FUNDING_CONTRACT),
        ("int_open_interest_as_of_bars_5m", OI_CONTRACT),
        ("int_open_interest_as_of_bars_1h", OI_CONTRACT),
    ],
)
def test_contract_columns_and_types(
    synthetic: Warehouse, relation: str, contract: dict[str, str]
) -> None:
    columns = _columns(synthetic, relation)
    for name, kind in contract.items():
        assert name in columns, f"{relation} lacks {name}"
        assert columns[name] == kind, f"{relation}.{name} is {columns[name]}, expected {kind}"


@pytest.mark.parametrize(
    ("relation", "width_s"),
    [
        ("bars_5m", 300),
        ("bars_15m", 900),
        ("bars_1h", 3600),
        ("bars_4h", 14400),
        ("bars_1d", 86400),
    ],
)
def test_bars_equal_an_independent_resample_of_the_lake(
    synthetic: Warehouse, relation: str, width_s: int
) -> None:
    """Recompute every bar straight from the Parquet files with other SQL (arg_min/arg_max)."""
    expected = synthetic.query(
        f"""
        select
            time_bucket(to_seconds({width_s}), open_time, timestamptz '1970-01-01 00:00:00+00'),
            arg_min(open, open_time), max(high), min(low), arg_max(close, open_time),
            sum(volume), sum(quote_volume), sum(trade_count), sum(taker_buy_base_volume),
            sum(taker_buy_quote_volume)
        from read_parquet('{synthetic.lake}/binance/spot_klines/*/*/*/part-0.parquet')
        group by 1 having count(*) = {width_s // 60}
        order by 1
        """
    )
    ours = synthetic.query(
        f"""select open_time, open, high, low, close, volume, quote_volume, trade_count,
            taker_buy_base_volume, taker_buy_quote_volume from {relation} order by open_time"""
    )
    assert len(ours) == DAYS * 86400 // width_s
    assert ours == expected


def test_bar_keys_and_available_at(synthetic: Warehouse) -> None:
    rows = synthetic.query(
        """select min(open_time), max(open_time), count(*),
            count(*) filter (where available_at = open_time + interval 5 minute),
            count(*) filter (where epoch_s = epoch(open_time)),
            count(*) filter (where is_imputed)
        from bars_5m"""
    )
    first, last, count, available_ok, epoch_ok, imputed = rows[0]
    assert count == DAYS * 288 == available_ok == epoch_ok
    assert first.isoformat() == "2024-02-27T00:00:00+00:00"
    assert last.isoformat() == "2024-03-01T23:55:00+00:00"
    assert imputed == 0


def test_funding_as_of_is_point_in_time(synthetic: Warehouse) -> None:
    rows = synthetic.query(
        """select open_time, available_at, funding_at, funding_age_minutes, funding_rate,
            is_funding_forward_filled
        from int_funding_as_of_bars_5m order by open_time"""
    )
    events = synthetic.query("select funding_at, available_at from int_funding_rates_floored")
    available = dict(events)
    for _open_time, bar_available, funding_at, age, rate, forward_filled in rows:
        if funding_at is None:
            # Only before the first event is known (00:00 event + 60 s lag).
            assert bar_available.isoformat() <= "2024-02-27T00:01:00+00:00"
            continue
        assert available[funding_at] <= bar_available
        # The latest known one: the next event is not yet known.
        assert age == (bar_available - funding_at).total_seconds() / 60
        assert age <= 8 * 60 + 5
        assert rate is not None and not forward_filled
    # The bar that closes on a funding hour does not see that hour's rate; the next one does.
    by_open = {r[0].isoformat(): r for r in rows}
    assert by_open["2024-02-27T07:55:00+00:00"][2].isoformat() == "2024-02-27T00:00:00+00:00"
    assert by_open["2024-02-27T08:00:00+00:00"][2].isoformat() == "2024-02-27T08:00:00+00:00"


def test_funding_jitter_is_floored_to_the_hour(synthetic: Warehouse) -> None:
    rows = synthetic.query(
        """select count(*), count(*) filter (where reported_funding_at > funding_at),
            count(*) filter (where date_trunc('hour', reported_funding_at) = funding_at)
        from int_funding_rates_floored"""
    )
    events, jittered, floored = rows[0]
    assert events == DAYS * 3 == floored
    assert jittered > 0


def test_open_interest_forward_fill_is_flagged_and_capped(synthetic: Warehouse) -> None:
    rows = synthetic.query(
        """select open_time, oi_measured_at, is_oi_forward_filled, oi_forward_fill_bars,
            sum_open_interest
        from int_open_interest_as_of_bars_5m
        where open_time between timestamptz '2024-02-28 09:55:00+00'
            and timestamptz '2024-02-28 10:10:00+00'
        order by open_time"""
    )
    assert [(r[0].strftime("%H:%M"), r[1].strftime("%H:%M"), r[2], r[3]) for r in rows] == [
        ("09:55", "09:55", False, 0),
        ("10:00", "09:55", True, 1),  # the 10:00 measurement is missing
        ("10:05", "10:05", False, 0),
        ("10:10", "10:10", False, 0),
    ]
    assert all(r[4] is not None for r in rows)
    gap = synthetic.query(
        """select missing_periods_before from int_open_interest_floored
        where measured_at = timestamptz '2024-02-28 10:05:00+00'"""
    )
    assert gap == [(1,)]


def test_open_interest_goes_null_after_ffill_max_bars(synthetic: Warehouse) -> None:
    # Past the last measurement (23:55 of the last day) there are no more bars, so use the
    # forward-fill columns' definition on the tail instead: none exceeds the cap with a value.
    rows = synthetic.query(
        """select count(*) from int_open_interest_as_of_bars_5m
        where oi_forward_fill_bars > 3 and sum_open_interest is not null"""
    )
    assert rows == [(0,)]


def test_perp_bars_and_spine(synthetic: Warehouse) -> None:
    rows = synthetic.query(
        "select count(*), count(*) filter (where is_imputed) from int_perp_bars_1m_gap_filled"
    )
    assert rows == [(DAYS * 1440, 0)]
    assert synthetic.query("select count(*) from perp_bars_1h") == [(DAYS * 24,)]


def test_decimal_sums_are_exact(synthetic: Warehouse) -> None:
    lake_volume = synthetic.query(
        f"""select sum(volume) from read_parquet(
            '{synthetic.lake}/binance/spot_klines/*/*/*/part-0.parquet')"""
    )[0][0]
    day_volume = synthetic.query("select sum(volume) from bars_1d")[0][0]
    assert isinstance(day_volume, Decimal)
    assert day_volume == lake_volume


@pytest.fixture(scope="module")
def spot_only(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = make_warehouse(tmp_path_factory, "spot_only")
    lf.land(warehouse.lake, lf.only(lf.synthetic_market(START, 2, seed=3), "spot-klines"))
    warehouse.dbt("build", *CORE)
    return warehouse


def test_absent_datasets_build_as_empty_typed_relations(spot_only: Warehouse) -> None:
    assert spot_only.query("select count(*) from bars_5m") == [(576,)]
    for relation in ("stg_binance__perp_klines", "perp_bars_5m", "int_open_interest_floored"):
        assert spot_only.query(f"select count(*) from {relation}") == [(0,)]
    assert _columns(spot_only, "stg_binance__funding_rates")["funding_rate"] == "DECIMAL"
    rows = spot_only.query(
        "select count(*), count(funding_rate), count(sum_open_interest)"
        " from int_funding_as_of_bars_5m"
        " inner join int_open_interest_as_of_bars_5m using (symbol, open_time)"
    )
    assert rows == [(576, 0, 0)]


def test_source_freshness_warns_for_datasets_never_landed(spot_only: Warehouse) -> None:
    run = spot_only.dbt("source", "freshness")
    assert "PASS freshness of binance.spot_klines" in run.output
    assert "WARN freshness of binance.perp_klines" in run.output
    assert "quarantine" not in run.output  # quarantine files carry no freshness signal
    # `btcfs qa` reports the last freshness run beside the gates, naming what is stale
    qa = CliRunner().invoke(
        cli, ["qa", "--target-path", str(spot_only.target), "--warehouse", str(spot_only.database)]
    )
    line = next(x for x in qa.output.splitlines() if x.startswith("source freshness ("))
    assert "pass" in line and "warn" in line, qa.output
    assert "binance.perp_klines (warn)" in qa.output


def test_btcfs_qa_passes_and_writes_a_summary_per_dataset(
    synthetic: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic.dbt("build", *CORE)  # the module's other runs may have replaced run_results.json
    monkeypatch.setenv("BTCFS_DATA_DIR", str(synthetic.root))
    result = CliRunner().invoke(cli, ["qa", "--target-path", str(synthetic.target), "--verbose"])
    assert result.exit_code == 0, result.output
    assert "PASS    gap_ratio__spot_klines" in result.output
    folder = synthetic.root / "reports" / "qa"
    datasets = {p.stem for p in folder.glob("*.json")} - {"gates"}
    assert datasets == {
        "spot_klines", "perp_klines", "mark_klines", "premium_klines", "funding", "open_interest",
    }  # fmt: skip
    spot = json.loads((folder / "spot_klines.json").read_text())
    assert spot["coverage"] == 1.0 and spot["gap_ratio"] == 0.0
    assert spot["row_count"] == DAYS * 1440 and spot["duplicate_rows"] == 0
    assert spot["null_counts"] == {} and spot["quarantined_rows"] == 0
    oi = json.loads((folder / "open_interest.json").read_text())
    assert oi["missing_periods"] == 1  # the measurement removed above
    assert 0 < oi["imputed_share_5m"] < 0.01

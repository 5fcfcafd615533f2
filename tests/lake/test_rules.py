"""lake.rules: the integer fast path judges rows exactly as Arrow's decimal kernels do."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from lake.rules import Columns, duplicates, problems
from lake.schemas import BY_TABLE, PRICE, RATE, TIMESTAMP
from tests.ingest.oracle import rules as oracle

MINUTE_US = 60_000_000
# Prices either side of what 64 bits hold unscaled (9.2e10 at 8 places), and a null.
price = st.one_of(
    st.decimals(min_value=-10, max_value=10**6, places=8, allow_nan=False),
    st.decimals(min_value=-(10**19), max_value=10**19, places=8, allow_nan=False),
    st.sampled_from(
        [Decimal("92233720368.54775807"), Decimal("-92233720368.54775808"), Decimal(0), None]
    ),
)


def kline_table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 10
    names = ("open", "high", "low", "close", "volume", "quote_volume",
             "taker_buy_base_volume", "taker_buy_quote_volume")  # fmt: skip
    table = {name: pa.array(columns[i], PRICE) for i, name in enumerate(names)}
    table["trade_count"] = pa.array(columns[8], pa.int64())
    minutes = np.asarray(columns[9], dtype=np.int64)
    table["open_time"] = pa.array(minutes * MINUTE_US).cast(TIMESTAMP)
    table["close_time"] = pa.array(minutes * MINUTE_US + MINUTE_US - 1).cast(TIMESTAMP)
    return pa.table(table)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(*[price] * 8, st.one_of(st.integers(-5, 10**12), st.none()), st.integers(0, 5)),
        max_size=8,
    ),
    st.sampled_from(["spot_klines", "premium_klines"]),
)
def test_kline_rules_match_the_oracle(rows: list[tuple], dataset: str) -> None:
    table = kline_table(rows)
    ds = BY_TABLE[dataset]
    assert problems(table, ds, interval_us=MINUTE_US) == oracle.problems(
        table, ds, interval_us=MINUTE_US
    )
    keep = np.ones(table.num_rows, dtype=bool)
    keyed = table.append_column("_key", table.column("open_time").cast(pa.int64()))
    got, expected = duplicates(keyed, ["_key"], keep), oracle.duplicates(keyed, ["_key"], keep)
    assert all((a == b).all() for a, b in zip(got, expected, strict=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.decimals(min_value=-1, max_value=1, places=8, allow_nan=False), max_size=6))
def test_funding_cap_matches_the_oracle(rates: list[Decimal]) -> None:
    n = len(rates)
    table = pa.table(
        {
            "funding_time": pa.array(np.arange(n) * 28_800_000_000).cast(TIMESTAMP),
            "funding_rate": pa.array(rates, RATE),
            "mark_price": pa.array([None] * n, PRICE),
            "funding_interval_hours": pa.array([8] * n, pa.int32()),
        }
    )
    ds = BY_TABLE["funding"]
    assert problems(table, ds) == oracle.problems(table, ds)


def test_exact_integers_only_when_they_are_exact() -> None:
    fits = pa.table({"p": pa.array([Decimal("1.5"), Decimal("-2.25")], PRICE)})
    ints, scale = Columns(fits).exact("p") or (None, None)
    assert scale == 8 and ints is not None and ints.tolist() == [150_000_000, -225_000_000]
    wide = pa.table({"p": pa.array([Decimal("92233720368.54775808")], PRICE)})
    assert Columns(wide).exact("p") is None  # beyond int64 unscaled: Arrow's kernels decide
    nulls = pa.table({"p": pa.array([Decimal(1), None], PRICE)})
    assert Columns(nulls).exact("p") is None
    sliced = pa.table({"p": pa.array([Decimal(1), Decimal(2), Decimal(3)], PRICE).slice(1, 2)})
    exact = Columns(sliced).exact("p")
    assert exact is not None and exact[0].tolist() == [200_000_000, 300_000_000]
    chunked = pa.table({"p": pa.chunked_array([[Decimal(1)], [Decimal(2)]], PRICE)})
    exact = Columns(chunked).exact("p")
    assert exact is not None and exact[0].tolist() == [100_000_000, 200_000_000]

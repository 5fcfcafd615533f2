"""Write the CSV fixtures of the features_5m dbt unit tests
(data-tests/fixtures/features_unit_*.csv).

64 bars of 5 minutes from 2025-01-01. Closes rise by 1 a bar (so returns have known values);
spot volume cycles 10, 20, 30 and then ends 0, 20, 100, 15 (so winsorisation clips from both
sides); funding moves every bar over the last six. Run from the repo root after editing:
``python tests/features/make_unit_fixtures.py``. The expected values live in
models/marts/features/_features__models.yml, derived there by hand.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

BARS = 64
START = datetime(2025, 1, 1, tzinfo=UTC)
OUT = Path(__file__).resolve().parents[2] / "data-tests" / "fixtures"


def _time(index: int) -> str:
    return (START + timedelta(minutes=5 * index)).strftime("%Y-%m-%d %H:%M:%S")


def volume(bar: int) -> int:
    """Spot volume of 1-based bar `bar`."""
    tail = {61: 0, 62: 20, 63: 100, 64: 15}
    return tail.get(bar, 10 * (1 + (bar - 1) % 3))


def taker_buy(bar: int) -> float:
    tail = {62: 15.0, 63: 25.0, 64: 7.5}
    return tail.get(bar, volume(bar) / 2)


def funding_rate(bar: int) -> float:
    tail = {59: 0.0001, 60: 0.0003, 61: 0.0002, 62: 0.0004, 63: 0.0001, 64: 0.0003}
    return tail.get(bar, 0.0001)


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (OUT / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    bars, perp, funding, open_interest = [], [], [], []
    for index in range(BARS):
        bar = index + 1
        close = 1000 + bar
        epoch_s = int((START + timedelta(minutes=5 * index)).timestamp())
        bars.append(
            [
                "BTCUSDT", _time(index), _time(index + 1), epoch_s,
                close - 1, close + 3, close - 4, close,
                volume(bar), volume(bar) * close, taker_buy(bar), 0, "false",
            ]
        )  # fmt: skip
        perp.append(["BTCUSDT", _time(index), close + 1, 80, 80 * (close + 1), 40, "false"])
        funding.append(["BTCUSDT", _time(index), funding_rate(bar), _time(index)])
        oi = 50000 + 10 * bar
        open_interest.append(["BTCUSDT", _time(index), oi, oi * close, "false"])
    write(
        "features_unit_bars_5m",
        [
            "symbol", "open_time", "available_at", "epoch_s", "open", "high", "low", "close",
            "volume", "quote_volume", "taker_buy_base_volume", "imputed_minutes", "is_imputed",
        ],
        bars,
    )  # fmt: skip
    write(
        "features_unit_perp_bars_5m",
        [
            "symbol", "open_time", "close", "volume", "quote_volume", "taker_buy_base_volume",
            "is_imputed",
        ],
        perp,
    )  # fmt: skip
    write(
        "features_unit_funding_as_of_bars_5m",
        ["symbol", "open_time", "funding_rate", "funding_at"],
        funding,
    )
    write(
        "features_unit_open_interest_as_of_bars_5m",
        [
            "symbol",
            "open_time",
            "sum_open_interest",
            "sum_open_interest_value",
            "is_oi_forward_filled",
        ],
        open_interest,
    )


if __name__ == "__main__":
    main()

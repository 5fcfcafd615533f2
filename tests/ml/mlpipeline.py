"""Warehouses for the trainer's data and behaviour tests, built the real way.

Synthetic: the replay server's SyntheticMarket (a regime) -> `btcfs ingest all` over loopback
-> `dbt build`. Real: the Binance files in ../shared/data landed as the loaders would, with
the perpetual and open interest the recordings lack replaced by neutral stand-ins (see
`land_real_lake`). Each build takes a few tens of seconds: fixtures build once per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from ingest.timeutil import day_start_us
from lake.schemas import DATASETS
from replay import ReplayServer, SyntheticMarket

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_DATA_REASON = f"real market data not found at {SHARED_DATA} (../shared/data from the repo)"
BIN = Path(sys.executable).parent
#: A 7-day z-score window (production: 30 days) so ~50 synthetic days leave ~5 weeks of rows.
SHORT_WINDOW_VARS = "{features_window_seconds: 604800}"
SYNTHETIC_DAYS = 50
SYNTHETIC_START = date(2025, 1, 1)
#: The contiguous stretch of real spot 1m files (2025-05-19 .. 2025-08-31).
REAL_FIRST_DAY = date(2025, 5, 19)


@dataclass(frozen=True)
class BuiltWarehouse:
    root: Path  # BTCFS_DATA_DIR

    @property
    def database(self) -> Path:
        return self.root / "warehouse" / "build.duckdb"

    @property
    def target(self) -> Path:
        return self.root / "target"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "MLFLOW_"))}
        env.update(
            BTCFS_DATA_DIR=str(self.root),
            DBT_PROFILES_DIR=str(REPO / "profiles"),
            DBT_TARGET_PATH=str(self.target),
            DBT_LOG_PATH=str(self.root / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        return env


def dbt_build(warehouse: BuiltWarehouse, *extra: str) -> None:
    (warehouse.root / "warehouse").mkdir(parents=True, exist_ok=True)
    command = [str(BIN / "dbt"), "build", "--select", "+training_set_5m", *extra]
    proc = subprocess.run(
        command, cwd=REPO, env=warehouse.env(), capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{(proc.stdout + proc.stderr)[-6000:]}")


def synthetic_warehouse(root: Path, regime: str, seed: int = 11) -> BuiltWarehouse:
    """SYNTHETIC_DAYS of a regime through the replay server, the loaders and dbt."""
    warehouse = BuiltWarehouse(root)
    now = datetime.combine(SYNTHETIC_START, datetime.min.time(), UTC) + timedelta(
        days=SYNTHETIC_DAYS, minutes=30
    )
    market = SyntheticMarket(
        seed,
        day_start_us(SYNTHETIC_START),
        day_start_us(SYNTHETIC_START + timedelta(days=SYNTHETIC_DAYS + 1)),
        symbols=("BTCUSDT",),
        regime=regime,
    )
    config = root / "ingest.yml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"symbols: [BTCUSDT]\nstart: {SYNTHETIC_START.isoformat()}\nrefresh_tail: 2\n"
        "datasets:\n"
        "  - {dataset: spot-klines, interval: 1m}\n"
        "  - {dataset: perp-klines, interval: 1m}\n"
        "  - {dataset: funding}\n"
        "  - {dataset: open-interest, interval: 5m}\n"
    )
    env = {**warehouse.env(), "BTCFS_NOW": now.isoformat()}
    with ReplayServer(market, now=now.isoformat()) as url:
        proc = subprocess.run(
            [str(BIN / "btcfs"), "ingest", "all", "--config", str(config), "--base-url", url],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    dbt_build(warehouse, "--vars", SHORT_WINDOW_VARS)
    return warehouse


def land_real_lake(lake: Path) -> None:
    """Real spot 1m klines and funding; neutral stand-ins for what was never recorded.

    The recordings hold no 1m perpetual klines and no open interest for these days, and the
    features mart publishes a row only when both are present. The stand-ins carry no
    information: the perpetual is the spot market itself (basis 0, perp-vs-spot flow 0, perp
    share 1/2) and open interest is constant (its z-score is 0). Every spot-derived feature,
    every label and the funding features are real.
    """
    from tests.warehouse import lakefixtures as lf

    days = [day for day in lf.real_spot_days() if day >= REAL_FIRST_DAY]
    spot = lf.real_spot_1m(days)
    times = spot.column("open_time").cast(pa.int64()).to_numpy()
    five = times[times % 300_000_000 == 0]
    rows = len(five)
    open_interest = pa.table(
        {
            "measured_at": pa.array(five).cast(pa.timestamp("us", tz="UTC")),
            "sum_open_interest": pa.array(["80000"] * rows).cast(pa.decimal128(28, 8)),
            "sum_open_interest_value": pa.array(["8000000000"] * rows).cast(pa.decimal128(28, 8)),
            "count_toptrader_long_short_ratio": pa.nulls(rows, pa.float64()),
            "sum_toptrader_long_short_ratio": pa.nulls(rows, pa.float64()),
            "count_long_short_ratio": pa.nulls(rows, pa.float64()),
            "sum_taker_long_short_vol_ratio": pa.nulls(rows, pa.float64()),
            "source": pa.array(["rest"] * rows),
            "ingested_at": pa.array([lf.INGESTED_AT] * rows, type=pa.timestamp("us", tz="UTC")),
        }
    )
    lf.land(
        lake,
        {
            ("spot-klines", "BTCUSDT", "1m"): spot,
            ("perp-klines", "BTCUSDT", "1m"): spot,
            ("funding", "BTCUSDT", None): lf.real_funding(),
            ("open-interest", "BTCUSDT", "5m"): open_interest.cast(
                DATASETS["open-interest"].schema
            ),
        },
    )


def real_warehouse(root: Path) -> BuiltWarehouse:
    """The real days with the production feature windows (30 days: ~44 days of rows)."""
    warehouse = BuiltWarehouse(root)
    land_real_lake(root / "lake")
    dbt_build(warehouse)
    return warehouse

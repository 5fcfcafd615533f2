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

from ingest.timeutil import day_start_us
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


def synthetic_warehouse(
    root: Path, regime: str, seed: int = 11, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> BuiltWarehouse:
    """SYNTHETIC_DAYS of a regime through the replay server, the loaders and dbt."""
    warehouse = BuiltWarehouse(root)
    now = datetime.combine(SYNTHETIC_START, datetime.min.time(), UTC) + timedelta(
        days=SYNTHETIC_DAYS, minutes=30
    )
    market = SyntheticMarket(
        seed,
        day_start_us(SYNTHETIC_START),
        day_start_us(SYNTHETIC_START + timedelta(days=SYNTHETIC_DAYS + 1)),
        symbols=symbols,
        regime=regime,
    )
    config = root / "ingest.yml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"symbols: [{', '.join(symbols)}]\nstart: {SYNTHETIC_START.isoformat()}\nrefresh_tail: 2\n"
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
    """Real spot 1m klines and nothing else: the lake of a spot-only user, which gives the
    spot feature set (nothing stands in for the perpetual or open interest, never recorded
    for these days)."""
    from tests.warehouse import lakefixtures as lf

    days = [day for day in lf.real_spot_days() if day >= REAL_FIRST_DAY]
    lf.land(lake, {("spot-klines", "BTCUSDT", "1m"): lf.real_spot_1m(days)})


def real_warehouse(root: Path) -> BuiltWarehouse:
    """The real days with the production feature windows: 31 days of warm-up, ~74 of rows."""
    warehouse = BuiltWarehouse(root)
    land_real_lake(root / "lake")
    dbt_build(warehouse)
    return warehouse

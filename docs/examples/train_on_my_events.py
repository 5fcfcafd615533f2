"""Train on your own labelled events with point-in-time features (docs/retrieval.md).

You have events of your own: times at which you made a decision (a signal fired, a trade was
taken) and what came of it (a label). This script

1. writes such a file when you have none (`my_events.csv`: symbol, event_time, label, every
   30 minutes at a random second; label 1 when BTCUSDT closed higher an hour later, read from
   the warehouse's bars, as your own outcome would be read from your own records),
2. asks the warehouse, through `btcfs features get`, for the spot features that were
   available at each event (never a row from after it; NULL when the newest row is older than
   15 minutes), with a manifest so the training set can be checked again
   (`btcfs features verify`),
3. trains a CatBoost classifier on the first 70 % of the events in time and scores the rest.

    python docs/examples/train_on_my_events.py [--warehouse data/warehouse/build.duckdb] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from catboost import CatBoostClassifier

from core.settings import DataPaths


def my_events(warehouse: Path, path: Path, seed: int = 3) -> None:
    """Events every 30 minutes at a random second, labelled by the close an hour later."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        table = con.execute(
            """
            with bars as (
                select open_time, cast(close as double) as close,
                    lead(cast(close as double), 12) over (order by open_time) as close_1h_later
                from bars_5m
                where symbol = 'BTCUSDT'
            )
            select
                'BTCUSDT' as symbol,
                strftime(open_time + to_seconds(cast(hash(open_time, $seed) % 300 as bigint)),
                         '%Y-%m-%dT%H:%M:%SZ') as event_time,
                cast(close_1h_later > close as integer) as label
            from bars
            where close_1h_later is not null and minute(open_time) % 30 = 0
            order by open_time
            """,
            {"seed": seed},
        ).to_arrow_table()
    finally:
        con.close()
    pacsv.write_csv(table, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=DataPaths.from_env().build_db)
    parser.add_argument("--out", type=Path, default=Path())
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    events = args.out / "my_events.csv"
    if not events.exists():
        my_events(args.warehouse, events)
    training_set = args.out / "my_training_set.parquet"
    btcfs = Path(sys.executable).with_name("btcfs")
    subprocess.run(
        [str(btcfs), "features", "get", "--events", str(events), "--out", str(training_set),
         "--set", "spot", "--max-age", "15m", "--warehouse", str(args.warehouse)],
        check=True,
    )  # fmt: skip

    frame = pq.read_table(training_set).to_pandas()
    frame = frame[frame["feature_null_reason"].isna()].sort_values("event_time")
    features = [
        name for name in frame.columns[frame.columns.get_loc("feature_null_reason") + 1 :]
        if frame[name].dtype.kind in "fb"
    ]  # fmt: skip
    cut = int(len(frame) * 0.7)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    model = CatBoostClassifier(iterations=200, depth=4, verbose=False, random_seed=0,
                               allow_writing_files=False)  # fmt: skip
    model.fit(train[features].astype(float), train["label"])
    predicted = model.predict(test[features].astype(float)).astype(int)
    accuracy = float(np.mean(predicted == test["label"].to_numpy()))
    base = float(max(test["label"].mean(), 1 - test["label"].mean()))
    print(
        f"{len(frame):,} events with features ({len(features)} spot features); trained on "
        f"{len(train):,}, tested on {len(test):,}: accuracy {accuracy:.3f} "
        f"(always the majority: {base:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

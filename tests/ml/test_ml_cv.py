"""Purged walk-forward CV: no training label reaches into a test fold; embargo on both sides."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.cv import purge_and_embargo, purged_kfold, walk_forward
from ml.errors import DatasetError

BAR = np.timedelta64(5, "m")


def intervals(rows: int, horizon_bars: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.datetime64("2025-01-01T00:05:00", "us") + np.arange(rows) * BAR
    return start, start + horizon_bars * BAR


def _us(delta: timedelta) -> np.timedelta64:
    return np.timedelta64(int(delta / timedelta(microseconds=1)), "us")


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(60, 600),
    folds=st.integers(2, 6),
    horizon=st.integers(1, 24),
    embargo_bars=st.integers(0, 30),
)
def test_walk_forward_never_trains_on_what_it_tests(
    rows: int, folds: int, horizon: int, embargo_bars: int
) -> None:
    starts, ends = intervals(rows, horizon)
    embargo = timedelta(minutes=5 * embargo_bars)
    for fold in walk_forward(starts, ends, folds, embargo, min_train_rows=0):
        if not len(fold.train):
            continue  # the embargo ate the first block: allowed here, refused by default
        test_lo = starts[fold.test].min()
        train_start, train_end = starts[fold.train], ends[fold.train]
        # Every training row is before the fold, its label ends before the fold starts...
        assert (train_end < test_lo).all()
        # ...and it starts at least the embargo before the fold.
        assert (train_start < test_lo - _us(embargo)).all()
        assert len(np.intersect1d(fold.train, fold.test)) == 0
        assert fold.train.max() < fold.test.min()


def test_folds_tile_the_later_rows_in_time_order() -> None:
    starts, ends = intervals(600, 12)
    folds = walk_forward(starts, ends, 5, timedelta(hours=1))
    tested = np.concatenate([f.test for f in folds])
    assert (np.diff(tested) == 1).all()
    assert tested[0] == 100 and tested[-1] == 599  # first block trains only
    assert [len(f.train) for f in folds] == sorted(len(f.train) for f in folds)  # expanding


def test_purge_and_embargo_counts() -> None:
    starts, ends = intervals(300, 12)  # 1h labels
    folds = walk_forward(starts, ends, 2, timedelta(hours=1))
    first = folds[0]
    # The 12 rows whose 1h label reaches into the fold are purged; the embargo of 1h before
    # the fold removes no further row (those same 12 rows are the hour before it).
    assert first.purged == 12 and first.embargoed == 0
    longer = walk_forward(starts, ends, 2, timedelta(hours=2))[0]
    assert longer.purged == 12 and longer.embargoed == 12


def test_embargo_follows_a_test_fold_in_kfold() -> None:
    starts, ends = intervals(400, 6)
    embargo = timedelta(hours=1)
    folds = purged_kfold(starts, ends, 4, embargo)
    middle = folds[1]
    test_hi = ends[middle.test].max()
    after = middle.train[starts[middle.train] > test_hi]
    assert len(after) and (starts[after] > test_hi + _us(embargo)).all()
    before = middle.train[starts[middle.train] < starts[middle.test].min()]
    assert (ends[before] < starts[middle.test].min()).all()
    assert middle.embargoed > 0 and middle.purged > 0


def test_overlap_is_purged_with_barrier_style_label_ends() -> None:
    starts, _ = intervals(200, 1)
    rng = np.random.default_rng(3)
    ends = starts + rng.integers(1, 37, 200) * BAR  # t1: the barrier touch, 1..36 bars
    test = np.arange(120, 160)
    kept, purged, _ = purge_and_embargo(np.arange(120), test, starts, ends, timedelta(0))
    assert (ends[kept] < starts[test].min()).all()
    assert purged == int((ends[:120] >= starts[test].min()).sum())


def test_errors() -> None:
    starts, ends = intervals(10, 1)
    with pytest.raises(DatasetError, match="too few"):
        walk_forward(starts, ends, 5, timedelta(0))
    with pytest.raises(DatasetError, match="sorted by time"):
        walk_forward(starts[::-1], ends[::-1], 2, timedelta(0))
    starts, ends = intervals(100, 1)
    with pytest.raises(DatasetError, match="min_train_rows"):
        walk_forward(starts, ends, 4, timedelta(0), min_train_rows=50)

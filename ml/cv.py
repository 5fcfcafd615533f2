"""Purged walk-forward cross-validation with an embargo, on label information intervals.

Each row i carries an interval [start_i, end_i]: from when its features are known
(available_at) to when its label is (available_at + horizon, or t1 for barrier labels).
A training row is *purged* when its interval overlaps the test fold's span, and *embargoed*
when it starts within `embargo` of the fold on either side, so serially correlated
neighbours of the fold never train the model that is scored on it.

Written here rather than taken from skfolio: its splitters purge a fixed count of rows, not
by label intervals, and it would pull in scikit-learn and a convex-optimisation stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ml.errors import DatasetError


@dataclass(frozen=True)
class Fold:
    """Row positions (into the time-sorted frame) that train and test one fold."""

    number: int
    train: np.ndarray
    test: np.ndarray
    purged: int  # rows removed from training because their label overlaps the test fold
    embargoed: int  # rows removed because they start within the embargo of the fold


def _as_us(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[us]").astype(np.int64)


def purge_and_embargo(
    candidates: np.ndarray,
    test: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    embargo: timedelta,
) -> tuple[np.ndarray, int, int]:
    """The candidate training rows that neither overlap nor sit within `embargo` of `test`.

    Returns (kept rows, purged count, embargoed count). `starts`/`ends` are per-row interval
    bounds (datetime64 or epoch µs); `test` is assumed contiguous in time.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if not len(test):
        return candidates, 0, 0
    start_us, end_us = _as_us(starts), _as_us(ends)
    test_lo = start_us[test].min()
    test_hi = end_us[test].max()
    gap = int(embargo / timedelta(microseconds=1))
    s, e = start_us[candidates], end_us[candidates]
    overlaps = (s <= test_hi) & (e >= test_lo)
    near = ~overlaps & (
        ((s > test_hi) & (s <= test_hi + gap)) | ((s < test_lo) & (s >= test_lo - gap))
    )
    kept = candidates[~overlaps & ~near]
    return kept, int(overlaps.sum()), int(near.sum())


def walk_forward(
    starts: np.ndarray,
    ends: np.ndarray,
    n_folds: int,
    embargo: timedelta,
    *,
    min_train_rows: int = 1,
) -> list[Fold]:
    """Expanding-window folds: rows split in n_folds + 1 time blocks; fold k tests block k+1.

    Every training row precedes its test fold; purge and embargo then remove the rows whose
    label reaches into the fold and the rows just before it.
    """
    n = len(starts)
    if n_folds < 1:
        raise ValueError("n_folds must be at least 1")
    start_us = _as_us(starts)
    if n and np.any(np.diff(start_us) < 0):
        raise DatasetError("rows must be sorted by time for walk-forward folds")
    if n < (n_folds + 1) * 2:
        raise DatasetError(f"{n} rows are too few for {n_folds} walk-forward folds")
    bounds = np.linspace(0, n, n_folds + 2).round().astype(np.int64)
    folds = []
    for k in range(n_folds):
        test = np.arange(bounds[k + 1], bounds[k + 2], dtype=np.int64)
        candidates = np.arange(0, bounds[k + 1], dtype=np.int64)
        train, purged, embargoed = purge_and_embargo(candidates, test, starts, ends, embargo)
        if len(train) < min_train_rows:
            raise DatasetError(
                f"fold {k + 1}: {len(train)} training rows after purge and embargo, fewer than "
                f"min_train_rows={min_train_rows}: use fewer folds or more history"
            )
        folds.append(Fold(k + 1, train, test, purged, embargoed))
    return folds


def purged_kfold(
    starts: np.ndarray,
    ends: np.ndarray,
    n_folds: int,
    embargo: timedelta,
) -> list[Fold]:
    """Contiguous k-fold (training on both sides of each fold), purged and embargoed.

    Not the trainer's default (walk-forward never trains on the future); kept for studies
    where every row must be scored once, and to exercise the embargo after a fold.
    """
    n = len(starts)
    if n < n_folds * 2:
        raise DatasetError(f"{n} rows are too few for {n_folds} folds")
    bounds = np.linspace(0, n, n_folds + 1).round().astype(np.int64)
    everything = np.arange(n, dtype=np.int64)
    folds = []
    for k in range(n_folds):
        test = np.arange(bounds[k], bounds[k + 1], dtype=np.int64)
        candidates = np.setdiff1d(everything, test, assume_unique=True)
        train, purged, embargoed = purge_and_embargo(candidates, test, starts, ends, embargo)
        folds.append(Fold(k + 1, train, test, purged, embargoed))
    return folds

"""Row rules a dataset declares beside its schema, and the one vectorised check of them.

Every loader, Binance's and every other vendor's, parses its wire format into an Arrow table
in the dataset's columns and then asks `problems` why each row cannot be landed. The rules
come from two places, checked in this order:

1. the schema itself: a non-nullable column must hold a value (`missing open`), a decimal
   must fit its precision (`open out of range`);
2. the dataset's own `rules`, in the order it declares them (`lake.schemas`): OHLC order,
   signs, bounds, the interval grid, `available_at` not before the row's own time.

The first rule a row breaks is its quarantine reason. Checks run on whole columns, never
row by row: decimals are compared as decimals, never as floats. A decimal column without
nulls whose unscaled values fit 64 bits (every price and volume Binance has sent) is compared
as those integers in numpy, exactly, and a few microseconds per rule; anything else (nulls,
wider values, floats) goes through Arrow's compute kernels. One page of 100,000 bars costs a
few array passes, not 100,000 Python calls.

`duplicates` is the one rule about rows together: rows sharing a key collapse when they are
identical and are all quarantined when they are not (which version is right is not ours to
decide, and none may vanish).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.units import US_PER_DAY

if TYPE_CHECKING:
    from lake.schemas import Dataset

#: Columns no rule looks at: who landed a row and when.
PROVENANCE = ("source", "ingested_at")
_TIMESTAMP_US = pa.timestamp("us", tz="UTC")  # the lake's timestamps (lake.schemas.TIMESTAMP)


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy mask; a null comparison (a missing input) is no
    violation here: the `missing` rule reports it."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _scalar(value: Decimal | int | float, like: pa.DataType) -> pa.Scalar:
    if pa.types.is_decimal(like):
        return pa.scalar(Decimal(str(value)), like)
    if pa.types.is_integer(like):
        return pa.scalar(int(value), like)
    return pa.scalar(float(value), pa.float64() if not pa.types.is_floating(like) else like)


def epoch_us(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp or date column as UTC µs since the epoch (date: its midnight)."""
    if values.type == _TIMESTAMP_US and not values.null_count:
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if len(chunks) == 1:  # the common case, read in place
            (chunk,) = chunks
            data = chunk.buffers()[1]
            return np.frombuffer(data, dtype=np.int64, count=len(chunk), offset=8 * chunk.offset)
    if pa.types.is_date32(values.type):
        days = pc.cast(values, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        return days * US_PER_DAY
    return np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _decimal_words(array: pa.Array) -> np.ndarray | None:
    """A decimal128 array's unscaled values as int64, when every one fits (None otherwise).

    Arrow stores each value as two little-endian 64-bit words; the value fits 64 bits when the
    high word only repeats the low word's sign.
    """
    data = array.buffers()[1]
    if sys.byteorder != "little" or data is None:
        return None
    words = np.frombuffer(data, dtype=np.int64, count=2 * len(array), offset=16 * array.offset)
    low = words[0::2]
    if (words[1::2] != (low >> 63)).any():
        return None
    return low


def exact_integers(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int] | None:
    """A column's values as int64 and their decimal scale (0 for integers), when that is
    exact: no nulls, and for a decimal, unscaled values that fit 64 bits. None otherwise."""
    if values.null_count:
        return None
    kind = values.type
    if pa.types.is_integer(kind) and not pa.types.is_uint64(kind):
        return np.asarray(values.to_numpy(), dtype=np.int64), 0
    if not pa.types.is_decimal128(kind):
        return None
    chunks: list[np.ndarray] = []
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        ints = _decimal_words(chunk)
        if ints is None:
            return None
        chunks.append(ints)
    if len(chunks) == 1:
        return chunks[0], kind.scale
    return np.concatenate([np.zeros(0, np.int64), *chunks]), kind.scale


class Columns:
    """A table's columns as the rules read them, each converted to numpy once and shared.

    `exact(name)` is a column's values as int64 with their decimal scale (0 for integers), when
    that is exact: no nulls, and decimals whose unscaled values fit 64 bits. Two columns of the
    same scale then compare as their integers; None sends a rule to Arrow's kernels instead.
    Built from a table or from named arrays of equal length (a parser's columns, no table).
    """

    def __init__(self, values: pa.Table | Mapping[str, pa.Array | pa.ChunkedArray]):
        if isinstance(values, pa.Table):
            self.num_rows = values.num_rows
            self._columns = dict(zip(values.column_names, values.columns, strict=True))
        else:
            self._columns = dict(values)
            self.num_rows = len(next(iter(self._columns.values()))) if self._columns else 0
        self._exact: dict[str, tuple[np.ndarray, int] | None] = {}
        self._epoch: dict[str, np.ndarray] = {}

    def column(self, name: str) -> pa.Array | pa.ChunkedArray:
        return self._columns[name]

    def exact(self, name: str) -> tuple[np.ndarray, int] | None:
        if name not in self._exact:
            self._exact[name] = exact_integers(self._columns[name])
        return self._exact[name]

    def epoch_us(self, name: str) -> np.ndarray:
        if name not in self._epoch:
            self._epoch[name] = epoch_us(self._columns[name])
        return self._epoch[name]

    def pair(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Two columns as integers of the same scale, or None."""
        left, right = self.exact(a), self.exact(b)
        if left is None or right is None or left[1] != right[1]:
            return None
        return left[0], right[0]


@functools.lru_cache(maxsize=64)
def _unscaled(bound: Decimal | int | float, scale: int) -> int | None:
    """`bound` as an integer at `scale` decimal places, when exact and within int64."""
    value = Decimal(str(bound)).scaleb(scale)
    if not value.is_finite() or value != value.to_integral_value():
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


class Rule(Protocol):
    """One check: `violated(columns, interval_us)` is True for each row that breaks it (None
    when it can tell at once that no row does), and `reason` says why (the quarantine reason)."""

    @property
    def reason(self) -> str: ...

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Required:
    """A non-nullable column holds a value (from the schema)."""

    column: str

    @property
    def reason(self) -> str:
        return f"missing {self.column}"

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        values = columns.column(self.column)
        if not values.null_count:
            return None
        return _mask(values.is_null())


@dataclass(frozen=True)
class FitsDecimal:
    """A decimal fits its column's integer digits (from the schema)."""

    column: str
    type: pa.Decimal128Type

    @property
    def reason(self) -> str:
        return f"{self.column} out of range"

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        values = columns.column(self.column)
        if values.type == self.type:  # a cast already enforced the precision
            return None
        exact = columns.exact(self.column)
        if exact is not None and exact[1] == self.type.scale:
            limit = 10**self.type.precision  # unscaled
            if limit > 2**63:  # every int64 fits
                return None
            return (exact[0] >= limit) | (exact[0] <= -limit)
        wide = pa.decimal128(38, self.type.scale)
        limit = pa.scalar(Decimal(10) ** (self.type.precision - self.type.scale), wide)
        return _mask(pc.greater_equal(pc.abs(pc.cast(values, wide)), limit))


@dataclass(frozen=True)
class Ohlc:
    """high is the highest and low the lowest of the bar's four prices."""

    reason: str = "OHLC inconsistent"

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        exact = [columns.exact(name) for name in ("open", "high", "low", "close")]
        if all(e is not None for e in exact) and len({e[1] for e in exact if e}) == 1:
            o, h, lo, c = (e[0] for e in exact if e is not None)
            return (h < lo) | (h < o) | (h < c) | (lo > o) | (lo > c)
        o, h, lo, c = (columns.column(name) for name in ("open", "high", "low", "close"))
        bad = (
            _mask(pc.less(h, lo))
            | _mask(pc.less(h, o))
            | _mask(pc.less(h, c))
            | _mask(pc.greater(lo, o))
            | _mask(pc.greater(lo, c))
        )
        return bad


@dataclass(frozen=True)
class AtLeast:
    """Each of `columns` is at least `bound` (above it, with `strict`)."""

    columns: tuple[str, ...]
    reason: str
    bound: Decimal | int | float = 0
    strict: bool = False

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        bad = np.zeros(columns.num_rows, dtype=bool)
        compare = pc.less_equal if self.strict else pc.less
        for name in self.columns:
            exact = columns.exact(name)
            bound = None if exact is None else _unscaled(self.bound, exact[1])
            if exact is not None and bound is not None:
                bad |= (exact[0] <= bound) if self.strict else (exact[0] < bound)
                continue
            values = columns.column(name)
            bad |= _mask(compare(values, _scalar(self.bound, values.type)))
        return bad


@dataclass(frozen=True)
class AbsAtMost:
    """|column| is at most `limit` (funding rates are capped)."""

    column: str
    limit: Decimal
    reason: str

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        exact = columns.exact(self.column)
        limit = None if exact is None else _unscaled(self.limit, exact[1])
        if exact is not None and limit is not None:
            return (exact[0] > limit) | (exact[0] < -limit)
        values = columns.column(self.column)
        return _mask(pc.greater(pc.abs(values), _scalar(self.limit, values.type)))


@dataclass(frozen=True)
class NotAbove:
    """`column` is not above `other` (a part is not more than its whole)."""

    column: str
    other: str
    reason: str

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        pair = columns.pair(self.column, self.other)
        if pair is not None:
            return pair[0] > pair[1]
        return _mask(pc.greater(columns.column(self.column), columns.column(self.other)))


@dataclass(frozen=True)
class OnGrid:
    """The time column falls on the interval's grid (checked when the interval is known)."""

    column: str
    reason: str

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        if interval_us is None:
            return None
        return columns.epoch_us(self.column) % interval_us != 0


@dataclass(frozen=True)
class WithinBar:
    """`close` lies in [open, open + interval): a bar closes inside itself."""

    close: str
    open: str
    reason: str = "close_time outside the bar"

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        if interval_us is None:
            return None
        start = columns.epoch_us(self.open)
        end = columns.epoch_us(self.close)
        return (end < start) | (end >= start + interval_us)


@dataclass(frozen=True)
class AvailableFrom:
    """`available_at` is not before the row's own time (a date: its midnight UTC)."""

    column: str
    reason: str = "available_at before the row's own time"

    def violated(self, columns: Columns, interval_us: int | None) -> np.ndarray | None:
        available = columns.column("available_at")
        own = columns.column(self.column)
        known = _mask(pc.is_valid(available)) & _mask(pc.is_valid(own))
        return known & (epoch_us(available.fill_null(0)) < epoch_us(own.fill_null(0)))


def schema_rules(schema: pa.Schema) -> tuple[Rule, ...]:
    """What the schema alone asks of a row: values where it allows no null, decimals that fit."""
    required = tuple(
        Required(f.name) for f in schema if not f.nullable and f.name not in PROVENANCE
    )
    fits = tuple(FitsDecimal(f.name, f.type) for f in schema if pa.types.is_decimal(f.type))
    return (*required, *fits)


def rule_hits(
    values: pa.Table | Mapping[str, pa.Array | pa.ChunkedArray],
    dataset: Dataset,
    *,
    interval_us: int | None = None,
    open_rows: np.ndarray | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """(reason, the rows it is the first broken rule of) for each rule some row breaks, in
    the order `dataset.checks` declares them; only `open_rows` (default: all) are judged.
    `values`: the dataset's value columns, as a table or as named arrays."""
    columns = Columns(values)
    remaining = np.ones(columns.num_rows, dtype=bool) if open_rows is None else open_rows.copy()
    if not remaining.any():
        return
    for rule in dataset.checks:
        violated = rule.violated(columns, interval_us)
        if violated is None or not violated.any():
            continue
        hit = violated & remaining
        if hit.any():
            remaining &= ~hit
            yield rule.reason, hit
            if not remaining.any():
                return


def problems(
    table: pa.Table,
    dataset: Dataset,
    *,
    interval_us: int | None = None,
    found: Sequence[str | None] | None = None,
) -> list[str | None]:
    """Why each row of `table` cannot be landed (None: it can): the first rule it breaks.

    `table` holds the dataset's value columns (decimals may be wider than the schema's: the
    `out of range` rule checks them); `found` carries reasons a parser already gave, which
    win over any found here.
    """
    reasons: list[str | None] = list(found) if found is not None else [None] * table.num_rows
    open_rows = None if found is None else np.array([r is None for r in reasons], dtype=bool)
    for reason, hit in rule_hits(table, dataset, interval_us=interval_us, open_rows=open_rows):
        for i in np.flatnonzero(hit).tolist():
            reasons[i] = reason
    return reasons


def duplicates(
    table: pa.Table, keys: Sequence[str], eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(identical, conflicting) masks over `table`'s rows, among the `eligible` ones.

    Rows sharing `keys`: when all are equal (every column of `table` compared), the first
    stays and the others are `identical` copies to drop and count; when any differs, every
    one of them is `conflicting`.
    """
    n = table.num_rows
    identical = np.zeros(n, dtype=bool)
    conflicting = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(eligible)
    if len(rows) < 2:
        return identical, conflicting
    if len(keys) == 1 and (
        pa.types.is_timestamp(table.column(keys[0]).type)
        or pa.types.is_date32(table.column(keys[0]).type)
        or pa.types.is_integer(table.column(keys[0]).type)
    ):
        column = table.column(keys[0])
        if column.null_count:
            column = column.fill_null(0)
        if pa.types.is_integer(column.type) and column.type != pa.int64():
            column = pc.cast(column, pa.int64())
        key_us = (
            np.asarray(column.to_numpy(), dtype=np.int64)
            if pa.types.is_integer(column.type)
            else epoch_us(column)
        )[rows]
        if (key_us[1:] > key_us[:-1]).all():  # strictly increasing: no key repeats
            return identical, conflicting
        values, counts = np.unique(key_us, return_counts=True)
        if len(values) == len(key_us):  # the common case: no key repeats
            return identical, conflicting
        repeated = np.isin(key_us, values[counts > 1])
        candidates = rows[repeated]
        group_keys: list[object] = key_us[repeated].tolist()
    else:
        candidates = rows
        columns = [table.column(k).take(pa.array(rows)).to_pylist() for k in keys]
        group_keys = list(zip(*columns, strict=True))
    groups: dict[object, list[int]] = {}
    for index, key in zip(candidates.tolist(), group_keys, strict=True):
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        versions = table.take(pa.array(members)).to_pylist()
        if all(version == versions[0] for version in versions[1:]):
            identical[members[1:]] = True
        else:
            conflicting[members] = True
    return identical, conflicting

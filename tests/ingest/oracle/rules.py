"""Test oracle: `lake.rules` as it was before the parse-speed work (commit 4a52e93).

Kept verbatim but for `problems`, which maps each rule a dataset declares onto this copy of
its class (same fields), so the oracle judges rows with the old code, not the new.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    if pa.types.is_date32(values.type):
        days = pc.cast(values, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        return days * US_PER_DAY
    return np.asarray(pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


class Rule(Protocol):
    """One check: `violated(table, interval_us)` is True for each row that breaks it, and
    `reason` says why (the quarantine reason)."""

    @property
    def reason(self) -> str: ...

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray: ...


@dataclass(frozen=True)
class Required:
    """A non-nullable column holds a value (from the schema)."""

    column: str

    @property
    def reason(self) -> str:
        return f"missing {self.column}"

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        return _mask(table.column(self.column).is_null())


@dataclass(frozen=True)
class FitsDecimal:
    """A decimal fits its column's integer digits (from the schema)."""

    column: str
    type: pa.Decimal128Type

    @property
    def reason(self) -> str:
        return f"{self.column} out of range"

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        values = table.column(self.column)
        if values.type == self.type:  # a cast already enforced the precision
            return np.zeros(table.num_rows, dtype=bool)
        wide = pa.decimal128(38, self.type.scale)
        limit = pa.scalar(Decimal(10) ** (self.type.precision - self.type.scale), wide)
        return _mask(pc.greater_equal(pc.abs(pc.cast(values, wide)), limit))


@dataclass(frozen=True)
class Ohlc:
    """high is the highest and low the lowest of the bar's four prices."""

    reason: str = "OHLC inconsistent"

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        o, h, lo, c = (table.column(name) for name in ("open", "high", "low", "close"))
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

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        bad = np.zeros(table.num_rows, dtype=bool)
        compare = pc.less_equal if self.strict else pc.less
        for name in self.columns:
            values = table.column(name)
            bad |= _mask(compare(values, _scalar(self.bound, values.type)))
        return bad


@dataclass(frozen=True)
class AbsAtMost:
    """|column| is at most `limit` (funding rates are capped)."""

    column: str
    limit: Decimal
    reason: str

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        values = table.column(self.column)
        return _mask(pc.greater(pc.abs(values), _scalar(self.limit, values.type)))


@dataclass(frozen=True)
class NotAbove:
    """`column` is not above `other` (a part is not more than its whole)."""

    column: str
    other: str
    reason: str

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        return _mask(pc.greater(table.column(self.column), table.column(self.other)))


@dataclass(frozen=True)
class OnGrid:
    """The time column falls on the interval's grid (checked when the interval is known)."""

    column: str
    reason: str

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        if interval_us is None:
            return np.zeros(table.num_rows, dtype=bool)
        return epoch_us(table.column(self.column)) % interval_us != 0


@dataclass(frozen=True)
class WithinBar:
    """`close` lies in [open, open + interval): a bar closes inside itself."""

    close: str
    open: str
    reason: str = "close_time outside the bar"

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        if interval_us is None:
            return np.zeros(table.num_rows, dtype=bool)
        start = epoch_us(table.column(self.open))
        end = epoch_us(table.column(self.close))
        return (end < start) | (end >= start + interval_us)


@dataclass(frozen=True)
class AvailableFrom:
    """`available_at` is not before the row's own time (a date: its midnight UTC)."""

    column: str
    reason: str = "available_at before the row's own time"

    def violated(self, table: pa.Table, interval_us: int | None) -> np.ndarray:
        available = table.column("available_at")
        own = table.column(self.column)
        known = _mask(pc.is_valid(available)) & _mask(pc.is_valid(own))
        return known & (epoch_us(available.fill_null(0)) < epoch_us(own.fill_null(0)))


def schema_rules(schema: pa.Schema) -> tuple[Rule, ...]:
    """What the schema alone asks of a row: values where it allows no null, decimals that fit."""
    required = tuple(
        Required(f.name) for f in schema if not f.nullable and f.name not in PROVENANCE
    )
    fits = tuple(FitsDecimal(f.name, f.type) for f in schema if pa.types.is_decimal(f.type))
    return (*required, *fits)


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
    open_rows = np.array([r is None for r in reasons], dtype=bool)
    for rule in (as_old(r) for r in dataset.checks):
        if not open_rows.any():
            break
        hit = rule.violated(table, interval_us) & open_rows
        if hit.any():
            reason = rule.reason
            for i in np.flatnonzero(hit):
                reasons[i] = reason
            open_rows &= ~hit
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
        key_us = (
            np.asarray(pc.cast(column, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
            if pa.types.is_integer(column.type)
            else epoch_us(column.fill_null(0))
        )[rows]
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


def as_old(rule: object) -> Rule:
    """This module's copy of a rule declared with `lake.rules`' classes (same fields)."""
    import dataclasses

    cls = globals()[type(rule).__name__]
    return cls(**{f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)})  # type: ignore[arg-type]

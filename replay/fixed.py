"""Exact decimals: Binance numbers held as int64 counts of 1e-8 and printed back as strings.

Prices and volumes never pass through float on the way out, so sums of bars are exact and
`104645.15` always prints as Binance's `104645.15000000` (or `104645.15` at two decimals).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCALE = 8
ONE = 10**SCALE


def grid(decimals: int) -> int:
    """Fixed-point units in one step of the last printed decimal (1e6 for 2 decimals)."""
    return 10 ** (SCALE - decimals)


def format_fixed(value: int, decimals: int) -> str:
    """One fixed-point integer -> decimal string with exactly `decimals` decimals."""
    units = abs(int(value)) // grid(decimals)
    sign = "-" if value < 0 and units else ""
    if decimals == 0:
        return f"{sign}{units}"
    step = 10**decimals
    return f"{sign}{units // step}.{units % step:0{decimals}d}"


def format_fixed_list(values: Iterable[int], decimals: int) -> list[str]:
    return [format_fixed(value, decimals) for value in values]


def format_fixed_array(values: np.ndarray, decimals: int) -> pa.Array:
    """Vectorised `format_fixed` (Arrow kernels) for bulk CSV writing."""
    values = np.asarray(values, dtype=np.int64)
    units = np.abs(values) // grid(decimals)
    whole = pa.array(units // 10**decimals if decimals else units).cast(pa.string())
    if decimals:
        frac = pc.utf8_lpad(pa.array(units % 10**decimals).cast(pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(whole, frac, ".")
    else:
        text = whole
    negative = (values < 0) & (units > 0)
    if negative.any():
        text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)
    return text


def parse_fixed(text: str) -> int:
    """One decimal string (plain or scientific, as Binance's archive sometimes prints) -> fixed."""
    return int(parse_fixed_array([text])[0])


def parse_fixed_array(texts: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Decimal strings -> int64 fixed-point; raises if a value has more than 8 decimals."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    array = texts if isinstance(texts, pa.Array) else pa.array(list(texts), type=pa.string())
    decimals = array.cast(pa.decimal128(38, SCALE))
    # A decimal128 is two little-endian int64 words; every value here fits in the low one.
    words = np.frombuffer(decimals.buffers()[1], dtype=np.int64)
    low = words[2 * decimals.offset : 2 * (decimals.offset + len(decimals)) : 2]
    return np.ascontiguousarray(low, dtype=np.int64)


def round_to_grid(values: np.ndarray, step: int, mode: str = "nearest") -> np.ndarray:
    """Round fixed-point (or float in fixed units) values to a multiple of `step`."""
    scaled = np.asarray(values, dtype=np.float64) / step
    if mode == "up":
        rounded = np.ceil(scaled)
    elif mode == "down":
        rounded = np.floor(scaled)
    else:
        rounded = np.rint(scaled)
    return rounded.astype(np.int64) * step

"""What a symbol is, at every door: 1-20 upper-case ASCII letters and digits (BTCUSDT), as
Binance spells it, the lake partitions it and dbt checks it (macros/lake/checked_literal.sql,
`checked_symbol`). Lower case is refused, never folded, and the refusal names the upper-case
form: the CLI, the config files, the jobs and the API all answer `btcusdt` the same way."""

from __future__ import annotations

import re

SYMBOL_PATTERN = r"^[A-Z0-9]{1,20}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


def symbol_problem(value: object) -> str | None:
    """Why `value` is not a symbol (None when it is one)."""
    if not isinstance(value, str):
        return f"{value!r:.40} is not a symbol (1-20 capitals and digits, e.g. BTCUSDT)"
    if _SYMBOL.match(value):
        return None
    if _SYMBOL.match(value.upper()):
        return f"{value!r}: symbols are upper case ({value.upper()})"
    return f"{value[:40]!r} is not a symbol (1-20 capitals and digits, e.g. BTCUSDT)"

"""Fail when SQL outside macros/cross_db/ uses DuckDB-only syntax that BigQuery would reject.

The same models must run on DuckDB (dev) and BigQuery (prod); engine-specific SQL lives only
in the dispatched macros of macros/cross_db/ (ARCHITECTURE.md, invariant 7). This scans the SQL
of models/, macros/ (minus macros/cross_db/) and data-tests/, after removing comments and
Jinja tags, for:

* ``LOG(``: base 10 on DuckDB, natural on BigQuery (use ``LN``);
* ``::`` casts (use ``cast(x as t)``);
* ``ASOF`` joins (use the union + ``last_value(... ignore nulls)`` pattern);
* DuckDB-only functions (``time_bucket``, ``epoch``, ``to_seconds``, ``generate_series``, ...).

Usage: python scripts/check_portable_sql.py [ROOT]   (exit status 1 when something is found)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

BANNED: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "LOG( is base 10 on DuckDB but natural on BigQuery: use LN()",
        re.compile(r"\blog\s*\(", re.I),
    ),
    ("'::' casts are DuckDB-only: use cast(x as type)", re.compile(r"::")),
    (
        "ASOF joins are DuckDB-only: use union + last_value(... ignore nulls)",
        re.compile(r"\basof\b", re.I),
    ),
    (
        "DuckDB-only function: go through a macro in macros/cross_db/",
        re.compile(
            r"\b(time_bucket|epoch|epoch_ms|epoch_us|epoch_ns|to_seconds|to_minutes|to_hours|"
            r"to_days|generate_series|read_parquet|read_csv|strftime|strptime|list_value|"
            r"date_diff|datediff|date_add|arg_min|arg_max|quantile_cont|quantile_disc)\s*\(",
            re.I,
        ),
    ),
)

_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_SQL_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SQL_LINE_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'(?:[^']|'')*'")


def _blank(match: re.Match[str]) -> str:
    """Replace a match by spaces, keeping its newlines so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def sql_text(source: str) -> str:
    """The SQL a reader sees: comments, Jinja tags and string literals blanked out."""
    for pattern in (_JINJA_COMMENT, _JINJA_TAG, _SQL_BLOCK_COMMENT, _SQL_LINE_COMMENT, _STRING):
        source = pattern.sub(_blank, source)
    return source


def files_to_check(root: Path) -> Iterator[Path]:
    for folder in ("models", "macros", "data-tests"):
        for path in sorted((root / folder).rglob("*.sql")):
            if (root / "macros" / "cross_db") in path.parents:
                continue
            yield path


def problems(path: Path) -> Iterator[str]:
    text = sql_text(path.read_text())
    for message, pattern in BANNED:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{path}:{line}: {match.group(0).strip()!r}: {message}"


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path.cwd()
    found = [problem for path in files_to_check(root) for problem in problems(path)]
    for problem in found:
        print(problem)
    checked = sum(1 for _ in files_to_check(root))
    if found:
        print(f"check_portable_sql: {len(found)} problem(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"check_portable_sql: {checked} files portable")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The one way bench scripts report a figure: printed on a line as before, and appended as
JSON to the file named by $BTCFS_BENCH_FIGURES, which bench/run_all.py collects into its table.

$BTCFS_BENCH_QUICK=1 (run_all.py --quick) asks each script for a small, fast run: its figures
check that the benchmark works, they are not comparable with the targets.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

FIGURES_ENV = "BTCFS_BENCH_FIGURES"
QUICK_ENV = "BTCFS_BENCH_QUICK"


@dataclass(frozen=True)
class Figure:
    """A measured value and, when it has one, its target: `below` passes under the target,
    `above` at or over it; `report` figures have no target."""

    name: str
    value: float
    unit: str
    target: float | None = None
    direction: str = "report"

    def __post_init__(self) -> None:
        if self.direction not in ("below", "above", "report"):
            raise ValueError(f"direction must be below, above or report: {self.direction!r}")
        if (self.target is None) != (self.direction == "report"):
            raise ValueError(f"{self.name}: a target needs a direction, and only then")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        ok = self.value < self.target if self.direction == "below" else self.value >= self.target
        return "pass" if ok else "short"

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        sign = "<" if self.direction == "below" else ">="
        number = f"{self.target:,.0f}" if float(self.target).is_integer() else f"{self.target:g}"
        return f"{sign} {number} {self.unit}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "verdict": self.verdict, "target_text": self.target_text}


def quick() -> bool:
    return os.environ.get(QUICK_ENV) == "1"


def emit(figure: Figure) -> None:
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:  # noqa: PTH123 (one line, append)
            handle.write(json.dumps(figure.to_dict()) + "\n")


def report(
    name: str,
    value: float,
    unit: str,
    target: float | None = None,
    direction: str = "report",
    *,
    width: int = 52,
) -> Figure:
    """Print `name value unit [target …: pass|short]` and hand the figure to run_all.py."""
    figure = Figure(name, float(value), unit, target, direction)
    suffix = f"target {figure.target_text}: {figure.verdict}" if target is not None else ""
    print(f"{name:<{width}} {value:>14,.2f} {unit:<8} {suffix}", flush=True)
    emit(figure)
    return figure

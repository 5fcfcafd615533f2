"""The quick subset of the reliability drills (`make drills` runs them all, full size): the
drill machinery works and the cheap drills pass on tiny data; the bench table's smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drills import corrupt, diskfull, fuzz, run, security
from drills._common import REPO, Context, Record

pytestmark = [pytest.mark.drills, pytest.mark.slow]


def passed(record: Record) -> bool:
    assert record.passed, "\n".join(record.failures)
    return True


@pytest.mark.parametrize("mode", ["auto", "rlimit"])
def test_disk_full_keeps_the_old_partition(tmp_path: Path, mode: str) -> None:
    record = diskfull.drill(Context(tmp_path), mode=mode)
    assert passed(record)
    assert record.figures["mode"] in (("tmpfs", "rlimit") if mode == "auto" else ("rlimit",))


def test_damaged_parquet_is_named_and_a_rerun_restores_it(tmp_path: Path) -> None:
    assert passed(corrupt.parquet_drill(Context(tmp_path, quick=True)))


def test_damaged_serve_duckdb_never_gives_a_wrong_answer(tmp_path: Path) -> None:
    record = corrupt.serve_drill(Context(tmp_path, quick=True))
    wrong = [f for f in record.failures if "the right answer" in f or "/health" in f]
    assert not wrong, wrong
    assert record.figures["statuses"]["started on a truncated file"]["/health"] == 503


def test_the_security_review_attacks_are_refused(tmp_path: Path) -> None:
    record = security.drill(Context(tmp_path, quick=True))
    assert passed(record)
    assert record.figures["refused"] >= 30


def test_mutations_are_deterministic_and_hostile() -> None:
    body = b'[[1, "2.5", {"a": [3]}], {"k": "v"}]'
    for kind in fuzz.MUTATIONS:
        assert fuzz.mutate(body, kind, 7) == fuzz.mutate(body, kind, 7), kind
    assert fuzz.mutate(body, "as-is", 1) == body
    assert len(fuzz.mutate(body, "truncate", 1)) < len(body)
    assert len(fuzz.oversize(body, 1 << 16)) >= 0.9 * (1 << 16)


def test_a_parser_crash_is_caught_and_reported() -> None:
    def fragile(change):  # a "parser" with a bug on empty input
        return 1 // len(change(b"[1]"))

    outcomes, crashes = fuzz.fuzz_target(fuzz.Target("fragile", fragile), 30, seed=1)
    assert outcomes["CRASH"] and "ZeroDivisionError" in crashes[0]


def test_the_runner_writes_a_report_per_drill_and_a_summary(tmp_path: Path) -> None:
    code = run.main(["diskfull", "--quick", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "latest.json").read_text())
    assert code == 0 and summary["drills"]["diskfull"]["passed"]
    [report] = tmp_path.glob("diskfull-*.json")
    assert json.loads(report.read_text())["tried"]


def test_bench_quick_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--only", "ingest", "--out",
         str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    latest = json.loads((tmp_path / "latest.json").read_text())
    figures = latest["scripts"]["ingest"]["figures"]
    # Without ../shared/data only the REST figures exist: at least those two.
    assert {f["verdict"] for f in figures} <= {"pass", "short", "-"} and len(figures) >= 2
    assert latest["machine"]["cores"] and latest["git"]
    assert "| ingest | REST ingest 3 days 1m over loopback: rows" in proc.stdout

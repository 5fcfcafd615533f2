"""warehouse.gate_ledger.check, rule by rule, on ledger rows as the dbt hooks write them (the real
dbt runs are in test_publish_gates.py): a model one upstream of a copied mart, a data test and
a unit test on each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from warehouse.gate_ledger import (
    Graph,
    LedgerRow,
    Window,
    check,
    parse_window,
    window_message,
    windows_since,
)

T0 = datetime(2025, 1, 2, tzinfo=UTC)
MART, UPSTREAM = "model.btcfs.bars_5m", "model.btcfs.int_bars"
GATE, UP_GATE, UNIT = (
    "test.btcfs.integrity__bars_5m.1",
    "test.btcfs.gap__int_bars.2",
    "unit_test.btcfs.bars_5m.u",
)


def graph(*, gates: bool = True) -> Graph:
    tests = {MART: [GATE, UNIT] if gates else [UNIT], UPSTREAM: [UP_GATE]}
    return Graph(
        adapter="duckdb", dbt_version="1.11", models={"bars_5m": MART, "int_bars": UPSTREAM},
        parents={MART: [UPSTREAM], UPSTREAM: []}, tests=tests,
        names={MART: "bars_5m", UPSTREAM: "int_bars", GATE: "integrity__bars_5m",
               UP_GATE: "gap__int_bars", UNIT: "bars_5m_unit"},
        kinds={GATE: "data test", UP_GATE: "data test", UNIT: "unit test"},
    )  # fmt: skip


class Ledger:
    def __init__(self) -> None:
        self.rows: list[LedgerRow] = []

    def invocation(self, command: str, results: dict[str, str], *, finished: bool = True) -> str:
        n = len({r.invocation_id for r in self.rows})
        invocation, at = f"inv{n}", T0 + timedelta(minutes=n)
        row = lambda uid, kind, status: LedgerRow(invocation, command, at, uid, kind, status)  # noqa: E731
        self.rows.append(row("invocation", "invocation", "started"))
        for uid, status in results.items():
            self.rows.append(row(uid, uid.split(".", 1)[0], status))
        if finished:
            self.rows.append(row("invocation", "invocation", "finished"))
        return invocation


BUILT = {UPSTREAM: "success", UP_GATE: "pass", MART: "success", GATE: "pass", UNIT: "pass"}


def problems(ledger: Ledger, **kw: bool) -> str:
    return "; ".join(check(ledger.rows, graph(**kw), ["bars_5m"]).problems)


def test_a_full_build_passes_and_names_its_invocation() -> None:
    ledger = Ledger()
    invocation = ledger.invocation("build", BUILT)
    result = check(ledger.rows, graph(), ["bars_5m"])
    assert result.problems == [] and result.invocation_id == invocation
    assert {(g.name, g.model, g.status) for g in result.gates} == {
        ("integrity__bars_5m", "bars_5m", "pass"), ("bars_5m_unit", "bars_5m", "pass"),
        ("gap__int_bars", "int_bars", "pass"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("later", "message"),
    [
        ({GATE: "fail"}, "1 gate(s) failed: integrity__bars_5m [bars_5m, fail]"),
        ({GATE: "error"}, "integrity__bars_5m [bars_5m, error]"),
        ({UP_GATE: "fail"}, "gap__int_bars [int_bars, fail]"),
        ({UNIT: "fail", MART: "skipped"}, "bars_5m_unit [bars_5m, fail]"),
        ({MART: "success"}, "(run `dbt build` or `dbt test`): bars_5m (integrity__bars_5m)"),
        ({MART: "error"}, "the last build of bars_5m (dbt build, invocation inv1) failed"),
    ],
)
def test_what_a_later_invocation_leaves_refuses(later: dict[str, str], message: str) -> None:
    ledger = Ledger()
    ledger.invocation("build", BUILT)
    ledger.invocation("build", later)
    assert message in problems(ledger)


def test_skipped_and_warned_results_keep_a_pass() -> None:
    ledger = Ledger()
    ledger.invocation("build", BUILT)
    ledger.invocation("build", {GATE: "skipped", UP_GATE: "warn"})
    assert problems(ledger) == ""


def test_an_unfinished_invocation_after_the_build_refuses_unless_it_only_tested() -> None:
    ledger = Ledger()
    ledger.invocation("build", BUILT)
    ledger.invocation("test", {}, finished=False)
    assert problems(ledger) == ""
    ledger.invocation("run", {}, finished=False)
    assert "dbt run (invocation inv2" in problems(ledger) and "did not finish" in problems(ledger)


def test_no_build_an_empty_build_or_no_gate_refuses() -> None:
    assert "no finished build of bars_5m is recorded" in problems(Ledger())
    ledger = Ledger()
    ledger.invocation("build --empty", BUILT)
    assert "last built by `dbt build --empty`" in problems(ledger)
    ledger = Ledger()
    ledger.invocation("build", BUILT)
    assert "bars_5m has no data test" in problems(ledger, gates=False)


# ------------------------------------------------------------------ delta publish windows

PLAN = "build (btcfs update plan)"


def noted(ledger: Ledger, invocation: str, uid: str, message: str | None) -> None:
    """Give `uid`'s row of `invocation` the message a plan run writes."""
    ledger.rows = [
        replace(r, message=message) if (r.invocation_id, r.unique_id) == (invocation, uid) else r
        for r in ledger.rows
    ]


def test_a_window_note_reads_back() -> None:
    at = T0 + timedelta(hours=3)
    assert parse_window(window_message(at)) == Window(at)
    assert parse_window(window_message(at.replace(tzinfo=None))) == Window(at)
    assert parse_window(window_message(None)) == Window(None)
    assert parse_window(None) is None and parse_window("Got 1 result") is None


def test_windows_since_the_base_are_the_earliest_each_model_rewrote() -> None:
    ledger = Ledger()
    base = ledger.invocation("build", BUILT)
    first = ledger.invocation(PLAN, {MART: "success", GATE: "pass"})
    noted(ledger, first, MART, window_message(T0 + timedelta(days=2)))
    ledger.invocation("test", {GATE: "pass"})  # writes no model
    second = ledger.invocation(PLAN, {MART: "success", UPSTREAM: "success"})
    noted(ledger, second, MART, window_message(T0 + timedelta(days=1)))
    noted(ledger, second, UPSTREAM, window_message(None))
    assert windows_since(ledger.rows, base, [MART, UPSTREAM], PLAN) == {
        MART: T0 + timedelta(days=1),
        UPSTREAM: None,
    }
    # since the newest one: nothing rewritten
    assert windows_since(ledger.rows, second, [MART], PLAN) == {MART: None}


@pytest.mark.parametrize("case", ["dbt build since", "no window", "unfinished", "base gone"])
def test_windows_since_refuses_what_it_cannot_vouch_for(case: str) -> None:
    ledger = Ledger()
    base = ledger.invocation("build", BUILT)
    later = ledger.invocation(
        "build" if case == "dbt build since" else PLAN, {MART: "success"},
        finished=case != "unfinished",
    )  # fmt: skip
    if case != "no window":
        noted(ledger, later, MART, window_message(T0))
    if case == "base gone":
        ledger.rows = [r for r in ledger.rows if r.invocation_id != base]
    found = windows_since(ledger.rows, base, [MART], PLAN)
    assert isinstance(found, str), found

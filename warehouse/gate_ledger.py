"""The gate ledger dbt writes into the warehouse (macros/qa/gate_ledger.sql), read with
target/manifest.json: did every gate of a model pass after the build that last wrote it?"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warehouse.runs import GateResult

LEDGER_TABLE = "btcfs_gate_ledger"
LEDGER_COLUMNS = (
    "invocation_id, command, run_started_at, unique_id, resource_type, status, failures, "
    "depends_on, message"
)
#: Forgets the invocations no check reads again: those that started before the oldest of the
#: models' last successful builds. `check` reads, per model, its last successful build, the
#: results since it and the unfinished invocations after it, all at or after that moment; so
#: an update every few minutes keeps a ledger of a few invocations, not of all of them. The
#: newest KEEP_INVOCATIONS stay whatever they did: a delta publish (warehouse.publish) reads
#: every invocation since the one its served file came from.
KEEP_INVOCATIONS = 3
_PRUNE = (
    "delete from {ledger} where run_started_at < (select min(last_built) from ("
    "select max(run_started_at) as last_built from {ledger} "
    "where resource_type = 'model' and status = 'success' group by unique_id)) "
    "and run_started_at < (select min(run_started_at) from ("
    "select distinct run_started_at from {ledger} where resource_type = 'invocation' "
    "order by run_started_at desc limit {keep}))"
)
PRUNE = _PRUNE.format(ledger=LEDGER_TABLE, keep=KEEP_INVOCATIONS)
#: Statuses that say something about a node (skipped ones say nothing).
_TEST_OUTCOMES = ("pass", "warn", "fail", "error")
_MODEL_OUTCOMES = ("success", "error")
PASSING = ("pass", "warn")
_SHOWN = 5
#: The update plan (warehouse.plan) notes in each incremental model's `message` the earliest
#: key of this column it rewrote ("btcfs-window open_time >= <ISO time>", or "... none" when
#: it rewrote no row); dbt leaves a model's message empty. A delta publish copies from there.
WINDOW_COLUMN = "open_time"
_WINDOW_PREFIX = f"btcfs-window {WINDOW_COLUMN} "


class LedgerError(Exception):
    """The ledger or the manifest cannot be read, or they do not allow publishing."""


@dataclass(frozen=True)
class LedgerRow:
    invocation_id: str
    command: str
    run_started_at: datetime
    unique_id: str
    resource_type: str
    status: str
    failures: int | None = None
    depends_on: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Invocation:
    invocation_id: str
    command: str
    started_at: datetime
    order: int
    finished: bool

    @property
    def writes(self) -> bool:
        """Whether it may have rewritten models (`dbt test` only stores test failures)."""
        return not self.command.startswith("test")

    @property
    def partial(self) -> bool:
        """`--empty` / `--sample` builds: their models are not the real data."""
        return "--empty" in self.command or "--sample" in self.command


@dataclass(frozen=True)
class Result:
    invocation: Invocation
    status: str
    failures: int | None
    message: str | None


@dataclass
class Graph:
    """From the manifest: each model's parent models and the tests that read each model."""

    adapter: str | None
    dbt_version: str | None
    models: dict[str, str]  # name -> unique_id
    parents: dict[str, list[str]]  # model unique_id -> parent model unique_ids
    tests: dict[str, list[str]]  # model unique_id -> test unique_ids (data and unit tests)
    names: dict[str, str]  # unique_id -> name
    kinds: dict[str, str]  # test unique_id -> 'data test' | 'unit test'
    marts: list[str] = field(default_factory=list)  # names of the models under models/marts
    materialized: dict[str, str] = field(default_factory=dict)  # model name -> materialization


@dataclass
class GateCheck:
    """What publishing needs to know: the gates of what is copied (and of the models upstream),
    and the build that wrote the newest copied model."""

    gates: list[GateResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    built_at: datetime | None = None
    invocation_id: str | None = None
    command: str | None = None

    @property
    def statuses(self) -> dict[str, int]:
        return dict(Counter(gate.status for gate in self.gates))


def read_graph(target: Path) -> Graph:
    """Models, their parents and their tests from dbt's manifest.json (never from YAML)."""
    path = target / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise LedgerError(
            f"{path} not found: run `dbt build` first (or pass --target-path)"
        ) from None
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{path} cannot be read: {exc}") from None
    nodes: dict[str, Any] = manifest.get("nodes") or {}
    unit_tests: dict[str, Any] = manifest.get("unit_tests") or {}
    graph = Graph(
        adapter=(manifest.get("metadata") or {}).get("adapter_type"),
        dbt_version=(manifest.get("metadata") or {}).get("dbt_version"),
        models={}, parents={}, tests={}, names={}, kinds={},
    )  # fmt: skip
    for unique_id, node in nodes.items():
        if node.get("resource_type") == "model":
            graph.models[node["name"]] = unique_id
            graph.names[unique_id] = node["name"]
            graph.parents[unique_id] = _model_parents(node)
            graph.materialized[node["name"]] = str((node.get("config") or {}).get("materialized"))
            if "marts" in (node.get("fqn") or []):
                graph.marts.append(node["name"])
    for unique_id, node in [*nodes.items(), *unit_tests.items()]:
        kind = {"test": "data test", "unit_test": "unit test"}.get(node.get("resource_type", ""))
        if kind is None:
            continue
        graph.names[unique_id] = node.get("name") or unique_id.split(".")[2]
        graph.kinds[unique_id] = kind
        for parent in _model_parents(node):
            graph.tests.setdefault(parent, []).append(unique_id)
    return graph


def _model_parents(node: dict[str, Any]) -> list[str]:
    return [p for p in (node.get("depends_on") or {}).get("nodes", []) if p.startswith("model.")]


def invocations(rows: list[LedgerRow]) -> dict[str, Invocation]:
    """Each recorded invocation, in the order they started."""
    started: dict[str, LedgerRow] = {}
    finished: set[str] = set()
    for row in rows:
        if row.resource_type != "invocation":
            continue
        if row.status == "started":
            started.setdefault(row.invocation_id, row)
        elif row.status == "finished":
            finished.add(row.invocation_id)
            started.setdefault(row.invocation_id, row)
    ordered = sorted(started.values(), key=lambda r: (r.run_started_at, r.invocation_id))
    return {
        row.invocation_id: Invocation(
            row.invocation_id,
            row.command,
            row.run_started_at,
            order,
            row.invocation_id in finished,
        )
        for order, row in enumerate(ordered)
    }


def _history(rows: list[LedgerRow], runs: dict[str, Invocation]) -> dict[str, list[Result]]:
    """Each node's outcomes, oldest first (skipped results and unknown invocations left out)."""
    history: dict[str, list[Result]] = {}
    for row in rows:
        run = runs.get(row.invocation_id)
        outcomes = _MODEL_OUTCOMES if row.resource_type == "model" else _TEST_OUTCOMES
        if run is None or row.resource_type == "invocation" or row.status not in outcomes:
            continue
        history.setdefault(row.unique_id, []).append(
            Result(run, row.status, row.failures, row.message)
        )
    for results in history.values():
        results.sort(key=lambda r: r.invocation.order)
    return history


def built_models(rows: list[LedgerRow], graph: Graph) -> list[str]:
    """Names of the models with a successful build recorded."""
    ids = {r.unique_id for r in rows if r.resource_type == "model" and r.status == "success"}
    return [name for name, unique_id in graph.models.items() if unique_id in ids]


def _ancestors(graph: Graph, roots: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    stack = [p for root in roots for p in graph.parents.get(root, [])]
    while stack:
        node = stack.pop()
        if node not in seen and node not in roots:
            seen[node] = None
            stack.extend(graph.parents.get(node, []))
    return sorted(seen)


def check(rows: list[LedgerRow], graph: Graph, copied: list[str]) -> GateCheck:
    """Whether the models named in `copied` may be published, by these rules:

    * the model's last build is recorded, finished (no interrupted or running invocation that
      may write models started after it), succeeded, and was not an --empty/--sample build;
    * it has at least one data test, and every one of them has a result in that build's
      invocation or a later one, the latest of which is pass or warn;
    * no test of it or of a model upstream failed (fail/error) since that model's last build
      (a failing unit test blocks too).
    """
    runs = invocations(rows)
    history = _history(rows, runs)
    result = GateCheck()
    failed: list[str] = []
    unchecked: dict[str, list[str]] = {}
    newest: Invocation | None = None
    model_ids = [graph.models[name] for name in copied if name in graph.models]
    for name in copied:
        if name not in graph.models:
            result.problems.append(f"{name} is not a model of this dbt project's manifest")
    for model in [*model_ids, *_ancestors(graph, model_ids)]:
        is_copied = model in model_ids
        name = graph.names[model]
        builds = history.get(model, [])
        last = next((r for r in reversed(builds) if r.status == "success"), None)
        since = last.invocation.order if last else -1
        if is_copied:
            problem = _build_problem(name, builds, last, runs)
            if problem:
                result.problems.append(problem)
                continue
            assert last is not None
            if newest is None or last.invocation.order > newest.order:
                newest = last.invocation
        tests = graph.tests.get(model, [])
        data_tests = [t for t in tests if graph.kinds[t] == "data test"]
        if is_copied and not data_tests:
            result.problems.append(f"{name} has no data test, so no gate can vouch for it")
        for test in tests:
            outcomes = [r for r in history.get(test, []) if r.invocation.order >= since]
            latest = outcomes[-1] if outcomes else None
            if latest is None:
                if is_copied and graph.kinds[test] == "data test":
                    unchecked.setdefault(name, []).append(graph.names[test])
                continue
            result.gates.append(
                GateResult(
                    name=graph.names[test],
                    kind=graph.kinds[test],
                    status=latest.status,
                    failures=latest.failures,
                    model=name,
                    message=latest.message,
                )
            )
            if latest.status not in PASSING:
                failed.append(f"{graph.names[test]} [{name}, {latest.status}]")
    if failed:
        result.problems.insert(0, f"{len(failed)} gate(s) failed: {shown(failed)}")
    if unchecked:
        per_model = [f"{model} ({shown(sorted(names), 2)})" for model, names in unchecked.items()]
        result.problems.append(
            f"{sum(map(len, unchecked.values()))} gate(s) have not run since their model was "
            f"last built (run `dbt build` or `dbt test`): {shown(per_model)}"
        )
    if newest is not None:
        result.built_at = newest.started_at
        result.invocation_id = newest.invocation_id
        result.command = newest.command
    result.gates.sort(key=lambda g: (g.status in PASSING, g.model or "", g.name))
    return result


def _build_problem(
    name: str, builds: list[Result], last: Result | None, runs: dict[str, Invocation]
) -> str | None:
    if last is None:
        return f"no finished build of {name} is recorded (run `dbt build`)"
    if builds[-1].status == "error":
        run = builds[-1].invocation
        return (
            f"the last build of {name} (dbt {run.command}, invocation {run.invocation_id}) failed"
        )
    if last.invocation.partial:
        return f"{name} was last built by `dbt {last.invocation.command}`, not from the real data"
    later = [
        run for run in runs.values()
        if not run.finished and run.writes and run.order > last.invocation.order
    ]  # fmt: skip
    if later:
        run = later[-1]
        return (
            f"dbt {run.command} (invocation {run.invocation_id}, started "
            f"{run.started_at.isoformat()}) did not finish (interrupted or still running) and "
            f"may have rewritten {name}: run `dbt build` again"
        )
    return None


def window_message(start: datetime | None) -> str:
    """The ledger note of a plan run's incremental model: the earliest WINDOW_COLUMN it rewrote."""
    if start is None:
        return _WINDOW_PREFIX + "none"
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return _WINDOW_PREFIX + ">= " + start.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Window:
    """A model row's note: `start` None means the run rewrote no row of the model."""

    start: datetime | None


def parse_window(message: str | None) -> Window | None:
    """The note window_message wrote, or None when the row has none (a dbt build's)."""
    if not message or not message.startswith(_WINDOW_PREFIX):
        return None
    rest = message.removeprefix(_WINDOW_PREFIX)
    if rest == "none":
        return Window(None)
    try:
        return Window(datetime.fromisoformat(rest.removeprefix(">= ")))
    except ValueError:
        return None


def windows_since(
    rows: list[LedgerRow], base_invocation: str, models: list[str], plan_command: str
) -> dict[str, datetime | None] | str:
    """What the models (unique ids) may have had rewritten since the invocation
    `base_invocation`: per model, the earliest WINDOW_COLUMN any later invocation rewrote
    (None: no row), when every later invocation that may write models is a finished
    `plan_command` run that noted its window for each of them it built. Otherwise why not."""
    runs = invocations(rows)
    base = runs.get(base_invocation)
    if base is None:
        return f"invocation {base_invocation} is no longer in the ledger"
    later = {run.invocation_id for run in runs.values() if run.order > base.order and run.writes}
    for invocation_id in sorted(later):
        run = runs[invocation_id]
        if run.command != plan_command or not run.finished:
            return f"`{run.command}` (invocation {run.invocation_id}) ran since"
    starts: dict[str, datetime | None] = dict.fromkeys(models)
    wanted = set(models)
    for row in rows:
        if row.invocation_id not in later or row.unique_id not in wanted:
            continue
        if row.status == "skipped":
            continue
        window = parse_window(row.message) if row.status == "success" else None
        if window is None:
            return f"{row.unique_id} was {row.status} without a window in {row.invocation_id}"
        if window.start is not None:
            known = starts[row.unique_id]
            starts[row.unique_id] = window.start if known is None else min(known, window.start)
    return starts


def shown(items: list[str], limit: int = _SHOWN) -> str:
    """The first `limit` names, comma-separated, and how many more there are."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def rows_from_tuples(records: list[tuple[Any, ...]]) -> list[LedgerRow]:
    """Ledger rows from a query of LEDGER_COLUMNS (DuckDB or BigQuery)."""
    return [
        LedgerRow(
            invocation_id=str(r[0]),
            command=str(r[1] or ""),
            run_started_at=r[2],
            unique_id=str(r[3]),
            resource_type=str(r[4]),
            status=str(r[5]),
            failures=None if r[6] is None else int(r[6]),
            depends_on=r[7],
            message=r[8],
        )
        for r in records
    ]

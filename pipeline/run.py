"""The pipeline's steps as functions: each runs its command through a `Runner`, checks what
it must (gates, one new version, a refused publish) and returns a typed result.

A `Runner` runs one command and hands back its exit code and last lines. The jobs worker's
runner logs to the job, enforces the step's time limit and honours a cancel; the terminal
runner (`btcfs run`, `make demo`) lets the output through. Failures raise `StepFailed`, or
`GateFailed` when a QA, promotion or publish gate refused the build: nothing after it runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import click

from core.errors import BtcfsError
from core.settings import DataPaths, dbt_target_path
from pipeline.params import AllParams, BuildParams, IngestParams, TrainParams, UpdateParams
from pipeline.steps import PIPELINES, Commands, Step
from warehouse.publish import DEFAULT_MODEL

#: How many gate names a failure message lists before "(+N more)".
MAX_GATES_SHOWN = 5


class StepFailed(BtcfsError):
    """A step's command failed, or what it produced is not what the next step needs."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GateFailed(StepFailed):
    """A QA gate (dbt test), a promotion gate (model) or publish refused the build."""

    def __init__(self, kind: str, names: list[str], message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.gate = {"kind": kind, "names": names, "message": message}


class IngestFailed(StepFailed):
    """`btcfs ingest all` failed; `result` still counts what it landed before it did."""

    def __init__(self, message: str, result: IngestResult, *, exit_code: int | None) -> None:
        super().__init__(message, exit_code=exit_code)
        self.result = result


class Runner(Protocol):
    def command(self, *argv: str, env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
        """Run one command to its end: (exit code, its last lines of output)."""
        ...


@dataclass(frozen=True)
class Context:
    """Where the steps read and write: the data folder, dbt's target, the registry, the
    served file, and the model publish names as primary."""

    data_dir: Path
    target_path: Path
    registry_root: Path
    serve_db: Path
    primary_model: str = DEFAULT_MODEL
    commands: Commands = field(default_factory=Commands)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Context:
        """$BTCFS_DATA_DIR and $DBT_TARGET_PATH (default `target`), as the CLI reads them."""
        env = os.environ if env is None else env
        paths = DataPaths.from_env(env)
        return cls(
            data_dir=paths.root,
            target_path=dbt_target_path(env),
            registry_root=paths.registry,
            serve_db=paths.serve_db,
        )


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class IngestResult:
    """What an ingest wrote to the lake: the partitions it (re)wrote and their rows, from
    their MANIFESTs (lake.store.written_since)."""

    partitions_written: int
    rows_landed: int
    rows_quarantined: int
    datasets: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Gates:
    """The gates of the last dbt build (its run_results.json), or why they cannot be read."""

    invocation_id: str | None = None
    command: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    passed: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {
            "invocation_id": self.invocation_id,
            "command": self.command,
            "counts": self.counts,
            "failed": self.failed,
            "warned": self.warned,
            "passed": self.passed,
        }


@dataclass
class TrainedVersion:
    """The version a train step registered, and whether its gates let it be promoted."""

    model: str
    version: str
    stage: str
    target: str | None
    horizon: str | None
    gates_passed: bool
    gate_failures: list[str]
    production_before: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -------------------------------------------------------------------------------- steps


def _last(tail: list[str]) -> str:
    return next((line for line in reversed(tail) if line.strip()), "no output")[-500:]


def _written(lake: Path, since: float) -> dict[str, tuple[int, int]]:
    """Partitions written since `since` with a readable MANIFEST: path -> (rows, quarantined)."""
    from lake.store import written_since

    if not lake.is_dir():
        return {}
    return {
        str(found.folder.relative_to(lake)): (found.rows or 0, found.quarantined_rows)
        for found in written_since(lake, since)
        if found.has_manifest and found.manifest_error is None
    }


def ingest(
    runner: Runner,
    context: Context,
    params: IngestParams,
    *,
    env: Mapping[str, str] | None = None,
    progress: bool = True,
) -> IngestResult:
    """`btcfs ingest all`; what it wrote, counted from the MANIFESTs of the partitions it
    wrote (also when it failed: a dataset that landed before another failed stays landed)."""
    lake = context.data_dir / "lake"
    # a folder's mtime comes from the kernel's coarse clock, a few ms behind time.time()
    started = time.time() - 0.1
    argv = context.commands.ingest(
        config=params.config, base_url=params.base_url, archive=params.archive, progress=progress
    )
    code, tail = runner.command(*argv, env=env)
    written = _written(lake, started)
    datasets: dict[str, dict[str, int]] = {}
    for part, (rows, quarantined) in written.items():
        name = "/".join(part.split("/")[:2])  # <vendor>/<dataset>
        entry = datasets.setdefault(name, {"partitions": 0, "rows": 0, "quarantined": 0})
        entry["partitions"] += 1
        entry["rows"] += rows
        entry["quarantined"] += quarantined
    result = IngestResult(
        partitions_written=len(written),
        rows_landed=sum(rows for rows, _ in written.values()),
        rows_quarantined=sum(quarantined for _, quarantined in written.values()),
        datasets=datasets,
    )
    if code != 0:
        message = f"btcfs ingest all exited with code {code}: {_last(tail)}"
        raise IngestFailed(message, result, exit_code=code)
    return result


def gates(context: Context) -> Gates:
    """The last dbt build's gates, read from its run_results.json."""
    from warehouse.runs import QAError, read_run_results

    try:
        summary = read_run_results(context.target_path)
    except QAError as exc:
        return Gates(error=str(exc))
    return Gates(
        invocation_id=summary.invocation_id,
        command=summary.command,
        counts=summary.statuses,
        failed=summary.failed_gates,
        warned=[gate.name for gate in summary.gates if gate.status == "warn"],
        passed=sum(1 for gate in summary.gates if gate.status == "pass"),
    )


def _gate_message(kind: str, names: list[str]) -> str:
    from warehouse.gate_ledger import shown

    return f"{kind} gate failed: {shown(names, MAX_GATES_SHOWN)}"


def _gated(found: Gates, code: int, tail: list[str], what: str) -> Gates:
    if found.failed:
        raise GateFailed("qa", found.failed, _gate_message("QA", found.failed), exit_code=code)
    if code != 0:
        raise StepFailed(f"{what} exited with code {code}: {_last(tail)}", exit_code=code)
    return found


def build(
    runner: Runner,
    context: Context,
    params: BuildParams,
    record: Callable[[Gates], None] | None = None,
) -> Gates:
    """`dbt build`, then its gates: `GateFailed` naming the failing ones. `record` gets the
    gates before anything is raised, so a failed build still reports them."""
    (context.data_dir / "warehouse").mkdir(parents=True, exist_ok=True)
    argv = context.commands.build(
        dbt_vars=params.vars.dbt_vars(),
        unit_tests=params.unit_tests,
        full_refresh=params.full_refresh,
    )
    code, tail = runner.command(*argv)
    found = gates(context)
    if record is not None:
        record(found)
    return _gated(found, code, tail, "dbt build")


def update_build(
    runner: Runner,
    context: Context,
    params: BuildParams,
    record: Callable[[Gates], None] | None = None,
    *,
    changed: Collection[str] | None = None,
) -> tuple[Gates, Path]:
    """The update's build: the compiled update plan when it can run (warehouse.plan: the same
    SQL as `dbt build`, without dbt's start-up), else `dbt build` with the update's vars and
    then a new plan compiled for the next update. The gates (`GateFailed` naming the failing
    ones), and the target folder holding their run_results.json (for `btcfs qa`).

    `changed`: only these lake sources ("binance.spot_klines") have new rows since the last
    build, so the plan runs only what reads them (`btcfs live`); None runs it all."""
    from importlib.metadata import version

    from warehouse import plan as update_plan

    paths = DataPaths(context.data_dir)
    lake = paths.lake
    plan_dir = update_plan.plan_target(context.target_path)
    fingerprint = update_plan.project_fingerprint(lake_root=lake, dbt_version=version("dbt-core"))
    try:
        compiled = update_plan.load_plan(plan_dir, fingerprint=fingerprint)
        only = None if changed is None else update_plan.downstream_of(compiled, changed)
        ran = update_plan.run_plan(compiled, paths.build_db, allowed=[lake], only=only)
        print(update_plan.describe(ran), file=sys.stderr, flush=True)
    except update_plan.PlanStale as exc:
        print(f"update plan not used: {exc}; dbt build instead", file=sys.stderr, flush=True)
        found = build(runner, context, params, record)
        argv = context.commands.compile_plan(
            target_path=plan_dir, dbt_vars=json.dumps(update_plan.PLAN_VARS)
        )
        code, tail = runner.command(*argv)
        if code != 0:  # the next update builds with dbt again, and retries
            print(f"the update plan did not compile: {_last(tail)}", file=sys.stderr)
        else:
            update_plan.write_plan_file(plan_dir, fingerprint=fingerprint, lake_root=lake)
        return found, context.target_path
    found = gates(replace(context, target_path=plan_dir))
    if record is not None:
        record(found)
    return _gated(found, 0, [], "the update plan"), plan_dir


def qa(
    runner: Runner,
    context: Context,
    record: Callable[[Gates], None] | None = None,
    *,
    summaries: bool = True,
) -> Gates:
    """`btcfs qa`: print the gates and write the QA summary (`summaries`: the per-dataset
    ones too); `GateFailed` when one failed."""
    argv = context.commands.qa(target_path=context.target_path, summaries=summaries)
    code, tail = runner.command(*argv)
    found = gates(context)
    if record is not None:
        record(found)
    return _gated(found, code, tail, "btcfs qa")


def check(context: Context, record: Callable[[Gates], None] | None = None) -> Gates:
    """Before retraining for a forecast: the build to publish afterwards passed its gates."""
    found = gates(context)
    if record is not None:
        record(found)
    if found.error is not None:
        raise StepFailed(found.error)
    if found.failed:
        raise GateFailed("qa", found.failed, _gate_message("QA", found.failed))
    return found


def _versions(root: Path) -> set[tuple[str, str]]:
    from ml.registry import Registry

    registry = Registry(root)
    return {(name, info.version) for name in registry.models() for info in registry.versions(name)}


def train(runner: Runner, context: Context, params: TrainParams) -> TrainedVersion:
    """`btcfs train`: the one version it registered, with its stage and gate failures."""
    from ml.registry import Registry

    before = _versions(context.registry_root)
    argv = context.commands.train(
        config=params.config,
        target=params.target,
        horizon=params.horizon,
        symbol=params.symbol,
        model=params.model,
    )
    code, tail = runner.command(*argv)
    if code != 0:
        raise StepFailed(f"btcfs train exited with code {code}: {_last(tail)}", exit_code=code)
    new = sorted(_versions(context.registry_root) - before)
    if len(new) != 1:
        raise StepFailed(f"btcfs train registered {len(new)} versions, expected one")
    name, version = new[0]
    registry = Registry(context.registry_root)
    info = registry.get(name, version)
    found = info.metadata.get("gates", {})
    return TrainedVersion(
        model=name,
        version=version,
        stage=info.stage,
        target=info.metadata.get("target"),
        horizon=info.metadata.get("horizon"),
        gates_passed=not found.get("failures"),
        gate_failures=list(found.get("failures", [])),
        production_before=registry.production(name),
    )


def promote(runner: Runner, context: Context, trained: TrainedVersion, params: TrainParams) -> bool:
    """Promote the version just trained (its stage becomes production); False (skipped)
    when `promote` is off, `GateFailed` when its gates failed."""
    if not params.promote:
        return False
    if trained.gate_failures or trained.stage != "candidate":
        names = trained.gate_failures or [f"stage {trained.stage}"]
        message = f"promotion gate failed for {trained.model} {trained.version}: " + "; ".join(
            names[:MAX_GATES_SHOWN]
        )
        raise GateFailed("promotion", names, message)
    code, tail = runner.command(*context.commands.promote(trained.model, trained.version))
    if code != 0:
        raise StepFailed(f"btcfs models promote exited with code {code}: {_last(tail)}",
                         exit_code=code)  # fmt: skip
    trained.stage = "production"
    return True


def publish(runner: Runner, context: Context) -> dict[str, Any]:
    """`btcfs publish`; the published file's metadata row. `GateFailed` when publish
    refused the build because of its gates."""
    argv = context.commands.publish(
        target_path=context.target_path, serve=context.serve_db, model=context.primary_model
    )
    code, tail = runner.command(*argv)
    if code != 0:
        refused = next((line for line in reversed(tail) if "refusing to publish" in line), None)
        failing = gates(context).failed
        if refused is not None and (failing or "gate" in refused):
            raise GateFailed("publish", failing, refused.removeprefix("Error: "), exit_code=code)
        raise StepFailed(f"btcfs publish exited with code {code}: {_last(tail)}", exit_code=code)
    return published(context.serve_db)


def published(serve: Path) -> dict[str, Any]:
    """The metadata row of a published file, as JSON values."""
    import duckdb

    from warehouse.publish import METADATA_TABLE

    con = duckdb.connect(str(serve), read_only=True)
    try:
        cursor = con.execute(f"select * from {METADATA_TABLE}")  # noqa: S608 (a constant)
        columns = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    finally:
        con.close()
    values = dict(zip(columns, row, strict=True)) if row else {}
    return {key: _plain(value) for key, value in values.items()}


def _plain(value: Any) -> Any:
    """A metadata cell as JSON: JSON text (table counts, statuses) decoded, times as text."""
    if isinstance(value, str) and value.startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# -------------------------------------------------------------------------------- plans

#: One step of a plan: returns False when it was skipped (promote: false).
Action = Callable[[], bool | None]


def plan(
    name: str,
    params: Any,
    runner: Runner,
    context: Context,
    result: dict[str, Any],
    *,
    ingest_env: Callable[[IngestParams], Mapping[str, str] | None] | None = None,
    extra: Mapping[Step, Action] | None = None,
) -> list[tuple[Step, Action]]:
    """Pipeline `name`'s steps (PIPELINES) as (step, action) pairs in order, each writing
    what it found into `result` (a job's result: `ingest`, `gates`, `model`, `published`).

    `params` is the pipeline's params struct (AllParams for `all`, TrainParams for `train`
    and `forecast`). `ingest_env`, called as the ingest step starts, may refuse its params
    (raising StepFailed) and gives the environment of its command. `extra` supplies the
    steps this module does not run (`predict`, the API's own).
    """
    if name not in PIPELINES:
        raise StepFailed(f"unknown pipeline {name!r}")
    every = params if isinstance(params, AllParams) else None
    update = params if isinstance(params, UpdateParams) else None

    def record_gates(found: Gates) -> None:
        result["gates"] = found.as_dict()

    def run_ingest() -> None:
        chosen: IngestParams = every.ingest if every else update.ingest if update else params
        env = ingest_env(chosen) if ingest_env is not None else None
        try:
            result["ingest"] = ingest(runner, context, chosen, env=env).as_dict()
        except IngestFailed as exc:
            result["ingest"] = exc.result.as_dict()
            if update is None:
                raise
            # An exchange or a vendor down does not stop the update: it builds and publishes
            # what the lake holds (stale inputs turn NULL, flagged, by the features' own
            # age rules), and says so.
            result["ingest"]["error"] = str(exc)
            print(f"update: {exc}; building on what the lake holds", file=sys.stderr, flush=True)

    # the update's QA reads the gates where its build left them (the plan's target, or dbt's)
    qa_context = [context]

    def run_build() -> None:
        if update is not None:
            _, where = update_build(runner, context, update.build(), record_gates)
            qa_context[0] = replace(context, target_path=where)
            return
        build(runner, context, every.build if every else params, record_gates)

    def run_qa() -> None:
        # the update's: the gates and the ledger, not the whole-history dataset summaries
        qa(runner, qa_context[0], record_gates, summaries=update is None)

    def run_check() -> None:
        check(context, record_gates)

    def run_train() -> None:
        result["model"] = train(runner, context, every.train if every else params).as_dict()

    def run_promote() -> bool:
        trained = TrainedVersion(**result["model"])
        try:
            return promote(runner, context, trained, every.train if every else params)
        finally:
            result["model"] = trained.as_dict()

    def run_publish() -> None:
        result["published"] = publish(runner, context)

    actions: dict[Step, Action] = {
        Step.INGEST: run_ingest,
        Step.BUILD: run_build,
        Step.QA: run_qa,
        Step.CHECK: run_check,
        Step.TRAIN: run_train,
        Step.PROMOTE: run_promote,
        Step.PUBLISH: run_publish,
        **(extra or {}),
    }
    missing = [step for step in PIPELINES[name] if step not in actions]
    if missing:
        raise StepFailed(f"pipeline {name!r} needs steps this caller cannot run: {missing}")
    return [(step, actions[step]) for step in PIPELINES[name]]


# --------------------------------------------------------------------- the terminal runner


class TerminalRunner:
    """Runs each command with its output on this terminal (`btcfs run`, `make demo`),
    printing it first as `$ command`; keeps the last lines for failure messages. `out` is
    where that goes (stderr when stdout carries a JSON result)."""

    def __init__(self, cwd: Path | None = None, out: TextIO | None = None) -> None:
        self.cwd = cwd
        self.out = out

    def command(self, *argv: str, env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
        out = self.out or sys.stdout
        print("$ " + shlex.join(argv), file=out, flush=True)
        child = subprocess.Popen(
            list(argv),
            cwd=self.cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert child.stdout is not None
        tail: list[str] = []
        with child.stdout:
            for line in child.stdout:
                print(line, end="", file=out, flush=True)
                tail = [*tail[-19:], line.rstrip()]
        return child.wait(), tail


class _Tail(io.TextIOBase):
    """Writes through to `out`, keeping the last lines (for failure messages)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lines: list[str] = []
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.out.write(text)
        *whole, self._partial = (self._partial + text).split("\n")
        self.lines = [*self.lines, *(line.rstrip() for line in whole)][-20:]
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    @property
    def tail(self) -> list[str]:
        return [*self.lines, self._partial][-20:] if self._partial else self.lines


class InProcessRunner(TerminalRunner):
    """A TerminalRunner that runs `btcfs …` steps in this process through `cli` (the root
    click group), so a step costs no Python start-up and no imports (`btcfs update`); dbt,
    and a step that needs its own environment, still run as processes."""

    def __init__(self, cli: click.Command, out: TextIO | None = None) -> None:
        super().__init__(out=out)
        self.cli = cli
        self.btcfs = Commands().exe("btcfs")

    def command(self, *argv: str, env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
        if not argv or argv[0] != self.btcfs or env is not None:
            return super().command(*argv, env=env)
        out = self.out or sys.stdout
        print("$ " + shlex.join(argv), file=out, flush=True)
        tee = _Tail(out)
        with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
            code = self._invoke(list(argv[1:]))
        return code, tee.tail

    def _invoke(self, args: list[str]) -> int:
        try:
            returned = self.cli.main(args=args, prog_name="btcfs", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        except click.Abort:
            print("Aborted!", file=sys.stderr)
            return 1
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        # standalone_mode=False hands back ctx.exit(n)'s code; commands themselves return None
        return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0

"""GET /v1/qa: the QA gates of what is served (recorded in serve.duckdb by `btcfs publish`
from the gate ledger) and of the newest dbt invocation (run_results.json)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from litestar import get

from api.errors import error_responses
from api.schemas import Gate, GateRun, QAOut
from api.services import ServicesDep
from warehouse.runs import PROBLEM_STATUSES, QAError, read_run_results

_cache: dict[Path, tuple[tuple[int, int], GateRun]] = {}
_cache_lock = threading.Lock()


def _run(invocation: str | None, built_at: str | None, gates: list[Gate]) -> GateRun:
    counts = Counter(gate.status for gate in gates)
    return GateRun(
        invocation_id=invocation,
        built_at=built_at,
        failed=any(gate.status in PROBLEM_STATUSES for gate in gates),
        counts=dict(counts),
        gates=sorted(gates, key=lambda g: (g.status in ("pass", "success"), g.name)),
    )


def last_build(target: Path) -> GateRun | None:
    """The newest run_results.json (parsed by `btcfs qa`'s reader), cached by mtime."""
    path = target / "run_results.json"
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        cached = _cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        summary = read_run_results(target)
    except QAError:
        return None  # dbt is rewriting it: the next request reads the finished file
    run = _run(
        summary.invocation_id,
        summary.generated_at,
        [Gate(name=g.name, kind=g.kind, status=g.status, failures=g.failures, model=g.model,
              message=g.message) for g in summary.gates],
    )  # fmt: skip
    with _cache_lock:
        _cache[path] = (key, run)
    return run


def _gate(row: dict[str, Any]) -> Gate:
    return Gate(**row)


@get("/v1/qa", operation_id="getQA", summary="QA gates", tags=["qa"], sync_to_thread=True,
     responses=error_responses(503))  # fmt: skip
def get_qa(services: ServicesDep) -> QAOut:
    """Gate results (pass/warn/fail with failure counts): `published` are the latest results
    of every gate of each served mart (and of the models upstream of them), as publish
    checked them in the gate ledger, whichever dbt invocations ran them; `last_build` those of
    dbt's newest invocation, which may be a partial one or one a failing gate kept from
    being published."""
    with services.db.reader() as reader:
        info = reader.generation.info
        gates = [_gate(row) for row in reader.gates()]
    built_at = info.built_at.isoformat() if info.built_at else None
    return QAOut(
        published=_run(info.dbt_invocation_id, built_at, gates),
        last_build=last_build(services.settings.target_path),
    )


ROUTES = [get_qa]

"""Root conftest: one `dbt parse` per session for the tests that need a manifest but no build,
and how `make test` spreads the suite over the cores (pytest-xdist).

`make test` runs `pytest -n 2 --dist loadgroup`, with the scheduler below in place of xdist's:

* a test module is one unit of work, so its module fixtures (a dbt build each) are built once,
  on the worker that runs the module;
* the modules that share a session fixture (`SHARED`: the API's published pipeline, the
  BigQuery emulators and their build) are one unit together, so that fixture is built once in
  the session, not once per worker. (A map of paths, not `xdist_group` marks: pytest 9 keeps a
  test's id where xdist 3.8 can no longer append the group to it.)
* the longest units start first (`LONGEST_FIRST`, from `--durations` profiles: docs/testing.md),
  so no worker is left alone with a long unit at the end.

Plain `pytest` (one process) ignores all of this.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

REPO = Path(__file__).resolve().parents[1]

#: Modules that share a session fixture, by the fixture: each group is one unit of work.
SHARED = {
    "api_pipeline": (  # tests/api/apipipeline.py: published_pipeline
        "tests/api/test_api_as_of.py",
        "tests/api/test_api_pages.py",
        "tests/api/test_api_routes.py",
        "tests/api/test_api_schemathesis.py",
        "tests/api/test_api_swap.py",
        "tests/api/test_dashboard.py",
    ),
    "bigquery_emulators": (  # tests/bigquery/conftest.py: crucible, gcs_emulator, emulator_build
        "tests/bigquery/test_emulator_parity.py",
        "tests/bigquery/test_load_bq.py",
        "tests/bigquery/test_read_marts.py",
    ),
}
_GROUP_OF = {module: group for group, modules in SHARED.items() for module in modules}
_MISSING = [module for module in _GROUP_OF if not (REPO / module).is_file()]
assert not _MISSING, f"tests/conftest.py SHARED names modules that do not exist: {_MISSING}"

#: Units of work (a group of SHARED, else a module path) that take minutes, longest first (the
#: profile in docs/testing.md); every other unit follows, those with more tests first.
LONGEST_FIRST = (
    "bigquery_emulators",
    "tests/features/test_point_in_time.py",
    "tests/features/test_incremental.py",
    "tests/warehouse/test_warehouse_incremental.py",
    "tests/warehouse/test_update_plan.py",  # two folders through five dbt builds and plan runs
    "tests/pipeline/test_live.py",  # a dbt build, live at 30x for four publishes, a rebuild
    "api_pipeline",
    "tests/warehouse/test_publish_gates.py",
    "tests/features/test_empty_mart_gates.py",
    "tests/ml/test_ml_pipeline.py",
    "tests/warehouse/test_warehouse_bad_input.py",
    "tests/warehouse/test_retrieval.py",
    "tests/features/test_add_a_feature.py",
    "tests/warehouse/test_warehouse_var_safety.py",
    "tests/api/test_jobs.py",
    "tests/features/test_gates.py",
)


def _unit(nodeid: str) -> str:
    """The unit of work of a test id: its module's group, else its module."""
    module = nodeid.split("::", 1)[0]
    return _GROUP_OF.get(module, module)


class ModuleOrGroupScheduling(LoadGroupScheduling):
    """Units of work as `_unit` says, the longest first."""

    def _split_scope(self, nodeid: str) -> str:
        return _unit(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        # The parent hands out the queue's first unit: bring the longest pending one there.
        for unit in LONGEST_FIRST:
            if unit in self.workqueue:
                self.workqueue.move_to_end(unit, last=False)
                break
        super()._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "loadgroup":
        return ModuleOrGroupScheduling(config, log)
    return None


@pytest.fixture(scope="session")
def parsed_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target folder after one `dbt parse` of this checkout (manifest.json and what else
    parse writes), once per session: a parse takes ~10 s, and tests that only read the
    manifest start from a copy of this folder instead of parsing (its partial-parse state
    left out: it belongs to this folder's data path, and dbt would discard it)."""
    folder = tmp_path_factory.mktemp("parsed_target")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env.update(
        BTCFS_DATA_DIR=str(folder / "data"),
        DBT_TARGET_PATH=str(folder / "target"),
        DBT_LOG_PATH=str(folder / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "parse", "--quiet"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder / "target"

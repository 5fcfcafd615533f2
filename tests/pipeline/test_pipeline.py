"""The pipeline as a library: one step order, one command line per step, `btcfs run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from btcfs.cli import cli
from pipeline.params import PARAMS, AllParams, TrainParams
from pipeline.run import Context, StepFailed, TerminalRunner, plan
from pipeline.steps import PIPELINES, Commands, Step

BTCFS = str(Path(sys.executable).with_name("btcfs"))


class Refusing:
    """A runner that must not be reached: planning runs nothing."""

    def command(self, *argv: str, env: Any = None) -> tuple[int, list[str]]:
        raise AssertionError(f"ran {argv}")


def _context(tmp_path: Path) -> Context:
    return Context(tmp_path, tmp_path / "target", tmp_path / "registry", tmp_path / "s.duckdb")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_each_pipeline_plans_the_steps_pipelines_lists_and_runs_none(
    tmp_path: Path, name: str
) -> None:
    params = PARAMS[name]()
    steps = plan(name, params, Refusing(), _context(tmp_path), {})
    assert [step for step, _ in steps] == list(PIPELINES[name])


def test_the_all_pipeline_is_ingest_build_qa_train_promote_publish() -> None:
    assert PIPELINES["all"] == (
        Step.INGEST, Step.BUILD, Step.QA, Step.TRAIN, Step.PROMOTE, Step.PUBLISH
    )  # fmt: skip


def test_a_pipeline_with_a_step_the_caller_cannot_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="predict"):
        plan("forecast", TrainParams(), Refusing(), _context(tmp_path), {})
    steps = plan(
        "forecast", TrainParams(), Refusing(), _context(tmp_path), {},
        extra={Step.PREDICT: lambda: None},
    )  # fmt: skip
    assert [step for step, _ in steps][-1] is Step.PREDICT
    with pytest.raises(StepFailed, match="unknown pipeline 'deploy'"):
        plan("deploy", AllParams(), Refusing(), _context(tmp_path), {})


def test_commands_are_argument_lists_with_values_kept_in_one_word(tmp_path: Path) -> None:
    commands = Commands(tmp_path)  # no executables there: found on PATH, or the bare name
    ingest = commands.ingest(config="-x.yml", base_url="http://127.0.0.1:1", progress=False)
    assert ingest[1:] == [
        "ingest", "all", "--config=-x.yml", "--base-url=http://127.0.0.1:1", "--no-progress"
    ]  # fmt: skip
    assert commands.promote("m", "--force")[-3:] == ["--", "m", "--force"]
    assert commands.build(dbt_vars='{"a": 1}', unit_tests=False, full_refresh=True)[1:] == [
        "build", '--vars={"a": 1}', "--exclude-resource-type=unit_test", "--full-refresh"
    ]  # fmt: skip
    beside = Commands()  # the venv's own btcfs, beside this interpreter
    assert beside.exe("btcfs") == BTCFS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "train", "--model", "x y"], "invalid option"),
        (["run", "deploy"], "'deploy' is not one of"),
        (["run", "all", "--target", "price"], "'price' is not one of"),
    ],
)
def test_btcfs_run_refuses_bad_input_before_running_anything(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, args, env={"BTCFS_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "lake").exists()


def test_btcfs_run_publish_without_a_build_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = dict(os.environ, BTCFS_DATA_DIR=str(tmp_path), DBT_TARGET_PATH=str(tmp_path / "t"))
    result = subprocess.run(
        [BTCFS, "run", "publish"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert errors[0].startswith("Error: publish stopped at publish: btcfs publish exited with code")
    assert "$ " + BTCFS + " publish" in result.stdout
    assert not (tmp_path / "warehouse" / "serve.duckdb").exists()


def test_the_terminal_runner_shows_each_command_and_keeps_its_last_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = "import sys\nfor i in range(30): print('line', i)\nsys.exit(3)"
    code, tail = TerminalRunner(out=sys.stderr).command(sys.executable, "-c", script)
    assert code == 3
    assert tail[-1] == "line 29" and len(tail) == 20
    shown = capsys.readouterr()
    assert shown.out == ""  # stdout stays free for a JSON result
    assert shown.err.startswith("$ ") and "line 0\n" in shown.err

"""The pipeline's steps, their order per pipeline, and the command line of each.

Defined once here; the jobs worker (api.worker), `make demo` (scripts/demo.py), `btcfs run`
and the drills take them from this module. A step runs as the command a person would type
(`btcfs ingest all`, `dbt build`, ...), in a process of its own, so a job can stop it (time
limit, cancel) without stopping the process that runs the pipeline.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Step(StrEnum):
    INGEST = "ingest"  # land every configured dataset (btcfs ingest all)
    BUILD = "build"  # dbt build: bars, features, labels and their gates
    QA = "qa"  # the gates of that build (btcfs qa)
    CHECK = "check"  # the last build passed its gates (nothing is run)
    TRAIN = "train"  # train and register a version (btcfs train)
    PROMOTE = "promote"  # promote it when its gates pass (btcfs models promote)
    PUBLISH = "publish"  # copy the marts to serve.duckdb, pin models (btcfs publish)
    PREDICT = "predict"  # a forecast from the freshly published file


#: The steps each pipeline runs, in order (a step may end "skipped", e.g. promote: false).
PIPELINES: Mapping[str, tuple[Step, ...]] = {
    "ingest": (Step.INGEST,),
    "build": (Step.BUILD, Step.QA),
    "publish": (Step.PUBLISH,),
    "train": (Step.TRAIN, Step.PROMOTE),
    "all": (Step.INGEST, Step.BUILD, Step.QA, Step.TRAIN, Step.PROMOTE, Step.PUBLISH),
    # `btcfs update`: bring what is served current (no training: models are retrained on
    # their own cadence, `btcfs run all`)
    "update": (Step.INGEST, Step.BUILD, Step.QA, Step.PUBLISH),
    "forecast": (Step.CHECK, Step.TRAIN, Step.PROMOTE, Step.PUBLISH, Step.PREDICT),
}


def _option(name: str, value: str | Path | None) -> list[str]:
    # `--name=value` in one word: a value starting with '-' stays a value.
    return [] if value is None else [f"{name}={value}"]


@dataclass(frozen=True)
class Commands:
    """The argument list of each step's command (never a shell string), with the `btcfs`
    and `dbt` executables found beside the running interpreter first, then on PATH."""

    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    def exe(self, name: str) -> str:
        beside = self.bin_dir / name
        return str(beside) if beside.exists() else shutil.which(name) or name

    def ingest(
        self,
        *,
        config: str | Path | None = None,
        base_url: str | None = None,
        archive: str | None = None,
        progress: bool = True,
    ) -> list[str]:
        return [
            self.exe("btcfs"), "ingest", "all",
            *_option("--config", config),
            *_option("--base-url", base_url),
            *_option("--archive", archive),
            *([] if progress else ["--no-progress"]),
        ]  # fmt: skip

    def build(
        self, *, dbt_vars: str | None = None, unit_tests: bool = True, full_refresh: bool = False
    ) -> list[str]:
        return [
            self.exe("dbt"), "build",
            *_option("--vars", dbt_vars),
            *([] if unit_tests else ["--exclude-resource-type=unit_test"]),
            *(["--full-refresh"] if full_refresh else []),
        ]  # fmt: skip

    def compile_plan(self, *, target_path: str | Path, dbt_vars: str) -> list[str]:
        """`dbt compile` of the update plan (warehouse.plan) into `target_path`."""
        return [
            self.exe("dbt"), "compile",
            *_option("--vars", dbt_vars),
            *_option("--target-path", target_path),
            "--exclude", "resource_type:unit_test",
        ]  # fmt: skip

    def qa(self, *, target_path: str | Path | None = None, summaries: bool = True) -> list[str]:
        return [
            self.exe("btcfs"), "qa",
            *_option("--target-path", target_path),
            *([] if summaries else ["--no-summaries"]),
        ]  # fmt: skip

    def train(
        self,
        *,
        config: str | Path | None = None,
        target: str | None = None,
        horizon: str | None = None,
        symbol: str | None = None,
        model: str | None = None,
    ) -> list[str]:
        return [
            self.exe("btcfs"), "train",
            *_option("--config", config),
            *_option("--target", target),
            *_option("--horizon", horizon),
            *_option("--symbol", symbol),
            *_option("--model", model),
        ]  # fmt: skip

    def promote(self, model: str, version: str) -> list[str]:
        return [self.exe("btcfs"), "models", "promote", "--", model, version]

    def publish(
        self,
        *,
        target_path: str | Path | None = None,
        serve: str | Path | None = None,
        model: str | None = None,
    ) -> list[str]:
        return [
            self.exe("btcfs"), "publish",
            *_option("--target-path", target_path),
            *_option("--serve", serve),
            *_option("--model", model),
        ]  # fmt: skip

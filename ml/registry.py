"""Model registry on disk: data/registry/<model>/<version>/{model.cbm, metadata.json, ...}.

A version is written whole into a temporary folder and renamed into place, so a reader never
sees half of one. Stages: a new version is a `candidate` when it passed its gates (else
`rejected`); `promote` makes a version `production`, `rollback` returns to the one before.
The production pointer and its history live in <model>/stages.json, replaced atomically;
with MLFLOW_TRACKING_URI set, MLflow's `production` alias follows it (ml.tracking).
Every write (a new version's number, promote, rollback) holds <model>/.lock, so two processes
never both read the same stages.json and each write back their own change over the other's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.locks import exclusive
from core.settings import DataPaths
from lake.store import lake_digest
from ml import tracking
from ml.errors import GateError, RegistryError
from warehouse.publish import PinnedModel

log = logging.getLogger("ml.registry")

MODEL_FILE = "model.cbm"
QUANTILE_FILE = "quantiles.cbm"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "oos_predictions.parquet"
STAGES_FILE = "stages.json"
LOCK_FILE = ".lock"
_VERSION = re.compile(r"^v(\d{4,})$")
#: A model name is one folder under the registry: never `.`, `..` or a hidden name.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def registry_root() -> Path:
    return DataPaths.from_env().registry


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).chmod(0o644)  # mkstemp makes it private; registry files are shared
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    path: Path
    metadata: dict[str, Any]
    stage: str  # production | candidate | rejected

    @property
    def created_at(self) -> str:
        return str(self.metadata.get("created_at", ""))


def trained_symbols(metadata: dict[str, Any]) -> list[str]:
    """The symbols a version was trained on (versions older than `symbols`: their one
    `symbol`, and BTCUSDT before that)."""
    return list(metadata.get("symbols") or [metadata.get("symbol") or "BTCUSDT"])


def _check_name(model: str) -> None:
    if not _NAME.match(model):
        raise RegistryError(f"invalid model name {model[:100]!r}")


class Registry:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or registry_root()).resolve()

    # ---------------------------------------------------------------------- writing

    def register(
        self,
        model: str,
        metadata: dict[str, Any],
        write_files: Callable[[Path], None],
    ) -> VersionInfo:
        """A new version: `write_files(folder)` saves model files into it, then metadata.json."""
        _check_name(model)
        self.check_symbols(model, metadata.get("symbols") or [])
        folder = self.root / model
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".incoming-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            write_files(staging)  # the slow part, outside the lock
            with self._locked(model, "register a new version"):
                self.check_symbols(model, metadata.get("symbols") or [])
                version = self._next_version(model)
                payload = {
                    **metadata,
                    "model": model,
                    "version": version,
                    "created_at": metadata.get("created_at") or _now(),
                }
                _write_json_atomic(staging / METADATA_FILE, payload)
                # Under the lock nobody else takes this number; rename() would refuse it anyway.
                staging.rename(folder / version)
            return self.get(model, version)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def check_symbols(self, model: str, symbols: list[str]) -> None:
        """Refuse a version whose symbols differ from the model's earlier versions': one
        name is one symbol's model (the API picks a model per symbol by what it records)."""
        earlier = self.symbols_of(model)
        if earlier is not None and symbols and sorted(earlier) != sorted(symbols):
            raise RegistryError(
                f"model {model} holds versions trained on {', '.join(earlier)}, not on "
                f"{', '.join(symbols)}: give this one its own name (--model), or leave --model "
                "out for <symbol>_5m"
            )

    def symbols_of(self, model: str) -> list[str] | None:
        """The symbols the newest version of `model` was trained on (None: no version yet)."""
        names = self._version_names(model)
        if not names:
            return None
        return trained_symbols(self.get(model, names[-1]).metadata)

    def lock_file(self, model: str) -> Path:
        """The lock every write of `model` holds (see core.locks)."""
        return self.root / model / LOCK_FILE

    def _locked(self, model: str, purpose: str) -> contextlib.AbstractContextManager[None]:
        return exclusive(self.lock_file(model), f"{model}: {purpose}", error=RegistryError)

    def _next_version(self, model: str) -> str:
        numbers = [int(m.group(1)) for m in map(_VERSION.match, self._version_names(model)) if m]
        return f"v{max(numbers, default=0) + 1:04d}"

    # ---------------------------------------------------------------------- reading

    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def _version_names(self, model: str) -> list[str]:
        _check_name(model)
        folder = self.root / model
        if not folder.is_dir():
            return []
        names = [p.name for p in folder.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(names, key=lambda name: int(name[1:]))

    def versions(self, model: str) -> list[VersionInfo]:
        return [self.get(model, name) for name in self._version_names(model)]

    def get(self, model: str, version: str | None = None) -> VersionInfo:
        """A version (default: production, else the newest candidate, else the newest)."""
        _check_name(model)
        if version is None:
            version = self.default_version(model)
        if not _VERSION.match(version):
            raise RegistryError(f"invalid version {version[:40]!r} (expected v0001, v0002, ...)")
        path = self.root / model / version
        metadata_path = path / METADATA_FILE
        if not metadata_path.is_file():
            known = ", ".join(self._version_names(model)) or "none"
            raise RegistryError(f"{model} has no version {version} (versions: {known})")
        metadata = json.loads(metadata_path.read_text())
        return VersionInfo(model, version, path, metadata, self._stage(model, version, metadata))

    def default_version(self, model: str) -> str:
        names = self._version_names(model)
        if not names:
            known = ", ".join(self.models()) or "none"
            raise RegistryError(
                f"no registered versions of {model} under {self.root} (models: {known}); "
                "run `btcfs train` first"
            )
        production = self.production(model)
        if production:
            return production
        for name in reversed(names):
            metadata = json.loads((self.root / model / name / METADATA_FILE).read_text())
            if metadata.get("gates", {}).get("passed"):
                return name
        return names[-1]

    def _stage(self, model: str, version: str, metadata: dict[str, Any]) -> str:
        if self.production(model) == version:
            return "production"
        return "candidate" if metadata.get("gates", {}).get("passed") else "rejected"

    # ----------------------------------------------------------------------- stages

    def _stages(self, model: str) -> dict[str, Any]:
        path = self.root / model / STAGES_FILE
        if not path.is_file():
            return {"production": None, "stack": [], "history": []}
        return dict(json.loads(path.read_text()))

    def production(self, model: str) -> str | None:
        stack = self._stages(model).get("stack") or []
        return str(stack[-1]) if stack else None

    def history(self, model: str) -> list[dict[str, Any]]:
        return list(self._stages(model).get("history") or [])

    def promote(self, model: str, version: str, *, force: bool = False) -> VersionInfo:
        """Make `version` production; a version that failed its gates needs `force`."""
        _check_name(model)
        self.get(model, version)  # an unknown model or version creates no lock file
        with self._locked(model, f"promote {version}"):
            self._promote(model, version, force)
        self._mirror(model)
        return self.get(model, version)

    def _promote(self, model: str, version: str, force: bool) -> None:
        info = self.get(model, version)
        stages = self._stages(model)
        stack = list(stages.get("stack") or [])
        if stack and stack[-1] == version:
            raise RegistryError(f"{model} {version} is already production")
        if info.stage == "rejected" and not force:
            failed = "; ".join(info.metadata.get("gates", {}).get("failures", [])) or "see metadata"
            raise GateError(
                f"{model} {version} did not pass its gates ({failed}); "
                "promote --force overrides, on your judgement"
            )
        previous = stack[-1] if stack else None
        stack.append(version)
        history = [
            *stages.get("history", []),
            {"at": _now(), "action": "promote", "version": version, "previous": previous,
             "forced": bool(force and info.stage == "rejected")},
        ]  # fmt: skip
        _write_json_atomic(
            self.root / model / STAGES_FILE,
            {"production": version, "stack": stack, "history": history},
        )

    def rollback(self, model: str) -> VersionInfo:
        """Production goes back to the version that was production before the current one."""
        _check_name(model)
        if not self._version_names(model):
            raise RegistryError(f"{model} has no production version to roll back")
        with self._locked(model, "roll back"):
            version = self._rollback(model)
        self._mirror(model)
        return self.get(model, version)

    def _mirror(self, model: str) -> None:
        # After the lock: MLflow's alias follows whatever is production now, so a slow or
        # unreachable tracking server never holds the registry's lock.
        production = self.production(model)
        if production is not None:
            tracking.mirror_production(self.get(model, production))

    def _rollback(self, model: str) -> str:
        stages = self._stages(model)
        stack = list(stages.get("stack") or [])
        if not stack:
            raise RegistryError(f"{model} has no production version to roll back")
        if len(stack) == 1:
            raise RegistryError(
                f"{model} {stack[0]} is the first production version: nothing to roll back to"
            )
        current = stack.pop()
        history = [
            *stages.get("history", []),
            {"at": _now(), "action": "rollback", "version": stack[-1], "previous": current},
        ]
        _write_json_atomic(
            self.root / model / STAGES_FILE,
            {"production": stack[-1], "stack": stack, "history": history},
        )
        return str(stack[-1])


# ------------------------------------------------------------------------- fingerprints


#: The lake's digest a model version records (its one home is lake.store).
lake_fingerprint = lake_digest


def dbt_target_path(project_root: Path) -> Path:
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else project_root / "target"


def dbt_fingerprint(target: Path) -> dict[str, Any]:
    """The dbt invocation that built the warehouse (run_results.json), or what is missing."""
    path = target / "run_results.json"
    if not path.is_file():
        return {"invocation_id": None, "note": f"{path} not found"}
    try:
        payload = json.loads(path.read_text())
    except ValueError:
        return {"invocation_id": None, "note": f"{path} is not valid JSON"}
    metadata = payload.get("metadata") or {}
    statuses: dict[str, int] = {}
    for result in payload.get("results") or []:
        status = str(result.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "invocation_id": metadata.get("invocation_id"),
        "generated_at": metadata.get("generated_at"),
        "dbt_version": metadata.get("dbt_version"),
        "command": (payload.get("args") or {}).get("which"),
        "statuses": statuses,
    }


def git_revision(project_root: Path) -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": head, "dirty": bool(dirty)}


def pin_models(registry_root: Path | None = None) -> list[PinnedModel]:
    """Each registered model's serving version: production, else the newest candidate, else
    the newest (the registry's own default), with its stage recorded so the API can say so."""
    registry = Registry(registry_root)
    pinned = []
    for name in registry.models():
        try:
            info = registry.get(name)
        except RegistryError:
            continue  # a model folder with no complete version yet
        meta = info.metadata
        pinned.append(
            PinnedModel(
                model=info.model,
                version=info.version,
                stage=info.stage,
                target=str(meta.get("target", "")),
                horizon=meta.get("horizon"),
                features=list(meta.get("features") or []),
                created_at=info.created_at,
                symbols=trained_symbols(meta),
            )
        )
    return pinned

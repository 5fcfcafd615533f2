"""The feature contract as dbt publishes it: every column of the feature marts with what its
declaration says, read from dbt's own artifact (`target/manifest.json`), never from YAML text.

A feature is declared once, in models/marts/features/_features__models.yml: its name, its
description (the formula in words, `{{ doc() }}` blocks rendered by dbt), and in `meta` its
set (`spot`, `derivatives`, `vendors`), role (key, feature, flag, diagnostic), unit, inputs,
point-in-time rule, warm-up, null policy and whether it is a model input. The trainer's
inputs, the API's checks, the gates and the benchmarks read that declaration through here.

When the manifest is missing (a fresh checkout, before any dbt command), `load_catalog` runs
`dbt parse` once to write it; nothing else is needed for that.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import BtcfsError
from core.settings import dbt_target_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FEATURE_MODELS = ("features_5m", "features_1h")
LABELS_MODEL = "labels_5m"
#: The feature sets, in the order they build on each other.
FEATURE_SETS = ("spot", "derivatives", "vendors")
ROLES = ("key", "feature", "flag", "diagnostic")


class CatalogError(BtcfsError):
    """The feature contract cannot be read (no manifest, or a declaration that breaks it)."""


@dataclass(frozen=True)
class FeatureColumn:
    """One column of a feature mart as its declaration says."""

    name: str
    model: str
    description: str
    role: str
    feature_set: str | None
    unit: str = ""
    inputs: tuple[str, ...] = ()
    point_in_time: str = ""
    nulls: str = ""
    warm_up: str = ""
    model_input: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "feature_set": self.feature_set,
            "role": self.role,
            "unit": self.unit,
            "inputs": list(self.inputs),
            "point_in_time": self.point_in_time,
            "nulls": self.nulls,
            "warm_up": self.warm_up,
            "model_input": self.model_input,
            "description": self.description,
        }


@dataclass(frozen=True)
class Catalog:
    """The feature marts' columns, in declaration order, and the labels' names."""

    models: dict[str, tuple[FeatureColumn, ...]]
    labels: tuple[str, ...]
    manifest: Path
    generated_at: str = ""
    dbt_version: str = ""
    sets: tuple[str, ...] = field(default=FEATURE_SETS)

    def columns(self, model: str = "features_5m") -> tuple[FeatureColumn, ...]:
        try:
            return self.models[model]
        except KeyError:
            raise CatalogError(
                f"{model} is not a feature mart ({', '.join(self.models)})"
            ) from None

    def column(self, name: str, model: str = "features_5m") -> FeatureColumn:
        for column in self.columns(model):
            if column.name == name:
                return column
        raise CatalogError(f"no feature {name!r} in {model}")

    def model_inputs(
        self, feature_sets: tuple[str, ...] | None = None, model: str = "features_5m"
    ) -> list[str]:
        """The model inputs of `feature_sets` (default: every set), in declaration order."""
        wanted = self.check_sets(feature_sets or self.sets)
        return [c.name for c in self.columns(model) if c.model_input and c.feature_set in wanted]

    def set_members(self, feature_set: str, model: str = "features_5m") -> list[str]:
        """Every column of one set (inputs, flags, diagnostics), in declaration order."""
        self.check_sets((feature_set,))
        return [c.name for c in self.columns(model) if c.feature_set == feature_set]

    def version(self) -> str:
        """A digest of every declaration (names, order, sets, roles, units, formulas...):
        equal catalogs, equal versions, wherever they were read from."""
        declared = [c.to_dict() for model in sorted(self.models) for c in self.models[model]]
        text = json.dumps(declared, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_sets(self, feature_sets: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in feature_sets if s not in self.sets]
        if unknown:
            raise CatalogError(
                f"unknown feature set {', '.join(unknown)}: the sets are {', '.join(self.sets)}"
            )
        return feature_sets


def _column(model: str, payload: dict[str, Any]) -> FeatureColumn:
    meta = {**(payload.get("meta") or {}), **((payload.get("config") or {}).get("meta") or {})}
    name = str(payload["name"])
    role = str(meta.get("role") or "")
    if role not in ROLES:
        raise CatalogError(f"{model}.{name}: meta.role must be one of {', '.join(ROLES)}")
    feature_set = meta.get("feature_set")
    if feature_set is not None and feature_set not in FEATURE_SETS:
        raise CatalogError(f"{model}.{name}: meta.feature_set {feature_set!r} is not a set")
    model_input = bool(meta.get("model_input", False))
    if (role == "feature" or model_input) and feature_set is None:
        raise CatalogError(f"{model}.{name}: a feature or model input needs meta.feature_set")
    inputs = meta.get("inputs") or ()
    return FeatureColumn(
        name=name,
        model=model,
        description=" ".join(str(payload.get("description") or "").split()),
        role=role,
        feature_set=feature_set,
        unit=str(meta.get("unit") or ""),
        inputs=tuple(str(i) for i in inputs),
        point_in_time=str(meta.get("point_in_time") or ""),
        nulls=str(meta.get("nulls") or ""),
        warm_up=str(meta.get("warm_up") or ""),
        model_input=model_input,
    )


def from_manifest(path: Path) -> Catalog:
    """The catalog of a dbt manifest file (read once per version of the file)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise CatalogError(f"no dbt manifest at {path}: run `dbt parse` or `dbt build`") from None
    return _read_manifest(path.resolve(), stat.st_mtime_ns, stat.st_size, stat.st_ino)


@functools.lru_cache(maxsize=8)
def _read_manifest(path: Path, *version: int) -> Catalog:
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"no dbt manifest at {path}: run `dbt parse` or `dbt build`") from None
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read the dbt manifest {path}: {exc}") from None
    nodes = manifest.get("nodes") or {}
    project = (manifest.get("metadata") or {}).get("project_name") or "btcfs"
    models: dict[str, tuple[FeatureColumn, ...]] = {}
    for model in FEATURE_MODELS:
        node = nodes.get(f"model.{project}.{model}")
        if node is None:
            raise CatalogError(f"the dbt manifest {path} has no model {model}")
        models[model] = tuple(_column(model, c) for c in (node.get("columns") or {}).values())
    labels_node = nodes.get(f"model.{project}.{LABELS_MODEL}") or {}
    labels = tuple(
        name
        for name in (labels_node.get("columns") or {})
        if name not in ("symbol", "open_time", "available_at")
    )
    metadata = manifest.get("metadata") or {}
    return Catalog(
        models=models,
        labels=labels,
        manifest=path,
        generated_at=str(metadata.get("generated_at") or ""),
        dbt_version=str(metadata.get("dbt_version") or ""),
    )


def load_catalog(target_path: Path | None = None, *, parse_if_missing: bool = True) -> Catalog:
    """The catalog of dbt's manifest in `target_path` (default: dbt's target folder, as dbt
    resolves it); with none there yet, `dbt parse` writes it first."""
    target = target_path or dbt_target_path()
    manifest = target / "manifest.json"
    if not manifest.exists() and parse_if_missing:
        _dbt_parse(target)
    return from_manifest(manifest)


def _dbt_parse(target: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_TARGET_PATH": str(target)}
    env.setdefault("DBT_PROFILES_DIR", str(PROJECT_ROOT / "profiles"))
    try:
        proc = subprocess.run(
            [str(dbt) if dbt.exists() else "dbt", "parse", "--quiet"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"`dbt parse` could not run to write the manifest: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise CatalogError("`dbt parse` failed: " + " / ".join(tail))


# ------------------------------------------------------------------ published and measured

#: The table `btcfs publish` writes into serve.duckdb: the declaration of what it serves.
CATALOG_TABLE = "feature_catalog"
CATALOG_COLUMNS = (
    "model", "position", "name", "feature_set", "role", "unit", "inputs", "point_in_time",
    "nulls", "warm_up", "model_input", "description",
)  # fmt: skip


def catalog_rows(catalog: Catalog) -> list[list[Any]]:
    """The catalog as rows of CATALOG_COLUMNS (inputs as JSON text)."""
    return [
        [
            column.model, position, column.name, column.feature_set, column.role, column.unit,
            json.dumps(list(column.inputs)), column.point_in_time, column.nulls, column.warm_up,
            column.model_input, column.description,
        ]
        for model, columns in catalog.models.items()
        for position, column in enumerate(columns)
    ]  # fmt: skip


def from_rows(rows: list[dict[str, Any]], source: str) -> Catalog:
    """A catalog back from the rows of CATALOG_TABLE (what serve.duckdb holds)."""
    models: dict[str, list[FeatureColumn]] = {}
    for row in sorted(rows, key=lambda r: (r["model"], r["position"])):
        models.setdefault(row["model"], []).append(
            FeatureColumn(
                name=row["name"],
                model=row["model"],
                description=row["description"] or "",
                role=row["role"],
                feature_set=row["feature_set"],
                unit=row["unit"] or "",
                inputs=tuple(json.loads(row["inputs"] or "[]")),
                point_in_time=row["point_in_time"] or "",
                nulls=row["nulls"] or "",
                warm_up=row["warm_up"] or "",
                model_input=bool(row["model_input"]),
            )
        )
    return Catalog(
        models={name: tuple(columns) for name, columns in models.items()},
        labels=(),
        manifest=Path(source),
    )


@dataclass(frozen=True)
class Coverage:
    """How much of a feature a mart holds, for one symbol."""

    symbol: str
    rows: int
    non_null: int
    first_at: Any  # the first bar (open_time) with a value, or None

    @property
    def share(self) -> float:
        return self.non_null / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        first = self.first_at.isoformat() if hasattr(self.first_at, "isoformat") else None
        return {
            "symbol": self.symbol,
            "rows": self.rows,
            "non_null_rows": self.non_null,
            "non_null_share": round(self.share, 6),
            "first_open_time": first,
        }


def coverage_query(relation: str, columns: list[str]) -> str:
    """One query over `relation` giving, per symbol, its rows and for each column the rows
    holding a value and the first bar with one. Names come from the catalog (checked
    identifiers), never from a caller."""
    for name in (relation, *columns):
        if not all(part.isidentifier() for part in name.split(".")):
            raise CatalogError(f"not an identifier: {name!r}")
    measures = ",\n    ".join(
        f'count("{c}") as "{c}__n", min(case when "{c}" is not null then open_time end) '
        f'as "{c}__first"'
        for c in columns
    )
    return (
        f"select symbol, count(*) as __rows,\n    {measures}\n"
        f"from {relation}\ngroup by symbol\norder by symbol"
    )


def coverage(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, list[Coverage]]:
    """The result of `coverage_query` as {column: [Coverage per symbol]}."""
    return {
        c: [Coverage(r["symbol"], int(r["__rows"]), int(r[f"{c}__n"]), r[f"{c}__first"])
            for r in rows]
        for c in columns
    }  # fmt: skip

"""The one YAML reader for config files (config/ingest.yml, config/train.yml, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the pinned environment

from core.errors import ConfigError


def read_yaml(path: Path) -> Any:
    """A YAML file's content, parsed safely (no Python objects); errors as YAML raises them."""
    return yaml.safe_load(path.read_text())


def load_mapping(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """A config file's top-level mapping (an empty file is an empty mapping), or `error`
    (a ConfigError class: each package passes its own) saying what is wrong in one line."""
    try:
        payload = read_yaml(path)
    except FileNotFoundError:
        raise error(f"config file {path} not found") from None
    except yaml.YAMLError as exc:
        raise error(f"config file {path} is not valid YAML: {exc}") from None
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise error(f"config file {path}: expected a mapping at the top level")
    return payload

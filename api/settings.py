"""The API's settings, read from the environment once (tests set the environment first)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


@dataclass(frozen=True)
class ApiSettings:
    """Where the API reads and keeps its data, and its limits.

    BTCFS_DATA_DIR (data)            serve.duckdb, the registry and the paper state live under it
    BTCFS_SERVE_DB                   the published file [<data>/warehouse/serve.duckdb]
    BTCFS_STATE_DB                   paper positions and pipeline jobs (SQLite); job logs in
                                     the `jobs/` folder beside it [<data>/state/paper.sqlite]
    DBT_TARGET_PATH (target)         the last dbt build's run_results.json, for /v1/qa
    BTCFS_ADMIN_TOKEN                bearer token of POST /v1/admin/reload, POST /v1/jobs and a
                                     retraining POST /v1/forecast (unset: admin is off)
    BTCFS_API_HOST / BTCFS_API_PORT  where `btcfs serve` listens [127.0.0.1:8000]
    BTCFS_API_MAX_BODY               request body limit in bytes [1048576]
    BTCFS_API_WATCH_S                how often the stream looks for a new publish [1.0]
    BTCFS_API_KEEPALIVE_S            SSE keep-alive comment interval [15]
    """

    data_dir: Path
    serve_db: Path
    state_db: Path
    registry_root: Path
    target_path: Path
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_instances: int = 1_000
    max_forecast_steps: int = 96
    watch_interval_s: float = 1.0
    keepalive_s: float = 15.0
    primary_model: str = "btcusdt_5m"
    #: The environment pipeline workers start with (the one the settings were read from,
    #: less the admin token): a job runs where this API reads and writes.
    worker_env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        data = Path(env.get("BTCFS_DATA_DIR") or "data").resolve()
        return cls(
            data_dir=data,
            serve_db=Path(env.get("BTCFS_SERVE_DB") or data / "warehouse" / "serve.duckdb"),
            state_db=Path(env.get("BTCFS_STATE_DB") or data / "state" / "paper.sqlite"),
            registry_root=data / "registry",
            target_path=Path(env.get("DBT_TARGET_PATH") or "target").resolve(),
            admin_token=env.get("BTCFS_ADMIN_TOKEN") or None,
            host=env.get("BTCFS_API_HOST") or "127.0.0.1",
            port=_int(env, "BTCFS_API_PORT", 8000),
            max_body_bytes=_int(env, "BTCFS_API_MAX_BODY", 1_048_576),
            watch_interval_s=_float(env, "BTCFS_API_WATCH_S", 1.0),
            keepalive_s=_float(env, "BTCFS_API_KEEPALIVE_S", 15.0),
            primary_model=env.get("BTCFS_MODEL") or "btcusdt_5m",
            worker_env={k: v for k, v in env.items() if k != "BTCFS_ADMIN_TOKEN"},
        )

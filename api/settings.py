"""The API's settings, read from the environment once (tests set the environment first)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import DataPaths, dbt_target_path
from ml.config import DEFAULT_CONFIG, BacktestConfig, load_config


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


#: The shortest BTCFS_ADMIN_TOKEN the API starts with: a guessable token is no lock.
MIN_ADMIN_TOKEN_CHARS = 16


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`a.example, 10.0.0.5`: host names without ports, lowercased."""
    raw = env.get(name) or ""
    hosts = tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
    for host in hosts:
        if "/" in host or " " in host or host.count(":") == 1:
            raise ValueError(f"{name}: {host[:80]!r} is not a host name (no scheme, no port)")
    return hosts


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={raw!r} is not a boolean (1/0, true/false)")


#: A job step's time limit when BTCFS_JOB_STEP_TIMEOUT_S does not set it: generous bounds on
#: the step's commands (a years-long backfill, a full refresh), there to end a hung one.
STEP_TIMEOUTS_S: dict[str, float] = {
    "ingest": 6 * 3600.0,
    "build": 2 * 3600.0,
    "qa": 1800.0,
    "train": 2 * 3600.0,
    "promote": 600.0,
    "publish": 1800.0,
}


def _step_timeouts(env: Mapping[str, str], name: str) -> dict[str, float]:
    """`3600` (every step) or `ingest=7200,build=900` (those steps, the rest default)."""
    raw = (env.get(name) or "").strip()
    limits = dict(STEP_TIMEOUTS_S)
    if not raw:
        return limits
    pairs = [item.partition("=") for item in raw.split(",")]
    if len(pairs) == 1 and not pairs[0][1]:
        pairs = [(step, "=", pairs[0][0]) for step in limits]
    for step, separator, value in pairs:
        step = step.strip()
        if not separator or step not in limits:
            raise ValueError(
                f"{name}={raw!r}: expected seconds or step=seconds pairs, steps "
                + ", ".join(limits)
            )
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ValueError(f"{name}={raw!r}: a limit must be a number of seconds > 0")
        limits[step] = seconds
    return limits


def paper_costs(env: Mapping[str, str]) -> tuple[float, float]:
    """Taker fee and slippage per side, in bps, of a paper fill: BTCFS_PAPER_FEE_BPS and
    BTCFS_PAPER_SLIPPAGE_BPS, else the backtest's (`backtest:` of the trainer's config,
    config/train.yml or BTCFS_TRAIN_CONFIG, read by ml.config as `btcfs train` reads it;
    its defaults when there is no such file): one home for what a trade costs."""
    path = Path(env.get("BTCFS_TRAIN_CONFIG") or DEFAULT_CONFIG)
    if path.exists() or env.get("BTCFS_TRAIN_CONFIG"):
        backtest = load_config(path).backtest  # a broken file is a ConfigError, said once
    else:
        backtest = BacktestConfig()  # no config/train.yml here: the trainer's defaults
    fee = _float(env, "BTCFS_PAPER_FEE_BPS", backtest.taker_fee_bps)
    slippage = _float(env, "BTCFS_PAPER_SLIPPAGE_BPS", backtest.slippage_bps)
    for name, value in (("BTCFS_PAPER_FEE_BPS", fee), ("BTCFS_PAPER_SLIPPAGE_BPS", slippage)):
        if not 0 <= value <= 1000:
            raise ValueError(f"{name}={value:g}: a cost per side in bps, 0-1000")
    return fee, slippage


@dataclass(frozen=True)
class ApiSettings:
    """Where the API reads and keeps its data, and its limits.

    BTCFS_DATA_DIR (data)            serve.duckdb, the registry and the paper state live under it
    BTCFS_SERVE_DB                   the published file [<data>/warehouse/serve.duckdb]
    BTCFS_STATE_DB                   paper positions and pipeline jobs (SQLite); job logs in
                                     the `jobs/` folder beside it [<data>/state/paper.sqlite]
    DBT_TARGET_PATH (target)         the last dbt build's run_results.json, for /v1/qa
    BTCFS_ADMIN_TOKEN                bearer token of POST /v1/admin/reload, every /v1/jobs route
                                     (start, list, read, cancel) and a retraining POST
                                     /v1/forecast (unset: admin is off, all of them 401)
    BTCFS_API_HOST / BTCFS_API_PORT  where `btcfs serve` listens [127.0.0.1:8000]; bound
                                     beyond loopback, paper writes need the admin token
    BTCFS_API_ALLOWED_HOSTS          comma-separated extra names the `Host` header may carry,
                                     no ports (DNS rebinding) [none: only 127.0.0.1, ::1,
                                     localhost and BTCFS_API_HOST are served]
    BTCFS_API_MAX_OPEN_POSITIONS     open paper positions at a time; one more is 409 [100]
    BTCFS_API_SSE_MAX_CLIENTS        open /v1/stream connections in all; one more is 503 [100]
    BTCFS_API_SSE_MAX_PER_CLIENT     open /v1/stream connections per client address; one
                                     more is 429 [8]
    BTCFS_API_SSE_MAX_SECONDS        a stream's lifetime: then it ends and EventSource
                                     reconnects [3600]
    (BTCFS_ADMIN_TOKEN and BTCFS_API_CURSOR_KEY, when set, must be at least 16 characters:
    the API refuses to start)
    BTCFS_API_MAX_BODY               request body limit in bytes [1048576]
    BTCFS_LIVE_STATE                 the file `btcfs live` writes every turn, read per request
                                     by /v1/live, /health and paper fills [<data>/live/state.json]
    BTCFS_PAPER_FEE_BPS              taker fee per side of a paper fill, in bps [the backtest's
                                     `taker_fee_bps` in config/train.yml (BTCFS_TRAIN_CONFIG),
                                     else ml.config's default, 5]
    BTCFS_PAPER_SLIPPAGE_BPS         slippage per side of a paper fill, in bps [likewise
                                     `slippage_bps`, 1]
    BTCFS_PAPER_MAX_QUOTE_AGE_S      a live quote older than this (exchange seconds) is stale:
                                     paper fills refuse it unless `accept_stale` [120]
    BTCFS_PAPER_MAX_CLOSE_AGE_S      likewise the newest published 5m close, the price when
                                     there is no fresher quote (its age from the bar's close) [600]
    BTCFS_API_CURSOR_KEY             the key page cursors are signed with; set the same on
                                     every host behind one address [a random key made once
                                     in cursor.key beside BTCFS_STATE_DB]
    BTCFS_API_WATCH_S                how often the stream looks for a new publish [1.0]
    BTCFS_API_KEEPALIVE_S            SSE keep-alive comment interval [15]
    BTCFS_JOB_STEP_TIMEOUT_S         a job step's time limit in seconds: one number for every
                                     step, or `ingest=7200,build=900` for some [ingest 21600,
                                     build 7200, qa 1800, train 7200, promote 600, publish
                                     1800]; past it the step's command gets SIGTERM, then
                                     SIGKILL after the grace, and the job fails naming both
    BTCFS_JOB_KILL_GRACE_S           SIGTERM -> SIGKILL grace of a timed-out or cancelled
                                     step's command [10]
    BTCFS_JOB_RETAIN_COUNT           finished jobs kept (rows and logs) [200]
    BTCFS_JOB_RETAIN_BYTES           bytes of finished jobs' logs kept [209715200 = 200 MiB];
                                     older finished jobs beyond either bound are deleted, row
                                     and log, when a job starts (an active one never is)
    BTCFS_API_ALLOW_BASE_URL         1: ingest jobs may set `base_url` / `archive` to a
                                     loopback host (127.0.0.0/8, ::1, localhost: the replay
                                     server); the job's vendor keys are then replaced by a
                                     placeholder, never sent there [off: both refused]
    """

    data_dir: Path
    serve_db: Path
    state_db: Path
    registry_root: Path
    target_path: Path
    admin_token: str | None = None
    cursor_key: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    max_instances: int = 1_000
    max_forecast_steps: int = 96
    watch_interval_s: float = 1.0
    keepalive_s: float = 15.0
    allowed_hosts: tuple[str, ...] = ()
    max_open_positions: int = 100
    sse_max_clients: int = 100
    sse_max_per_client: int = 8
    sse_max_seconds: float = 3600.0
    primary_model: str = "btcusdt_5m"
    job_step_timeouts_s: dict[str, float] = field(
        default_factory=lambda: dict(STEP_TIMEOUTS_S), compare=False
    )
    job_kill_grace_s: float = 10.0
    job_retain_count: int = 200
    job_retain_bytes: int = 200 * 1024 * 1024
    allow_base_url: bool = False
    #: what `btcfs live` last saw (pipeline/live_state.py); None: no live loop is looked for
    live_state: Path | None = None
    paper_fee_bps: float = BacktestConfig.taker_fee_bps
    paper_slippage_bps: float = BacktestConfig.slippage_bps
    paper_max_quote_age_s: float = 120.0
    paper_max_close_age_s: float = 600.0
    #: The environment pipeline workers start with (the one the settings were read from,
    #: less the admin token): a job runs where this API reads and writes.
    worker_env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Checked on every construction, so neither `btcfs serve` nor a test app starts
        # with a short token (the message never repeats the token).
        if self.admin_token is not None and len(self.admin_token) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"BTCFS_ADMIN_TOKEN is {len(self.admin_token)} characters: use at least "
                f"{MIN_ADMIN_TOKEN_CHARS} (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`), or unset it to turn admin off"
            )
        if self.cursor_key is not None and len(self.cursor_key) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"BTCFS_API_CURSOR_KEY is {len(self.cursor_key)} characters: use at least "
                f"{MIN_ADMIN_TOKEN_CHARS}, or unset it (a key is then made in cursor.key)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        paths = DataPaths.from_env(env)
        data = paths.root
        fee_bps, slippage_bps = paper_costs(env)
        return cls(
            data_dir=data,
            serve_db=Path(env.get("BTCFS_SERVE_DB") or paths.serve_db),
            state_db=Path(env.get("BTCFS_STATE_DB") or data / "state" / "paper.sqlite"),
            registry_root=paths.registry,
            target_path=dbt_target_path(env),
            admin_token=env.get("BTCFS_ADMIN_TOKEN") or None,
            cursor_key=env.get("BTCFS_API_CURSOR_KEY") or None,
            host=env.get("BTCFS_API_HOST") or "127.0.0.1",
            port=_int(env, "BTCFS_API_PORT", 8000),
            max_body_bytes=_int(env, "BTCFS_API_MAX_BODY", 1_048_576),
            watch_interval_s=_float(env, "BTCFS_API_WATCH_S", 1.0),
            keepalive_s=_float(env, "BTCFS_API_KEEPALIVE_S", 15.0),
            allowed_hosts=_hosts(env, "BTCFS_API_ALLOWED_HOSTS"),
            max_open_positions=_int(env, "BTCFS_API_MAX_OPEN_POSITIONS", 100),
            sse_max_clients=_int(env, "BTCFS_API_SSE_MAX_CLIENTS", 100),
            sse_max_per_client=_int(env, "BTCFS_API_SSE_MAX_PER_CLIENT", 8),
            sse_max_seconds=_float(env, "BTCFS_API_SSE_MAX_SECONDS", 3600.0),
            primary_model=env.get("BTCFS_MODEL") or "btcusdt_5m",
            job_step_timeouts_s=_step_timeouts(env, "BTCFS_JOB_STEP_TIMEOUT_S"),
            job_kill_grace_s=_float(env, "BTCFS_JOB_KILL_GRACE_S", 10.0),
            job_retain_count=_int(env, "BTCFS_JOB_RETAIN_COUNT", 200),
            job_retain_bytes=_int(env, "BTCFS_JOB_RETAIN_BYTES", 200 * 1024 * 1024),
            allow_base_url=_flag(env, "BTCFS_API_ALLOW_BASE_URL"),
            live_state=Path(env.get("BTCFS_LIVE_STATE") or paths.live_state),
            paper_fee_bps=fee_bps,
            paper_slippage_bps=slippage_bps,
            paper_max_quote_age_s=_float(env, "BTCFS_PAPER_MAX_QUOTE_AGE_S", 120.0),
            paper_max_close_age_s=_float(env, "BTCFS_PAPER_MAX_CLOSE_AGE_S", 600.0),
            worker_env={
                k: v
                for k, v in env.items()
                if k not in ("BTCFS_ADMIN_TOKEN", "BTCFS_API_CURSOR_KEY")
            },
        )

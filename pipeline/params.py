"""The parameters of each pipeline step: typed, range-checked, decoded strictly.

The jobs API takes them as JSON (api.schemas embeds them in its job bodies), `btcfs run`
from options, the demo in code. dbt vars are SQL text, so only the few listed in BuildVars
are ever passed to `dbt build --vars`; the jobs worker checks them again before it runs.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Literal

import msgspec

from core.symbols import SYMBOL_PATTERN
from warehouse.plan import GATE_WINDOW_DAYS

#: Registry names and dbt var names: letters, digits and a few separators, nothing a shell or
#: an option parser could read as more than one word.
_Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
JobHorizon = Literal["5m", "1h", "4h", "1d"]

#: A warehouse symbol (core.symbols: ASCII capitals and digits, at most 20).
_Symbol = Annotated[str, msgspec.Meta(pattern=SYMBOL_PATTERN)]
_DAY_SECONDS = 86_400


class BuildVars(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The dbt vars a build job may set; one left out keeps its dbt_project.yml value. dbt
    vars are SQL text, so only these, typed and range-checked, are taken: `symbols` (1-20
    distinct symbols matching ^[A-Z0-9]{1,20}$), `gate_window_days` (0 = gates check all
    history, or 2-3650 = the last N UTC days), `disable_incremental` (bool),
    `features_window_seconds` (86400-31536000, whole days), `labels_atr_bars` (2-500),
    `labels_barrier_atr_multiple` (0.1-10), `labels_vertical_barrier_bars` (1-2016).
    Anything else is refused: `lake_root` (the lake is the server's) and every var that
    loosens a QA gate (`gap_ratio_max`, `zero_volume_ratio_max`, `imputed_share_max`,
    `allow_known_halts`, `known_exchange_halts`, `quarantine_error_rows`,
    `optional_feature_coverage_min`, `freshness_warn_hours`, `forbid_synthetic_inputs`) or
    moves a point-in-time lag (`*_available_lag_seconds`)."""

    symbols: (
        Annotated[
            list[_Symbol],
            msgspec.Meta(
                min_length=1,
                max_length=20,
                description="Symbols to build: 1-20 distinct, each ^[A-Z0-9]{1,20}$ (BTCUSDT)",
            ),
        ]
        | None
    ) = None
    gate_window_days: (
        Annotated[
            int,
            msgspec.Meta(
                ge=0,
                le=3650,
                description="0: the gates check all history; 2-3650: only the last N UTC "
                "days (2 for the daily incremental update: a day of look-back plus the new one)",
            ),
        ]
        | None
    ) = None
    disable_incremental: (
        Annotated[bool, msgspec.Meta(description="true: every incremental model in full")] | None
    ) = None
    features_window_seconds: (
        Annotated[
            int,
            msgspec.Meta(
                ge=_DAY_SECONDS,
                le=365 * _DAY_SECONDS,
                description="Feature z-score window: 86400-31536000 s, whole days",
            ),
        ]
        | None
    ) = None
    labels_atr_bars: (
        Annotated[int, msgspec.Meta(ge=2, le=500, description="Label ATR length: 2-500 bars")]
        | None
    ) = None
    labels_barrier_atr_multiple: (
        Annotated[
            float,
            msgspec.Meta(ge=0.1, le=10.0, description="Barrier distance: 0.1-10 ATRs"),
        ]
        | None
    ) = None
    labels_vertical_barrier_bars: (
        Annotated[int, msgspec.Meta(ge=1, le=2016, description="Vertical barrier: 1-2016 bars")]
        | None
    ) = None

    def __post_init__(self) -> None:
        # (msgspec reports a ValueError raised here as a validation error at this object)
        if self.symbols is not None and len(set(self.symbols)) != len(self.symbols):
            raise ValueError("`symbols` lists a symbol twice")
        if self.gate_window_days == 1:
            # The daily update rebuilds a day of look-back plus the new day: one day would
            # leave rebuilt rows unchecked.
            raise ValueError("`gate_window_days` must be 0 (all history) or 2 or more")
        if self.features_window_seconds is not None and self.features_window_seconds % _DAY_SECONDS:
            raise ValueError("`features_window_seconds` must be whole days (a multiple of 86400)")

    def dbt_vars(self) -> str | None:
        """The vars set, as the JSON of `dbt build --vars` (None when none is set)."""
        chosen = msgspec.to_builtins(self)
        return msgspec.json.encode(chosen).decode() if chosen else None


_HOST_RULE = (
    "refused unless the server sets BTCFS_API_ALLOW_BASE_URL=1, and then only a loopback "
    "host (127.0.0.0/8, ::1, localhost: the replay server)"
)


class IngestParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`btcfs ingest all`: `config` is a YAML file inside the project or the data folder;
    `base_url` one http(s) host for every vendor's REST and `archive` an http(s) archive URL
    are refused unless the server sets BTCFS_API_ALLOW_BASE_URL=1, and then must be loopback
    (the replay server), which gets a placeholder, never the real vendor keys; `archive:
    none` (REST only) is always allowed."""

    config: _Text | None = None
    base_url: (
        Annotated[_Text, msgspec.Meta(description="Every vendor's REST host: " + _HOST_RULE)] | None
    ) = None
    archive: (
        Annotated[_Text, msgspec.Meta(description="Archive URL or `none`: " + _HOST_RULE)] | None
    ) = None


class BuildParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`dbt build` then `btcfs qa`: `vars` are the few dbt vars a job may set (BuildVars
    lists them, with their ranges), `unit_tests: false` skips dbt's unit tests (data tests,
    the gates, always run)."""

    vars: Annotated[
        BuildVars, msgspec.Meta(description=inspect.cleandoc(BuildVars.__doc__ or ""))
    ] = msgspec.field(default_factory=BuildVars)
    unit_tests: bool = True
    full_refresh: bool = False


class TrainParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`btcfs train`, then `btcfs models promote` when `promote` and every gate passed (a
    version that fails a gate fails the job and production stays as it was)."""

    config: _Text | None = None
    target: Literal["fwd_ret", "tb_label"] | None = None
    horizon: JobHorizon | None = None
    #: One model per symbol (default: the trainer config's symbol).
    symbol: _Symbol | None = None
    model: _Name | None = None
    promote: bool = True


class PublishParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`btcfs publish` takes no parameters: it publishes the last dbt build if its gates passed."""


class AllParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Each stage's parameters: ingest -> build (+ QA) -> train (+ promote) -> publish."""

    ingest: IngestParams = msgspec.field(default_factory=IngestParams)
    build: BuildParams = msgspec.field(default_factory=BuildParams)
    train: TrainParams = msgspec.field(default_factory=TrainParams)


#: The update's build checks the gates of the rebuilt days (warehouse.plan.GATE_WINDOW_DAYS).
UPDATE_GATE_WINDOW_DAYS = GATE_WINDOW_DAYS


class UpdateParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`btcfs update`: land what is new (`ingest` as for `btcfs ingest all`), rebuild
    incrementally without dbt's unit tests (CI runs them), check the gates of the rebuilt days
    (`gate_window_days` UPDATE_GATE_WINDOW_DAYS), publish. Nothing about the build is a
    parameter: an update is the same build every time."""

    ingest: IngestParams = msgspec.field(default_factory=IngestParams)

    def build(self) -> BuildParams:
        return BuildParams(
            vars=BuildVars(gate_window_days=UPDATE_GATE_WINDOW_DAYS), unit_tests=False
        )


#: Each pipeline's params struct (`forecast` takes the API's ForecastIn, whose `train` is
#: TrainParams).
PARAMS: dict[str, type[msgspec.Struct]] = {
    "ingest": IngestParams,
    "build": BuildParams,
    "publish": PublishParams,
    "train": TrainParams,
    "all": AllParams,
    "update": UpdateParams,
}

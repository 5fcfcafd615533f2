"""Typed request and response bodies (msgspec structs: they are the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from pipeline.params import (
    AllParams,
    BuildParams,
    IngestParams,
    JobHorizon,
    PublishParams,
    TrainParams,
)

Number = float | None
FeatureValue = float | bool | None


class Bar(msgspec.Struct, kw_only=True):
    open_time: datetime
    available_at: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trade_count: int
    taker_buy_base_volume: float
    imputed_minutes: int
    is_imputed: bool


class BarsOut(msgspec.Struct, kw_only=True):
    symbol: str
    interval: str
    count: int
    bars: list[Bar]
    #: the next page: its cursor, and the link that asks for it (null on the last page)
    next_cursor: str | None = None
    next: str | None = None


class FeatureRow(msgspec.Struct, kw_only=True):
    open_time: datetime
    available_at: datetime
    values: dict[str, Any]


class FeaturesOut(msgspec.Struct, kw_only=True):
    symbol: str
    interval: str
    count: int
    rows: list[FeatureRow]
    #: the next page: its cursor, and the link that asks for it (null on the last page)
    next_cursor: str | None = None
    next: str | None = None


class CatalogFeature(msgspec.Struct, kw_only=True):
    """One column of a feature mart, as declared, and its coverage per symbol."""

    name: str
    model: str
    feature_set: str | None
    role: str
    unit: str
    inputs: list[str]
    point_in_time: str
    nulls: str
    warm_up: str
    model_input: bool
    description: str
    coverage: list[dict[str, Any]]


class CatalogOut(msgspec.Struct, kw_only=True):
    count: int
    features: list[CatalogFeature]


class LatestFeaturesOut(msgspec.Struct, kw_only=True):
    symbol: str
    interval: str
    open_time: datetime
    available_at: datetime
    age_seconds: float
    values: dict[str, Any]


class Quantiles(msgspec.Struct, kw_only=True):
    p10: float
    p50: float
    p90: float


class BarrierProbabilities(msgspec.Struct, kw_only=True):
    """P(lower barrier first), P(neither before t1), P(upper barrier first)."""

    down: float
    flat: float
    up: float
    model: str
    model_version: str
    model_stage: str


class PredictionOut(msgspec.Struct, kw_only=True):
    symbol: str
    horizon: str
    model: str
    model_version: str
    model_stage: str
    as_of: datetime
    available_at: datetime
    target_at: datetime
    feature_age_seconds: float
    close: float
    predicted_return: float
    predicted_price: float
    signal: float
    quantiles: Quantiles | None
    price_quantiles: Quantiles | None
    barrier_probabilities: BarrierProbabilities | None


class ForecastPoint(msgspec.Struct, kw_only=True):
    step: int
    at: datetime
    expected_return: float
    price: float
    lower_price: float | None
    upper_price: float | None


class ForecastOut(msgspec.Struct, kw_only=True):
    symbol: str
    horizon: str
    steps: int
    model: str
    model_version: str
    model_stage: str
    as_of: datetime
    available_at: datetime
    close: float
    method: str
    path: list[ForecastPoint]


class PredictIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Feature rows to score: each instance has exactly the model's features (GET /v1/model
    lists them); numbers, booleans for `is_*` flags, or null for a missing value."""

    instances: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]
    horizon: str | None = None
    #: the symbol the rows are of: scored by a model trained on it (default: the primary model)
    symbol: str | None = None


class AsOfIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Times to answer point in time (RFC 3339; no offset: UTC; in any order, repeats
    allowed), for one symbol, from the `interval` mart; `features` (names GET /v1/catalog
    lists) or `feature_set` (spot, derivatives, vendors) choose the columns, by default
    every column of the mart."""

    times: list[str]
    symbol: str = "BTCUSDT"
    interval: str = "5m"
    features: list[str] | None = None
    feature_set: str | None = None


class AsOfRow(msgspec.Struct, kw_only=True):
    """One time's answer: the row with the latest available_at at or before it (all null
    when there is none yet), then each chosen feature by its mart name."""

    event_time: datetime
    feature_open_time: datetime | None
    feature_available_at: datetime | None
    feature_age_seconds: float | None


class AsOfOut(msgspec.Struct, kw_only=True):
    """One row per time, in the order given."""

    rows: list[AsOfRow]


class InstancePrediction(msgspec.Struct, kw_only=True):
    predicted_return: float
    signal: float
    quantiles: Quantiles | None


class PredictOut(msgspec.Struct, kw_only=True):
    model: str
    model_version: str
    model_stage: str
    horizon: str
    predictions: list[InstancePrediction]


class ModelOut(msgspec.Struct, kw_only=True):
    model: str
    version: str
    stage: str
    target: str
    horizon: str | None
    #: the symbols it was trained on (and serves)
    symbols: list[str]
    created_at: str | None
    features: list[str]
    training_window: dict[str, Any]
    metrics: dict[str, Any]
    gates: dict[str, Any]
    backtest: dict[str, Any]
    feature_importance: dict[str, float]


class ModelOverview(msgspec.Struct, kw_only=True):
    model: str
    version: str
    stage: str
    target: str | None
    horizon: str | None
    created_at: str | None
    pinned: bool
    metrics: dict[str, Any]


class ModelsOut(msgspec.Struct, kw_only=True):
    models: list[ModelOverview]


class Gate(msgspec.Struct, kw_only=True):
    name: str
    kind: str | None
    status: str
    failures: int | None
    model: str | None
    message: str | None


class GateRun(msgspec.Struct, kw_only=True):
    invocation_id: str | None
    built_at: str | None
    failed: bool
    counts: dict[str, int]
    gates: list[Gate]


class QAOut(msgspec.Struct, kw_only=True):
    """`published`: the gates of the build being served; `last_build`: the newest dbt run
    (when it failed, it was not published: the API keeps serving the older one)."""

    published: GateRun
    last_build: GateRun | None


class Freshness(msgspec.Struct, kw_only=True):
    """The newest published 5m bar of a symbol and its age: on the exchange's clock when a
    live loop has run here (`clock: exchange`; a 10x replay runs ahead of the wall), else
    on the wall clock."""

    symbol: str
    last_bar_at: datetime | None
    age_seconds: float | None
    clock: str = "wall"


class HealthOut(msgspec.Struct, kw_only=True):
    status: str  # ok | degraded | unavailable
    reasons: list[str]
    published_at: datetime | None
    built_at: datetime | None
    dbt_invocation_id: str | None
    model: str | None
    model_version: str | None
    model_stage: str | None
    freshness: list[Freshness]


class OpenPositionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`amount_usd` of notional, long or short (short on the perpetual only), filled at the
    live price of that market plus slippage, less the taker fee. A stale price is refused
    (409) unless `accept_stale`. A repeated `client_order_id` returns the position it opened
    (200) instead of opening a second one; with another order behind it, 409."""

    amount_usd: Annotated[float, msgspec.Meta(ge=0.01, le=1e9)]
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "BTCUSDT"
    market: Literal["spot", "perp"] = "spot"
    side: Literal["long", "short"] = "long"
    accept_stale: bool = False
    client_order_id: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.:-]+$")]
        | None
    ) = None


class ClosePositionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Optional body of a close: `accept_stale` fills at a stale price (with a warning)."""

    accept_stale: bool = False


class Position(msgspec.Struct, kw_only=True):
    id: int
    symbol: str
    #: spot or perp; long or short (short on perp only)
    market: str
    side: str
    status: str  # open | closed
    #: notional at the entry fill, and the units it bought (or sold short)
    amount_usd: float
    units: float
    #: the fill: `entry_reference_price` (the price from `entry_price_source`, true at
    #: `entry_price_at` on the exchange's clock, `entry_price_age_seconds` old at the fill)
    #: moved against the trader by `slippage_bps`
    entry_price: float
    entry_reference_price: float
    entry_price_source: str
    entry_price_at: datetime
    entry_price_age_seconds: float
    fee_bps: float
    slippage_bps: float
    entry_fee_usd: float
    #: the currency of every amount, price and P&L here
    currency: str
    opened_at: datetime
    closed_at: datetime | None
    exit_price: float | None
    exit_reference_price: float | None
    exit_price_source: str | None
    exit_price_at: datetime | None
    exit_fee_usd: float | None
    #: open: the live price it is marked at (its source, exchange time and age);
    #: closed: the exit's reference price
    mark_price: float
    mark_source: str
    mark_at: datetime | None
    mark_age_seconds: float | None
    mark_is_stale: bool
    #: amount_usd + pnl_usd
    value_usd: float
    #: closed: realised (fees and slippage included); open: unrealised at the mark, less the
    #: entry fee paid
    pnl_usd: float
    pnl_pct: float
    realised_pnl_usd: float | None
    unrealised_pnl_usd: float | None
    #: open: what closing now at the mark would realise (exit slippage and fee included)
    pnl_if_closed_usd: float | None
    fees_usd: float
    client_order_id: str | None
    #: fills accepted at a stale price (`accept_stale`), and marks that are stale
    warnings: list[str]


class Mark(msgspec.Struct, kw_only=True):
    """The price open positions of a symbol and market are marked at."""

    symbol: str
    market: str
    price: float
    source: str
    label: str
    at: datetime
    age_seconds: float
    is_stale: bool


class PositionsOut(msgspec.Struct, kw_only=True):
    positions: list[Position]
    #: open positions: notional, equity (notional + unrealised), P&L
    invested_usd: float
    value_usd: float
    pnl_usd: float
    realised_pnl_usd: float
    unrealised_pnl_usd: float
    fees_usd: float
    marked_at: datetime | None
    marks: list[Mark]
    #: Every position, open ones, and where this page sits (next_offset null: the last page).
    total: int
    open_count: int
    limit: int
    offset: int
    next_offset: int | None


class LiveQuote(msgspec.Struct, kw_only=True):
    """The still-open 1m bar's latest close on one market: live, never landed."""

    market: str
    price: float
    open_time: datetime
    at: datetime
    age_seconds: float
    is_stale: bool
    label: str


class LiveLoop(msgspec.Struct, kw_only=True):
    """The live loop as its state file says: `problem` is why it is behind or stopped."""

    pid: int
    status: str
    problem: str | None
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    exchange_now: datetime
    clock_rate: float
    stale_after_s: float
    last_publish_at: datetime | None
    reasons: list[str]
    stale: dict[str, str]


class PublishedClose(msgspec.Struct, kw_only=True):
    """The newest published 5m spot bar: its close and its age (the freshness)."""

    open_time: datetime
    available_at: datetime
    close: float
    age_seconds: float


class LiveOut(msgspec.Struct, kw_only=True):
    """A symbol's price now. `status`: live (the loop keeps up and the price is fresh),
    behind (the loop has a problem, or the price is stale), no-live-loop (no state file:
    the newest published close, labelled so)."""

    symbol: str
    status: str
    price: float
    price_source: str
    price_label: str
    price_market: str
    price_at: datetime
    price_age_seconds: float
    is_stale: bool
    quotes: list[LiveQuote]
    newest_bar: dict[str, datetime]
    published: PublishedClose | None
    freshness_seconds: float | None
    clock: str
    now: datetime
    loop: LiveLoop | None
    warnings: list[str]


class ReloadOut(msgspec.Struct, kw_only=True):
    generation: int
    published_at: datetime | None
    dbt_invocation_id: str | None


# ------------------------------------------------------------------------ pipeline jobs


class _JobIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="pipeline"):
    pass


class IngestJobIn(_JobIn, tag="ingest"):
    """Land every configured dataset in the lake."""

    params: IngestParams = msgspec.field(default_factory=IngestParams)


class BuildJobIn(_JobIn, tag="build"):
    """Build the warehouse with dbt and report its QA gates."""

    params: BuildParams = msgspec.field(default_factory=BuildParams)


class PublishJobIn(_JobIn, tag="publish"):
    """Publish the last build to the API (refused when a gate failed)."""

    params: PublishParams = msgspec.field(default_factory=PublishParams)


class TrainJobIn(_JobIn, tag="train"):
    """Train, register and (when every gate passes) promote a model."""

    params: TrainParams = msgspec.field(default_factory=TrainParams)


class AllJobIn(_JobIn, tag="all"):
    """The whole pipeline: ingest, build, QA, train, promote, publish."""

    params: AllParams = msgspec.field(default_factory=AllParams)


JobIn = IngestJobIn | BuildJobIn | PublishJobIn | TrainJobIn | AllJobIn


class ForecastIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A forecast path. Without `retrain` it is answered at once from the served model;
    with `retrain: true` (admin token) a job trains, gates, promotes, publishes and then
    predicts (`train` holds the trainer's parameters; the horizon is this one)."""

    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "BTCUSDT"
    horizon: JobHorizon | None = None
    steps: Annotated[int, msgspec.Meta(ge=1, le=96)] = 12
    retrain: bool = False
    train: TrainParams | None = None


class JobStep(msgspec.Struct, kw_only=True):
    name: str
    state: str  # pending | running | succeeded | failed | skipped | cancelled
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    exit_code: int | None = None


class FailedGate(msgspec.Struct, kw_only=True):
    """The gate that stopped a job: `qa` (a dbt test), `promotion` (a model gate) or
    `publish` (publish refused the build)."""

    kind: str
    names: list[str]
    message: str


class JobOut(msgspec.Struct, kw_only=True):
    """A pipeline run. `state`: queued, running, succeeded, failed or cancelled; `step` the
    step in progress (or the one that failed); `log` the last lines of its log, secrets
    redacted; `result` what it produced (rows landed, gate results, model version,
    forecast); `cancel_requested_at` when DELETE /v1/jobs/{id} asked it to stop."""

    id: int
    pipeline: str
    state: str
    step: str | None
    steps: list[JobStep]
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    pid: int | None
    exit_code: int | None
    error: str | None
    failed_gate: FailedGate | None
    result: dict[str, Any]
    log: list[str]
    cancel_requested_at: datetime | None = None


class JobsOut(msgspec.Struct, kw_only=True):
    """The newest jobs first; `active` is the queued or running one, if any."""

    jobs: list[JobOut]
    active: int | None

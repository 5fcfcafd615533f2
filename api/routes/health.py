"""GET /health: is a warehouse published, when was it built, which model, how fresh."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from api.errors import ApiError
from api.live import Clock
from api.schemas import Freshness, HealthOut
from api.services import ServicesDep, latest_bar

#: What /health answers before the first publish (its 503 example).
_UNAVAILABLE = Example(
    summary="Nothing published yet",
    value={
        "status": "unavailable",
        "reasons": ["nothing published yet: run `btcfs publish`"],
        "published_at": None, "built_at": None, "dbt_invocation_id": None,
        "model": None, "model_version": None, "model_stage": None, "freshness": [],
    },
)  # fmt: skip
#: Data older than this is reported as stale (a reason, not a failure).
STALE_AFTER_S = 2 * 3600


@get(
    "/health",
    operation_id="getHealth",
    summary="Service health",
    tags=["health"],
    sync_to_thread=True,
    responses={503: ResponseSpec(HealthOut, description="Nothing published yet",
                                 generate_examples=False, examples=[_UNAVAILABLE])},
)  # fmt: skip
def health(services: ServicesDep) -> Response[HealthOut]:
    """Service status: `ok`, `degraded` (serving, with reasons: a model that is not in
    production, stale data, a served file damaged on disk, a live loop that is behind or
    stopped: `live: ...`) or `unavailable` (503: nothing published yet). Also the
    warehouse's build time, dbt invocation, pinned model and the age of the newest bar, on
    the exchange's clock when `btcfs live` has run here (`clock: exchange`), else the wall's."""
    try:
        with services.db.reader() as reader:
            info = reader.generation.info
            # ages on the exchange's clock when a live loop has run here (a 10x replay
            # runs ahead of the wall clock), else on the wall clock
            clock = Clock.read(services.settings)
            freshness = []
            reasons = []
            for symbol in reader.generation.symbols:
                bar = latest_bar(reader, symbol)
                at = bar["available_at"] if bar else None
                age = clock.age(at) if at else None
                freshness.append(
                    Freshness(symbol=symbol, last_bar_at=at, age_seconds=age, clock=clock.name)
                )
                if age is not None and age > STALE_AFTER_S:
                    reasons.append(
                        f"{symbol}: newest bar is {age / 3600:.1f} h old ({clock.name} clock)"
                    )
            live_problem = clock.problem()
            if live_problem is not None:
                reasons.append(f"live: {live_problem}")
            problem = services.db.disk_problem()
            if problem is not None:
                reasons.append(problem)
            primary = next((m for m in info.models if m.model == info.model), None)
            if primary is None:
                reasons.append("no model pinned: `btcfs train`, then `btcfs publish`")
            elif primary.stage != "production":
                reasons.append(
                    f"model {primary.model} {primary.version} is {primary.stage} "
                    "(no production version when published)"
                )
            body = HealthOut(
                status="degraded" if reasons else "ok",
                reasons=reasons,
                published_at=info.published_at,
                built_at=info.built_at,
                dbt_invocation_id=info.dbt_invocation_id,
                model=info.model,
                model_version=info.model_version,
                model_stage=primary.stage if primary else None,
                freshness=freshness,
            )
            return Response(body, status_code=200)
    except ApiError as exc:
        body = HealthOut(
            status="unavailable", reasons=[exc.detail], published_at=None, built_at=None,
            dbt_invocation_id=None, model=None, model_version=None, model_stage=None,
            freshness=[],
        )  # fmt: skip
        return Response(body, status_code=503)


ROUTES = [health]

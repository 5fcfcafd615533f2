"""GET /v1/catalog: the features served, as declared, with their coverage in the served file."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from api.db import Reader
from api.errors import Unavailable, error_responses
from api.schemas import CatalogFeature, CatalogOut
from api.services import ServicesDep, check_choice
from warehouse.catalog import (
    CATALOG_TABLE,
    FEATURE_MODELS,
    FEATURE_SETS,
    coverage,
    coverage_query,
    from_rows,
)


def _features(reader: Reader) -> list[CatalogFeature]:
    """Every column of both feature marts with its coverage (computed once per publish)."""
    key = ("catalog",)
    cached: list[CatalogFeature] | None = reader.generation.memo.get(key)
    if cached is not None:
        return cached
    if not reader.has(CATALOG_TABLE):
        raise Unavailable(
            "the published file has no feature catalog (published by an older btcfs): "
            "run `btcfs publish` again"
        )
    catalog = from_rows(reader.rows("select * from serve.feature_catalog"), "serve.duckdb")
    features = []
    for model, columns in catalog.models.items():
        names = [c.name for c in columns]
        measured = (
            coverage(reader.rows(coverage_query(f"serve.{model}", names)), names)
            if reader.has(model) and names
            else {}
        )
        for column in columns:
            features.append(
                CatalogFeature(
                    **column.to_dict(),
                    coverage=[c.to_dict() for c in measured.get(column.name, [])],
                )
            )
    reader.generation.memo[key] = features
    return features


@get(
    "/v1/catalog",
    operation_id="getCatalog",
    summary="The feature catalog",
    tags=["features"],
    sync_to_thread=True,
    responses=error_responses(422, 503),
)
def get_catalog(
    services: ServicesDep,
    feature_set: Annotated[
        str | None,
        QueryParameter(
            description="Only this feature set",
            schema_extra={"enum": ["spot", "derivatives", "vendors"]},
        ),
    ] = None,
    model: Annotated[
        str | None,
        QueryParameter(
            description="Only this feature mart",
            schema_extra={"enum": ["features_5m", "features_1h"]},
        ),
    ] = None,
) -> CatalogOut:
    """Every column of the published feature marts as its declaration says (set, role, unit,
    inputs, point-in-time rule, warm-up, null policy, model input, formula), with its
    coverage per symbol in the published file: rows, the share holding a value, the first
    bar with one. `feature_set` (spot, derivatives, vendors) and `model` (features_5m,
    features_1h) filter."""
    if feature_set is not None:
        check_choice("feature_set", feature_set, FEATURE_SETS)
    if model is not None:
        check_choice("model", model, FEATURE_MODELS)
    with services.db.reader() as reader:
        features = _features(reader)
    chosen = [
        f
        for f in features
        if (feature_set is None or f.feature_set == feature_set)
        and (model is None or f.model == model)
    ]
    return CatalogOut(count=len(chosen), features=chosen)


ROUTES = [get_catalog]

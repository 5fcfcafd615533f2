"""One module per resource; `ROUTES` is every handler the app serves."""

from __future__ import annotations

from api.routes import (
    admin,
    as_of,
    bars,
    catalog,
    dashboard,
    features,
    forecast,
    health,
    jobs,
    live,
    models,
    paper,
    predictions,
    qa,
    stream,
)

ROUTES = [
    *health.ROUTES,
    *live.ROUTES,
    *bars.ROUTES,
    *features.ROUTES,
    *as_of.ROUTES,
    *catalog.ROUTES,
    *predictions.ROUTES,
    *forecast.ROUTES,
    *models.ROUTES,
    *qa.ROUTES,
    *admin.ROUTES,
    *stream.ROUTES,
    *paper.ROUTES,
    *jobs.ROUTES,
    *dashboard.ROUTES,
]

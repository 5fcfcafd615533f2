"""Realistic answers of every operation (taken from a published warehouse of the replay
market, lists cut to a few items): the examples of the OpenAPI success responses, which
tests/api/test_openapi.py validates against each response's schema."""

from __future__ import annotations

from typing import Any

from api.live import LABELS
from api.predictor import FORECAST_METHOD

_OPEN_BAR = LABELS["open-bar"]
#: Paper positions: a spot long closed at the live price, a perpetual short still open.
_CLOSED_LONG: dict[str, Any] = {
    "id": 1,
    "symbol": "BTCUSDT",
    "market": "spot",
    "side": "long",
    "status": "closed",
    "amount_usd": 1000.0,
    "units": 0.009150474066587,
    "entry_price": 109283.95,
    "entry_reference_price": 109273.02,
    "entry_price_source": "open-bar",
    "entry_price_at": "2025-02-20T00:34:41Z",
    "entry_price_age_seconds": 1.4,
    "fee_bps": 5.0,
    "slippage_bps": 1.0,
    "entry_fee_usd": 0.5,
    "currency": "USD",
    "opened_at": "2025-02-20T00:34:42.402Z",
    "closed_at": "2025-02-20T01:12:05.918Z",
    "exit_price": 109790.27,
    "exit_reference_price": 109801.25,
    "exit_price_source": "open-bar",
    "exit_price_at": "2025-02-20T01:12:04Z",
    "exit_fee_usd": 0.5023334339726287,
    "mark_price": 109801.25,
    "mark_source": "exit (open-bar)",
    "mark_at": "2025-02-20T01:12:04Z",
    "mark_age_seconds": None,
    "mark_is_stale": False,
    "value_usd": 1004.263414658062613,
    "pnl_usd": 4.263414658062613,
    "pnl_pct": 0.004263414658062613,
    "realised_pnl_usd": 4.263414658062613,
    "unrealised_pnl_usd": None,
    "pnl_if_closed_usd": None,
    "fees_usd": 1.0023334339726287,
    "client_order_id": None,
    "warnings": [],
}
_OPENED_SHORT: dict[str, Any] = {
    "id": 2,
    "symbol": "BTCUSDT",
    "market": "perp",
    "side": "short",
    "status": "open",
    "amount_usd": 1000.0,
    "units": 0.009152327880405,
    "entry_price": 109261.88,
    "entry_reference_price": 109272.81,
    "entry_price_source": "open-bar",
    "entry_price_at": "2025-02-20T00:35:12Z",
    "entry_price_age_seconds": 1.1,
    "fee_bps": 5.0,
    "slippage_bps": 1.0,
    "entry_fee_usd": 0.5,
    "currency": "USD",
    "opened_at": "2025-02-20T00:35:13.118Z",
    "closed_at": None,
    "exit_price": None,
    "exit_reference_price": None,
    "exit_price_source": None,
    "exit_price_at": None,
    "exit_fee_usd": None,
    "mark_price": 109272.81,
    "mark_source": "open-bar",
    "mark_at": "2025-02-20T00:35:12Z",
    "mark_age_seconds": 1.1,
    "mark_is_stale": False,
    "value_usd": 999.4,
    "pnl_usd": -0.6,
    "pnl_pct": -0.0006,
    "realised_pnl_usd": None,
    "unrealised_pnl_usd": -0.6,
    "pnl_if_closed_usd": -1.2,
    "fees_usd": 0.5,
    "client_order_id": "desk-7-0001",
    "warnings": [],
}
_OPEN_SHORT: dict[str, Any] = {
    **_OPENED_SHORT,
    "mark_price": 109280.5,
    "mark_at": "2025-02-20T00:36:57Z",
    "mark_age_seconds": 3.2,
    "value_usd": 998.6352307433337,
    "pnl_usd": -1.3647692566662657,
    "pnl_pct": -0.0013647692566662657,
    "unrealised_pnl_usd": -1.3647692566662657,
    "pnl_if_closed_usd": -1.9648292566662657,
}

#: GET and POST /v1/forecast answer the same path.
_FORECAST: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "horizon": "5m",
    "steps": 3,
    "model": "btcusdt_5m",
    "model_version": "v0001",
    "model_stage": "production",
    "as_of": "2025-02-20T00:25:00Z",
    "available_at": "2025-02-20T00:30:00Z",
    "close": 109273.03,
    "method": FORECAST_METHOD,
    "path": [
        {
            "step": 1,
            "at": "2025-02-20T00:35:00Z",
            "expected_return": -6.225779912405661e-05,
            "price": 109266.22711341715,
            "lower_price": 109039.52298160728,
            "upper_price": 109489.39678650463,
        },
        {
            "step": 2,
            "at": "2025-02-20T00:40:00Z",
            "expected_return": -6.225779912405661e-05,
            "price": 109266.22711341715,
            "lower_price": 108946.77583527936,
            "upper_price": 109582.99505066537,
        },
        {
            "step": 3,
            "at": "2025-02-20T00:45:00Z",
            "expected_return": -6.225779912405661e-05,
            "price": 109266.22711341715,
            "lower_price": 108875.66194184648,
            "upper_price": 109654.86977508158,
        },
    ],
}

#: operationId -> status -> the JSON body
SUCCESS: dict[str, dict[int, Any]] = {
    "getHealth": {
        200: {
            "status": "ok",
            "reasons": [],
            "published_at": "2025-02-20T00:33:41.738482Z",
            "built_at": "2025-02-20T00:32:28.382474Z",
            "dbt_invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
            "model": "btcusdt_5m",
            "model_version": "v0001",
            "model_stage": "production",
            "freshness": [
                {
                    "symbol": "BTCUSDT",
                    "last_bar_at": "2025-02-20T00:30:00Z",
                    "age_seconds": 231.6,
                    "clock": "exchange",
                },
                {
                    "symbol": "ETHUSDT",
                    "last_bar_at": "2025-02-20T00:30:00Z",
                    "age_seconds": 231.6,
                    "clock": "exchange",
                },
            ],
        }
    },
    "getLive": {
        200: {
            "symbol": "BTCUSDT",
            "status": "live",
            "price": 109280.12,
            "price_source": "open-bar",
            "price_label": _OPEN_BAR,
            "price_market": "spot",
            "price_at": "2025-02-20T00:36:57Z",
            "price_age_seconds": 3.2,
            "is_stale": False,
            "quotes": [
                {
                    "market": "spot",
                    "price": 109280.12,
                    "open_time": "2025-02-20T00:36:00Z",
                    "at": "2025-02-20T00:36:57Z",
                    "age_seconds": 3.2,
                    "is_stale": False,
                    "label": _OPEN_BAR,
                },
                {
                    "market": "perp",
                    "price": 109280.5,
                    "open_time": "2025-02-20T00:36:00Z",
                    "at": "2025-02-20T00:36:57Z",
                    "age_seconds": 3.2,
                    "is_stale": False,
                    "label": _OPEN_BAR,
                },
            ],
            "newest_bar": {"spot": "2025-02-20T00:35:00Z", "perp": "2025-02-20T00:35:00Z"},
            "published": {
                "open_time": "2025-02-20T00:30:00Z",
                "available_at": "2025-02-20T00:35:00Z",
                "close": 109273.03,
                "age_seconds": 120.2,
            },
            "freshness_seconds": 120.2,
            "clock": "exchange",
            "now": "2025-02-20T00:37:00.2Z",
            "loop": {
                "pid": 41872,
                "status": "following",
                "problem": None,
                "started_at": "2026-12-08T00:10:02.114Z",
                "heartbeat_at": "2026-12-08T00:44:31.906Z",
                "heartbeat_age_seconds": 0.32,
                "exchange_now": "2025-02-20T00:37:00.2Z",
                "clock_rate": 10.0,
                "stale_after_s": 10.0,
                "last_publish_at": "2026-12-08T00:44:25.511Z",
                "reasons": [],
                "stale": {},
            },
            "warnings": [],
        }
    },
    "getBars": {
        200: {
            "symbol": "BTCUSDT",
            "interval": "1h",
            "count": 2,
            "bars": [
                {
                    "open_time": "2025-02-10T00:00:00Z",
                    "available_at": "2025-02-10T01:00:00Z",
                    "open": 109369.31,
                    "high": 110659.34,
                    "low": 109211.12,
                    "close": 110592.11,
                    "volume": 519.61821,
                    "quote_volume": 57024012.25582773,
                    "trade_count": 54144,
                    "taker_buy_base_volume": 268.29447736,
                    "imputed_minutes": 0,
                    "is_imputed": False,
                },
                {
                    "open_time": "2025-02-10T01:00:00Z",
                    "available_at": "2025-02-10T02:00:00Z",
                    "open": 110592.11,
                    "high": 110900.09,
                    "low": 109629.0,
                    "close": 109717.53,
                    "volume": 413.9743,
                    "quote_volume": 45679679.78170093,
                    "trade_count": 41720,
                    "taker_buy_base_volume": 179.94571033,
                    "imputed_minutes": 0,
                    "is_imputed": False,
                },
            ],
            "next_cursor": "AQAABi2_OkcEALohrCwOtatDEb2cE0i3ts3WtlBcznfkvw",
            "next": "/v1/bars?symbol=BTCUSDT&interval=1h&start=2025-02-10T00%3A00%3A00Z&limit=2"
            "&cursor=AQAABi2_OkcEALohrCwOtatDEb2cE0i3ts3WtlBcznfkvw",
        }
    },
    "getLatestFeatures": {
        200: {
            "symbol": "BTCUSDT",
            "interval": "5m",
            "open_time": "2025-02-20T00:25:00Z",
            "available_at": "2025-02-20T00:30:00Z",
            "age_seconds": 231.6,
            "values": {
                "close": 109273.03,
                "ret_5m": 0.0007354929974520502,
                "ret_1h": -0.004402636343517871,
                "vol_z": -0.5670961946411965,
                "taker_imbalance": -0.06850944057103747,
                "funding_agg_bps": 1.0,
                "basis_bps": -3.3063968300325026,
                "is_spot_complete": True,
            },
        }
    },
    "getFeatures": {
        200: {
            "symbol": "BTCUSDT",
            "interval": "1h",
            "count": 1,
            "rows": [
                {
                    "open_time": "2025-02-10T00:00:00Z",
                    "available_at": "2025-02-10T01:00:00Z",
                    "values": {
                        "close": 110592.11,
                        "ret_5m": 0.00111824541955853,
                        "ret_1h": 0.011118427920632066,
                        "vol_z": -0.45617135888462546,
                        "taker_imbalance": 0.032660026907063114,
                        "funding_agg_bps": 0.4616,
                        "basis_bps": -3.0481378825312584,
                        "is_spot_complete": True,
                    },
                }
            ],
            "next_cursor": "AQAABi2-Y7NgAHtceuVe1u0MU9YGLqDOdTydYTo-xfQ5qw",
            "next": "/v1/features?symbol=BTCUSDT&interval=1h&start=2025-02-10T00%3A00%3A00Z"
            "&limit=1&cursor=AQAABi2-Y7NgAHtceuVe1u0MU9YGLqDOdTydYTo-xfQ5qw",
        }
    },
    "getFeaturesAsOf": {
        200: {
            "rows": [
                {
                    "event_time": "2025-02-10T12:34:56Z",
                    "feature_open_time": "2025-02-10T12:25:00Z",
                    "feature_available_at": "2025-02-10T12:30:00Z",
                    "feature_age_seconds": 296.0,
                    "close": 111652.54,
                    "ret_1h": 0.00023056320494326834,
                    "vol_z": 1.6236868062855592,
                },
                {
                    "event_time": "2024-12-01T00:00:00Z",
                    "feature_open_time": None,
                    "feature_available_at": None,
                    "feature_age_seconds": None,
                    "close": None,
                    "ret_1h": None,
                    "vol_z": None,
                },
            ]
        }
    },
    "getCatalog": {
        200: {
            "count": 1,
            "features": [
                {
                    "name": "ret_5m",
                    "model": "features_5m",
                    "feature_set": "spot",
                    "role": "feature",
                    "unit": "log return",
                    "inputs": ["spot klines"],
                    "point_in_time": "spot klines to the bar's close",
                    "nulls": "never",
                    "warm_up": "2 bars",
                    "model_input": True,
                    "description": "Log return over the last 5 minutes, "
                    "`ln(c_t / c_{t-5min})`. At 5m: `ln(c_t / "
                    "c_{t-1})`. At 1h: the return of the hour's "
                    "last 5m bar (from `bars_5m`, known at the "
                    "same instant).",
                    "coverage": [
                        {
                            "symbol": "BTCUSDT",
                            "rows": 12102,
                            "non_null_rows": 12102,
                            "non_null_share": 1.0,
                            "first_open_time": "2025-01-09T00:00:00+00:00",
                        },
                        {
                            "symbol": "ETHUSDT",
                            "rows": 12102,
                            "non_null_rows": 12102,
                            "non_null_share": 1.0,
                            "first_open_time": "2025-01-09T00:00:00+00:00",
                        },
                    ],
                }
            ],
        }
    },
    "getLatestPrediction": {
        200: {
            "symbol": "BTCUSDT",
            "horizon": "5m",
            "model": "btcusdt_5m",
            "model_version": "v0001",
            "model_stage": "production",
            "as_of": "2025-02-20T00:25:00Z",
            "available_at": "2025-02-20T00:30:00Z",
            "target_at": "2025-02-20T00:35:00Z",
            "feature_age_seconds": 231.6,
            "close": 109273.03,
            "predicted_return": -6.225779912405661e-05,
            "predicted_price": 109266.22711341715,
            "signal": -6.225779912405661e-05,
            "quantiles": {
                "p10": -0.002139200007063622,
                "p50": -8.483756994868414e-05,
                "p90": 0.001978098892339829,
            },
            "price_quantiles": {
                "p10": 109039.52298160728,
                "p50": 109263.75993490433,
                "p90": 109489.39678650463,
            },
            "barrier_probabilities": {
                "down": 0.43862782452236565,
                "flat": 0.10671900374755883,
                "up": 0.4546531717300755,
                "model": "btcusdt_5m_tb",
                "model_version": "v0001",
                "model_stage": "rejected",
            },
        }
    },
    "predict": {
        200: {
            "model": "btcusdt_5m",
            "model_version": "v0001",
            "model_stage": "production",
            "horizon": "5m",
            "predictions": [
                {
                    "predicted_return": -6.225779912405661e-05,
                    "signal": -6.225779912405661e-05,
                    "quantiles": {
                        "p10": -0.002139200007063622,
                        "p50": -8.483756994868414e-05,
                        "p90": 0.001978098892339829,
                    },
                }
            ],
        }
    },
    "getForecast": {200: _FORECAST},
    "postForecast": {
        200: _FORECAST,
        202: {
            "id": 14,
            "pipeline": "forecast",
            "state": "queued",
            "step": None,
            "steps": [
                {"name": "check", "state": "pending"},
                {"name": "train", "state": "pending"},
                {"name": "promote", "state": "pending"},
                {"name": "publish", "state": "pending"},
                {"name": "predict", "state": "pending"},
            ],
            "params": {"symbol": "BTCUSDT", "horizon": "5m", "steps": 12, "train": {}},
            "created_at": "2025-02-20T00:40:02.551Z",
            "started_at": None,
            "finished_at": None,
            "duration_seconds": None,
            "pid": None,
            "exit_code": None,
            "error": None,
            "failed_gate": None,
            "result": {},
            "log": [],
            "cancel_requested_at": None,
        },
    },
    "getModel": {
        200: {
            "model": "btcusdt_5m",
            "version": "v0001",
            "stage": "production",
            "target": "fwd_ret",
            "horizon": "5m",
            "symbols": ["BTCUSDT"],
            "created_at": "2025-02-20T00:31:03+00:00",
            "features": ["ret_5m", "ret_1h", "ret_4h", "hl_range", "co_ret", "rv_5m_z"],
            "training_window": {
                "first_open_time": "2025-01-09T00:00:00+00:00",
                "last_open_time": "2025-02-19T21:25:00+00:00",
                "rows": 12066,
            },
            "metrics": {
                "coverage": 0.7973480662983425,
                "coverage_abs_error": 0.002651933701657505,
                "coverage_nominal": 0.8,
                "directional_accuracy": 0.5602209944751381,
                "dm_vs_persistence": -30.731723721015555,
                "dm_vs_zero": -10.415650912344763,
            },
            "gates": {
                "passed": True,
                "checks": [
                    {
                        "kind": "min",
                        "name": "rmse_skill_vs_zero",
                        "passed": True,
                        "threshold": 0.0,
                        "value": 0.006755768524504324,
                    },
                    {
                        "kind": "min",
                        "name": "mae_skill_vs_zero",
                        "passed": True,
                        "threshold": 0.0,
                        "value": 0.008319200834995155,
                    },
                ],
            },
            "backtest": {
                "buy_and_hold": {
                    "annual_return": 6.501326575376236,
                    "annual_volatility": 0.5538928526111816,
                    "bars": 9050.0,
                    "costs_paid": 0.0012,
                    "days": 31.42361111111111,
                },
                "strategy": {
                    "annual_return": 0.0,
                    "annual_volatility": 0.0,
                    "bars": 9050.0,
                    "costs_paid": 0.0,
                    "days": 31.42361111111111,
                },
            },
            "feature_importance": {
                "taker_imbalance": 8.799323041111193e-05,
                "ret_5m": 7.4125042980238295e-06,
                "co_ret": 6.9567258058049466e-06,
                "range_position": 2.7443783019098704e-06,
            },
        }
    },
    "listModels": {
        200: {
            "models": [
                {
                    "model": "btcusdt_5m",
                    "version": "v0001",
                    "stage": "production",
                    "target": "fwd_ret",
                    "horizon": "5m",
                    "created_at": "2025-02-20T00:31:03+00:00",
                    "pinned": True,
                    "metrics": {
                        "rank_ic": 0.14521072547737882,
                        "rank_ic_tstat": 13.960557304894852,
                        "rmse_skill_vs_zero": 0.006755768524504324,
                        "directional_accuracy": 0.5602209944751381,
                        "coverage": 0.7973480662983425,
                        "n": 9050.0,
                    },
                },
                {
                    "model": "btcusdt_5m_tb",
                    "version": "v0001",
                    "stage": "rejected",
                    "target": "tb_label",
                    "horizon": None,
                    "created_at": "2025-02-20T00:31:03+00:00",
                    "pinned": True,
                    "metrics": {
                        "log_loss_skill_vs_prior": -0.10914313868276349,
                        "accuracy": 0.4974585635359116,
                        "n": 9050.0,
                    },
                },
            ]
        }
    },
    "getQA": {
        200: {
            "published": {
                "invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
                "built_at": "2025-02-20T00:32:28.382474+00:00",
                "failed": False,
                "counts": {"pass": 108},
                "gates": [
                    {
                        "name": "atr_non_negative__labels_5m",
                        "kind": "data test",
                        "status": "pass",
                        "failures": 0,
                        "model": "labels_5m",
                        "message": None,
                    },
                    {
                        "name": "bar_interval_values__latest_features",
                        "kind": "data test",
                        "status": "pass",
                        "failures": 0,
                        "model": "latest_features",
                        "message": None,
                    },
                ],
            },
            "last_build": {
                "invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
                "built_at": "2025-02-20T00:32:28.382474+00:00",
                "failed": False,
                "counts": {"pass": 129},
                "gates": [
                    {
                        "name": "atr_non_negative__labels_5m",
                        "kind": "data test",
                        "status": "pass",
                        "failures": 0,
                        "model": "labels_5m",
                        "message": None,
                    },
                    {
                        "name": "bar_interval_values__latest_features",
                        "kind": "data test",
                        "status": "pass",
                        "failures": 0,
                        "model": "latest_features",
                        "message": None,
                    },
                ],
            },
        }
    },
    "reload": {
        200: {
            "generation": 2,
            "published_at": "2025-02-20T00:33:41.738482Z",
            "dbt_invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
        }
    },
    "listPaperPositions": {
        200: {
            "positions": [_CLOSED_LONG, _OPEN_SHORT],
            "invested_usd": 1000.0,
            "value_usd": 998.6352307433337,
            "pnl_usd": 2.8986454013963467,
            "realised_pnl_usd": 4.263414658062613,
            "unrealised_pnl_usd": -1.3647692566662657,
            "fees_usd": 1.503996810245085,
            "marked_at": "2025-02-20T00:36:57Z",
            "marks": [
                {
                    "symbol": "BTCUSDT",
                    "market": "perp",
                    "price": 109280.5,
                    "source": "open-bar",
                    "label": "the still-open 1m bar's latest close (live, never landed)",
                    "at": "2025-02-20T00:36:57Z",
                    "age_seconds": 3.2,
                    "is_stale": False,
                }
            ],
            "total": 2,
            "open_count": 1,
            "limit": 100,
            "offset": 0,
            "next_offset": None,
        }
    },
    "openPaperPosition": {201: _OPENED_SHORT, 200: _OPENED_SHORT},
    "closePaperPosition": {200: _CLOSED_LONG},
    "listJobs": {
        200: {
            "jobs": [
                {
                    "id": 13,
                    "pipeline": "build",
                    "state": "running",
                    "step": "build",
                    "steps": [
                        {
                            "name": "build",
                            "state": "running",
                            "started_at": "2025-02-20T00:40:02.700Z",
                        },
                        {"name": "qa", "state": "pending"},
                    ],
                    "params": {"vars": {}, "unit_tests": True, "full_refresh": False},
                    "created_at": "2025-02-20T00:40:02.551Z",
                    "started_at": "2025-02-20T00:40:02.690Z",
                    "finished_at": None,
                    "duration_seconds": None,
                    "pid": 48377,
                    "exit_code": None,
                    "error": None,
                    "failed_gate": None,
                    "result": {},
                    "log": [
                        "12:40:05  1 of 96 START sql view model "
                        "main.stg_binance__spot_klines ... [RUN]"
                    ],
                    "cancel_requested_at": None,
                },
                {
                    "id": 12,
                    "pipeline": "publish",
                    "state": "succeeded",
                    "step": None,
                    "steps": [
                        {
                            "name": "publish",
                            "state": "succeeded",
                            "started_at": "2025-02-20T00:33:39.120Z",
                            "finished_at": "2025-02-20T00:33:41.902Z",
                            "seconds": 2.78,
                            "exit_code": 0,
                        }
                    ],
                    "params": {},
                    "created_at": "2025-02-20T00:33:39.004Z",
                    "started_at": "2025-02-20T00:33:39.118Z",
                    "finished_at": "2025-02-20T00:33:41.905Z",
                    "duration_seconds": 2.787,
                    "pid": 48213,
                    "exit_code": 0,
                    "error": None,
                    "failed_gate": None,
                    "result": {
                        "published": {
                            "published_at": "2025-02-20T00:33:41.738482+00:00",
                            "dbt_invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
                            "model": "btcusdt_5m",
                            "model_version": "v0001",
                        }
                    },
                    "log": [
                        "published warehouse/serve.duckdb: 9 marts, build "
                        "2633f9ff (108 gates passed)"
                    ],
                    "cancel_requested_at": None,
                },
            ],
            "active": 13,
        }
    },
    "startJob": {
        202: {
            "id": 13,
            "pipeline": "build",
            "state": "queued",
            "step": None,
            "steps": [{"name": "build", "state": "pending"}, {"name": "qa", "state": "pending"}],
            "params": {"vars": {}, "unit_tests": True, "full_refresh": False},
            "created_at": "2025-02-20T00:40:02.551Z",
            "started_at": None,
            "finished_at": None,
            "duration_seconds": None,
            "pid": None,
            "exit_code": None,
            "error": None,
            "failed_gate": None,
            "result": {},
            "log": [],
            "cancel_requested_at": None,
        }
    },
    "getJob": {
        200: {
            "id": 12,
            "pipeline": "publish",
            "state": "succeeded",
            "step": None,
            "steps": [
                {
                    "name": "publish",
                    "state": "succeeded",
                    "started_at": "2025-02-20T00:33:39.120Z",
                    "finished_at": "2025-02-20T00:33:41.902Z",
                    "seconds": 2.78,
                    "exit_code": 0,
                }
            ],
            "params": {},
            "created_at": "2025-02-20T00:33:39.004Z",
            "started_at": "2025-02-20T00:33:39.118Z",
            "finished_at": "2025-02-20T00:33:41.905Z",
            "duration_seconds": 2.787,
            "pid": 48213,
            "exit_code": 0,
            "error": None,
            "failed_gate": None,
            "result": {
                "published": {
                    "published_at": "2025-02-20T00:33:41.738482+00:00",
                    "dbt_invocation_id": "2633f9ff-2aea-42f0-98e2-6df94c836613",
                    "model": "btcusdt_5m",
                    "model_version": "v0001",
                }
            },
            "log": ["published warehouse/serve.duckdb: 9 marts, build 2633f9ff (108 gates passed)"],
            "cancel_requested_at": None,
        }
    },
    "cancelJob": {
        200: {
            "id": 13,
            "pipeline": "build",
            "state": "cancelled",
            "step": None,
            "steps": [
                {"name": "build", "state": "cancelled"},
                {"name": "qa", "state": "cancelled"},
            ],
            "params": {"vars": {}, "unit_tests": True, "full_refresh": False},
            "created_at": "2025-02-20T00:40:02.551Z",
            "started_at": None,
            "finished_at": "2025-02-20T00:40:09.310Z",
            "duration_seconds": None,
            "pid": None,
            "exit_code": None,
            "error": None,
            "failed_gate": None,
            "result": {},
            "log": [],
            "cancel_requested_at": "2025-02-20T00:40:09.302Z",
        },
        202: {
            "id": 13,
            "pipeline": "build",
            "state": "running",
            "step": "build",
            "steps": [
                {"name": "build", "state": "running", "started_at": "2025-02-20T00:40:02.700Z"},
                {"name": "qa", "state": "pending"},
            ],
            "params": {"vars": {}, "unit_tests": True, "full_refresh": False},
            "created_at": "2025-02-20T00:40:02.551Z",
            "started_at": "2025-02-20T00:40:02.690Z",
            "finished_at": None,
            "duration_seconds": None,
            "pid": 48377,
            "exit_code": None,
            "error": None,
            "failed_gate": None,
            "result": {},
            "log": [
                "12:40:05  1 of 96 START sql view model main.stg_binance__spot_klines ... [RUN]"
            ],
            "cancel_requested_at": "2025-02-20T00:41:10.004Z",
        },
    },
}


#: operationId -> the `format=csv` body (the Arrow file has the same columns, typed)
CSV: dict[str, str] = {
    "getBars": (
        '"open_time","available_at","open","high","low","close","volume","quote_volume",'
        '"trade_count","taker_buy_base_volume","imputed_minutes","is_imputed"\n'
        "2025-02-10 00:00:00.000000Z,2025-02-10 01:00:00.000000Z,109369.31,110659.34,"
        "109211.12,110592.11,519.61821,57024012.25582773,54144,268.29447736,0,false\n"
        "2025-02-10 01:00:00.000000Z,2025-02-10 02:00:00.000000Z,110592.11,110900.09,109629,"
        "109717.53,413.9743,45679679.78170093,41720,179.94571033,0,false\n"
    ),
    "getFeatures": (
        '"symbol","open_time","available_at","close","ret_5m","ret_1h",...,"vol_z",...\n'
        "BTCUSDT,2025-02-10 00:00:00.000000Z,2025-02-10 01:00:00.000000Z,110592.11,"
        "0.00111824541955853,0.011118427920632066,...,-0.45617135888462546,...\n"
    ),
    "getFeaturesAsOf": (
        '"event_time","feature_open_time","feature_available_at","feature_age_seconds",'
        '"close","ret_1h","vol_z"\n'
        "2025-02-10 12:34:56.000000Z,2025-02-10 12:25:00.000000Z,2025-02-10 12:30:00.000000Z,"
        "296,111652.54,0.00023056320494326834,1.6236868062855592\n"
        "2024-12-01 00:00:00.000000Z,,,,,,\n"
    ),
}

#: GET /v1/stream: the first event, then one per publish (cut to one bar)
STREAM = (
    'event: hello\ndata: {"type":"hello","generation":1,"published_at":'
    '"2025-02-20T00:33:41.738482Z","dbt_invocation_id":"2633f9ff-2aea-42f0-98e2-6df94c836613"}'
    "\n\n"
    'event: publish\ndata: {"type":"publish","generation":2,"published_at":'
    '"2025-02-20T00:38:40.102311Z","built_at":"2025-02-20T00:37:51.004512Z",'
    '"dbt_invocation_id":"5d0c1b7e-9f51-4c8e-a1d2-0b9d4f7c3e21","symbols":{"BTCUSDT":'
    '{"bars":[{"open_time":"2025-02-20T00:30:00Z","available_at":"2025-02-20T00:35:00Z",'
    '"open":109273.03,"high":109301.5,"low":109240.0,"close":109288.12,"volume":41.2,'
    '"quote_volume":4502318.4,"trade_count":3121,"taker_buy_base_volume":20.7,'
    '"imputed_minutes":0,"is_imputed":false}],"prediction":null}}}\n\n'
)

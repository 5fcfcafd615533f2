"""The training report: one self-contained HTML file (plots inlined as base64 PNG, no CDN).

Fold metrics, out-of-sample scores beside their baselines, the gates, a calibration plot,
feature importance from CatBoost's SHAP values, and the backtest's equity curve.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ml.backtest import BacktestResult

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1d2330; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; font-size: 1.2rem;
     border-bottom: 1px solid #dde; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
th, td { border: 1px solid #dde; padding: .25rem .6rem; text-align: right; }
th { background: #f3f4f8; } td.l, th.l { text-align: left; }
.pass { color: #137333; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.muted { color: #667; font-size: .85rem; } img { max-width: 100%; }
.verdict { padding: .6rem 1rem; border-radius: 6px; display: inline-block; margin: .6rem 0; }
.verdict.pass { background: #e6f4ea; } .verdict.fail { background: #fce8e6; }
pre { background: #f6f7f9; padding: .8rem; overflow-x: auto; font-size: .8rem; }
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    head = "".join(
        f"<th class='l'>{html.escape(h)}</th>" if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = " class='l'" if i < left else ""
            text = cell if isinstance(cell, _Raw) else _fmt(cell)
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{encoded}'>"


# ---------------------------------------------------------------------------- the plots


def calibration_plot(calibration: Mapping[str, Any], target: str) -> str:
    figure = Figure(figsize=(6.2, 4.2))
    axes = figure.subplots()
    if target == "fwd_ret":
        rows = calibration.get("deciles") or []
        if not rows:
            return "<p class='muted'>Too few rows for a calibration plot.</p>"
        predicted = [r["predicted"] * 1e4 for r in rows]
        observed = [r["observed"] * 1e4 for r in rows]
        low, high = min(predicted + observed), max(predicted + observed)
        axes.plot([low, high], [low, high], color="#999", linestyle="--", label="perfect")
        axes.plot(predicted, observed, marker="o", color="#1a73e8", label="model (deciles)")
        axes.axhline(0, color="#ccc", linewidth=0.8)
        axes.set_xlabel("mean predicted return (bps)")
        axes.set_ylabel("mean realised return (bps)")
        axes.set_title("Calibration: realised vs predicted, by forecast decile")
    else:
        reliability = calibration.get("reliability") or {}
        axes.plot([0, 1], [0, 1], color="#999", linestyle="--", label="perfect")
        colours = {"-1": "#b3261e", "0": "#888888", "1": "#137333"}
        for label, rows in reliability.items():
            if rows:
                axes.plot(
                    [r["predicted"] for r in rows],
                    [r["observed"] for r in rows],
                    marker="o",
                    color=colours.get(label, "#1a73e8"),
                    label=f"class {label}",
                )
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("predicted probability")
        axes.set_ylabel("observed frequency")
        axes.set_title("Reliability per barrier class")
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    return _png(figure)


def importance_plot(importance: pd.Series, top: int = 20) -> str:
    if importance.empty:
        return "<p class='muted'>No feature importance.</p>"
    shown = importance.head(top)[::-1]
    figure = Figure(figsize=(6.2, max(2.0, 0.28 * len(shown) + 0.8)))
    axes = figure.subplots()
    axes.barh(list(shown.index), list(shown.to_numpy()), color="#1a73e8")
    axes.set_xlabel("mean |SHAP value|")
    axes.set_title("Feature importance (SHAP, final model)")
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def equity_plot(result: BacktestResult) -> str:
    curve = result.curve
    if curve.empty:
        return "<p class='muted'>No rows to backtest.</p>"
    figure = Figure(figsize=(8.5, 3.8))
    axes = figure.subplots()
    times = pd.to_datetime(curve["open_time"], utc=True).dt.tz_localize(None)
    axes.plot(times, curve["equity"], color="#1a73e8", label="strategy (after costs)")
    axes.plot(times, curve["buy_and_hold"], color="#888", label="buy and hold")
    axes.axhline(1.0, color="#ccc", linewidth=0.8)
    axes.set_ylabel("equity (start = 1)")
    axes.set_title("Out-of-sample equity curve")
    axes.legend(loc="best", fontsize=8)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    return _png(figure)


# ----------------------------------------------------------------------------- sections

_REGRESSION_ROWS = (
    ("MAE", "mae", "zero_mae", "persistence_mae"),
    ("RMSE", "rmse", "zero_rmse", "persistence_rmse"),
    ("directional accuracy", "directional_accuracy", "zero_directional_accuracy",
     "persistence_directional_accuracy"),
    ("rank IC", "rank_ic", "zero_rank_ic", "persistence_rank_ic"),
)  # fmt: skip
_CLASSIFICATION_ROWS = (
    ("log-loss", "log_loss", "prior_log_loss"),
    ("Brier", "brier", "prior_brier"),
    ("accuracy", "accuracy", "prior_accuracy"),
)


def _scores(metrics: Mapping[str, float], target: str) -> str:
    if target == "fwd_ret":
        rows = [
            [label, metrics.get(m, math.nan), metrics.get(z, math.nan), metrics.get(p, math.nan)]
            for label, m, z, p in _REGRESSION_ROWS
        ]
        table = _table(["metric", "model", "zero return", "persistence"], rows)
        extra = _table(
            ["statistic", "value"],
            [
                ["rows (out of sample)", int(metrics.get("n", 0))],
                ["RMSE skill vs zero", metrics.get("rmse_skill_vs_zero", math.nan)],
                ["RMSE skill vs persistence", metrics.get("rmse_skill_vs_persistence", math.nan)],
                ["Diebold-Mariano vs zero (<0: model better)", metrics.get("dm_vs_zero", math.nan)],
                ["rank IC t-stat (overlap-adjusted)", metrics.get("rank_ic_tstat", math.nan)],
                [
                    f"p10-p90 coverage (nominal {metrics.get('coverage_nominal', math.nan):.2f})",
                    metrics.get("coverage", math.nan),
                ],
                ["mean interval width", metrics.get("interval_width_mean", math.nan)],
            ],
        )
        return table + extra
    rows = [
        [label, metrics.get(m, math.nan), metrics.get(p, math.nan)]
        for label, m, p in _CLASSIFICATION_ROWS
    ]
    shares = [
        [f"class {c}", metrics.get(f"share_{c}", math.nan), metrics.get(f"mean_p_{c}", math.nan)]
        for c in ("-1", "0", "1")
    ]
    return _table(["metric", "model", "class prior"], rows) + _table(
        ["class", "observed share", "mean predicted p"], shares
    )


def _gates(gates: Mapping[str, Any]) -> str:
    passed = bool(gates.get("passed"))
    verdict = (
        "<div class='verdict pass'>Every gate passed: a production candidate.</div>"
        if passed
        else "<div class='verdict fail'>Gates failed: not a production candidate.</div>"
    )
    rows = []
    for check in gates.get("checks", []):
        sign = ">" if check["kind"] == "min" else "≤"
        status = _Raw(
            "<span class='pass'>pass</span>"
            if check["passed"]
            else "<span class='fail'>fail</span>"
        )
        rows.append(
            [check["name"], check["value"], _Raw(f"{sign} {_fmt(check['threshold'])}"), status]
        )
    return verdict + _table(["gate", "value", "required", ""], rows)


def _folds(folds: Sequence[Mapping[str, Any]], target: str) -> str:
    keys = (
        ["rmse_skill_vs_zero", "mae_skill_vs_zero", "directional_accuracy", "rank_ic", "coverage"]
        if target == "fwd_ret"
        else ["log_loss_skill_vs_prior", "brier_skill_vs_prior", "accuracy_vs_prior"]
    )
    rows = []
    for fold in folds:
        m = fold["metrics"]
        rows.append(
            [
                fold["number"],
                f"{fold['test_start'][:16]} → {fold['test_end'][:16]}",
                fold["train_rows"],
                fold["test_rows"],
                fold["purged"],
                fold["embargoed"],
                *[m.get(k, math.nan) for k in keys],
            ]
        )
    return _table(["fold", "test window", "train", "test", "purged", "embargoed", *keys], rows, 2)


def _backtest(backtest: Mapping[str, Mapping[str, float]], costs: Mapping[str, Any]) -> str:
    keys = [
        "total_return", "annual_return", "sharpe", "max_drawdown", "annual_volatility",
        "turnover_per_day", "trades", "exposure", "costs_paid", "funding_paid",
    ]  # fmt: skip
    strategy, hold = backtest.get("strategy", {}), backtest.get("buy_and_hold", {})
    rows = [[k, strategy.get(k, math.nan), hold.get(k, math.nan)] for k in keys]
    note = (
        f"<p class='muted'>Instrument {html.escape(str(costs.get('instrument')))}; taker fee "
        f"{_fmt(costs.get('taker_fee_bps'))} bps + slippage {_fmt(costs.get('slippage_bps'))} bps "
        f"per side; rebalance every {html.escape(str(costs.get('rebalance')))}; entry threshold "
        f"{_fmt(costs.get('entry_threshold'))}.</p>"
    )
    return note + _table(["", "strategy", "buy and hold"], rows)


def render(
    metadata: Mapping[str, Any],
    calibration: Mapping[str, Any],
    importance: pd.Series,
    backtest: BacktestResult,
) -> str:
    """The whole report as one HTML string (nothing fetched when it is opened)."""
    target = str(metadata.get("target"))
    title = f"{metadata.get('model')} {metadata.get('version')}"
    window = metadata.get("training_window", {})
    fingerprint = metadata.get("data_fingerprint", {})
    summary_rows = [
        ["stage at registration", metadata.get("stage", "")],
        ["target", f"{metadata.get('label')} ({target}, horizon {metadata.get('horizon')})"],
        ["symbol", metadata.get("symbol", "")],
        ["training window", f"{window.get('first_open_time')} → {window.get('last_open_time')}"],
        ["labelled rows", window.get("rows", "")],
        ["features", len(metadata.get("features", []))],
        ["CV", f"{metadata.get('cv', {}).get('folds')} purged walk-forward folds, "
               f"embargo {metadata.get('cv', {}).get('embargo')}"],
        ["lake fingerprint", str(fingerprint.get("lake", {}).get("sha256"))[:16]],
        ["dbt invocation", fingerprint.get("dbt", {}).get("invocation_id")],
        ["git revision", str(metadata.get("git", {}).get("revision"))[:12]],
        ["created", metadata.get("created_at", "")],
    ]  # fmt: skip
    dropped = metadata.get("dropped_features") or {}
    dropped_html = (
        _table(["feature", "left out because"], [[k, v] for k, v in dropped.items()])
        if dropped
        else "<p class='muted'>None.</p>"
    )
    metrics = metadata.get("metrics", {})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p class='muted'>Every score below is out of sample: each fold's model was trained "
        "only on rows before it, with overlapping labels purged and an embargo around it.</p>",
        _table(["", ""], summary_rows),
        "<h2>Gates</h2>",
        _gates(metadata.get("gates", {})),
        "<h2>Out-of-sample scores against baselines (all folds pooled)</h2>",
        _scores(metrics.get("overall", {}), target),
        "<h2>Folds</h2>",
        _folds(metrics.get("folds", []), target),
        "<h2>Calibration</h2>",
        calibration_plot(calibration, target),
        "<h2>Feature importance</h2>",
        importance_plot(importance),
        "<h3>Documented features left out</h3>",
        dropped_html,
        "<h2>Backtest (out-of-sample signal, after costs)</h2>",
        _backtest(metadata.get("backtest", {}), metadata.get("backtest_costs", {})),
        equity_plot(backtest),
        "<h2>Configuration</h2><details><summary>config</summary><pre>",
        html.escape(json.dumps(metadata.get("config", {}), indent=2, default=str)),
        "</pre></details></body></html>",
    ]
    return "\n".join(parts)


def write(path: Path, document: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(document, encoding="utf-8")
    temporary.replace(path)
    return path

"""The trainer: dataset, purged walk-forward CV, CatBoost models, evaluation, backtest, registry.

One module per stage (dataset, cv, train, evaluate, backtest, registry, report); `ml.cli`
wires them into `btcfs train|evaluate|backtest|models`, and the API imports `ml.predict`.
"""

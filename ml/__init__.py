"""Trainer, purged walk-forward evaluation and model registry (issue #4: not built yet)."""

"""The pipeline as a library: its steps as functions with typed results, and their order.

It sits above the trainer and the warehouse, below the API's jobs worker and the root CLI,
which call it (docs/ARCHITECTURE.md, "Layers").
"""

from pipeline.publish import publish

__all__ = ["publish"]

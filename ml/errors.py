"""The ml exception tree: every known failure is an MLError with a readable message."""

from __future__ import annotations

from core import errors as core_errors


class MLError(core_errors.BtcfsError):
    """Base of every known trainer failure; the CLI shows its message without a traceback."""


class ConfigError(MLError, core_errors.ConfigError):
    """The training config file is missing, unreadable, or has a wrong or unknown key."""


class DatasetError(MLError):
    """The training mart is missing, empty, or breaks a data contract (keys, labels, leakage)."""


class RegistryError(MLError):
    """A model, version or stage that the registry does not have, or a refused stage change."""


class GateError(MLError):
    """A stage change that the gates forbid (promote a version that failed its gates)."""

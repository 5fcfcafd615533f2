"""The root of every known failure.

A `BtcfsError` carries a message a person can act on; the root CLI prints it on one line and
exits 1, the API answers it as a problem, a job records it. Each package derives its own
family from it (IngestError, LakeError, MLError, PublishError, ...), so one `except` at an
edge catches every known failure and lets a bug's traceback through.
"""

from __future__ import annotations


class BtcfsError(Exception):
    """Base of every failure btcfs knows how to explain."""

    #: What a person can do about it, shown after the message (CLI line, job error).
    hint: str | None = None

    def explain(self) -> str:
        """The message with its hint: what the CLI prints after `Error: `."""
        return f"{self}. {self.hint}" if self.hint else str(self)


class ConfigError(BtcfsError):
    """A configuration file, setting or argument is invalid (each package's ConfigError
    derives from this one, so a caller can catch any of them)."""

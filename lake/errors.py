"""The lake's failures: a damaged MANIFEST, an unknown dataset, a partition lock held too long."""

from __future__ import annotations

from core.errors import BtcfsError


class LakeError(BtcfsError):
    """A lake read or write that cannot go on; the message names the file or partition."""

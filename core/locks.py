"""Cross-process locks (filelock) around read-modify-writes of shared files: the model
registry's stages, a lake partition, and whatever else two btcfs processes can both rewrite."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_TIMEOUT_ENV = "BTCFS_LOCK_TIMEOUT_S"
#: Every lock is held for one short read-modify-write (milliseconds, a publish's copy at most),
#: so a minute of waiting means a stuck holder, not a queue.
DEFAULT_LOCK_TIMEOUT_S = 60.0


class LockTimeout(TimeoutError):
    """Another process held a btcfs lock for longer than the timeout."""


def lock_timeout() -> float:
    """Seconds to wait for a lock: $BTCFS_LOCK_TIMEOUT_S, else 60."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds above 0, got {raw!r}")
    return seconds


@contextmanager
def exclusive(
    lock_file: Path,
    purpose: str,
    *,
    timeout: float | None = None,
    error: Callable[[str], Exception] = LockTimeout,
) -> Iterator[None]:
    """Hold `lock_file` (created if missing, left in place) for the body; `error(message)`
    naming the file when another process holds it past the timeout."""
    try:
        wait = lock_timeout() if timeout is None else timeout
    except ValueError as exc:
        raise error(str(exc)) from None
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise error(
            f"{purpose}: another process has held the lock {lock_file} for over {wait:g} s "
            f"(retry when it is done, or raise {LOCK_TIMEOUT_ENV})"
        ) from None
    try:
        yield
    finally:
        lock.release()

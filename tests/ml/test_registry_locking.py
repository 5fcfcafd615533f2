"""ml.registry under concurrent writers: real processes promote and roll back one model at
once, and no stage change is lost; a held lock ends in a one-line error naming its file."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from ml import registry
from ml.errors import RegistryError

MODEL = "m"
ROUNDS = 150  # promote + rollback pairs per process


def _register(store: registry.Registry, count: int) -> list[str]:
    def write(folder: Path) -> None:
        (folder / registry.MODEL_FILE).write_bytes(b"model")

    return [store.register(MODEL, {"gates": {"passed": True}}, write).version for _ in range(count)]


def _promote_and_roll_back(root: str, versions: tuple[str, str], start_at: float) -> list[str]:
    """One process: promote one of its own versions, roll back, ROUNDS times; what it did."""
    store = registry.Registry(Path(root))
    while time.time() < start_at:  # all processes start hammering together
        time.sleep(0.001)
    done: list[str] = []
    for n in range(ROUNDS):
        try:
            store.promote(MODEL, versions[n % 2])
        except RegistryError:
            continue  # already production: another process rolled back onto it
        done.append("promote")
        try:
            store.rollback(MODEL)
        except RegistryError as exc:  # only when another process's write lost this promote
            done.append(f"rollback refused: {exc}")
            continue
        done.append("rollback")
    return done


def _replay(history: list[dict[str, Any]]) -> list[str]:
    """The production stack the history describes, each entry checked against the one before."""
    stack: list[str] = []
    for entry in history:
        top = stack[-1] if stack else None
        if entry["action"] == "promote":
            assert entry["previous"] == top, entry
            stack.append(entry["version"])
        else:
            assert entry["previous"] == top, entry
            stack.pop()
            assert entry["version"] == stack[-1], entry
    return stack


def test_concurrent_promotes_and_rollbacks_lose_nothing(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)
    base, *mine = _register(store, 5)
    store.promote(MODEL, base)
    pairs = [(mine[0], mine[1]), (mine[2], mine[3])]
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # after both interpreters have started
    with ProcessPoolExecutor(len(pairs), mp_context=context) as pool:
        futures = [
            pool.submit(_promote_and_roll_back, str(tmp_path), pair, start_at) for pair in pairs
        ]
        done = [action for future in futures for action in future.result(timeout=120)]
    assert done.count("promote") >= ROUNDS  # the processes really did race
    refused = [action for action in done if action not in ("promote", "rollback")]
    history = store.history(MODEL)
    # Every stage change either process made is in the history, in an unbroken chain.
    lost = 1 + len(done) - len(history)
    assert not refused and lost == 0, (
        f"{lost} of {1 + len(done)} stage changes lost, {len(refused)} rollbacks refused "
        f"{refused[:1]}"
    )
    assert _replay(history) == [base]
    assert store.production(MODEL) == base
    assert json.loads((tmp_path / MODEL / registry.STAGES_FILE).read_text())["stack"] == [base]


def test_a_held_lock_ends_promote_with_one_line_naming_the_lock(tmp_path: Path) -> None:
    """`btcfs models promote` (what the API's jobs run) waits, then names the lock it met."""
    store = registry.Registry(tmp_path / "registry")
    first, second = _register(store, 2)
    store.promote(MODEL, first)
    stages = (tmp_path / "registry" / MODEL / registry.STAGES_FILE).read_bytes()
    lock_file = store.lock_file(MODEL)
    env = {**os.environ, "BTCFS_DATA_DIR": str(tmp_path), "BTCFS_LOCK_TIMEOUT_S": "0.5"}
    command = [str(Path(sys.executable).with_name("btcfs")), "models", "promote", MODEL, second]
    with FileLock(lock_file, timeout=5):
        started = time.monotonic()
        held = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - started
    assert held.returncode == 1, held.stderr
    lines = held.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in held.stderr
    assert str(lock_file) in lines[0] and "0.5 s" in lines[0]
    assert waited >= 0.5
    assert (tmp_path / "registry" / MODEL / registry.STAGES_FILE).read_bytes() == stages
    # Released: the same command goes through.
    free = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert free.returncode == 0, free.stderr
    assert store.production(MODEL) == second


def test_a_bad_lock_timeout_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = registry.Registry(tmp_path)
    [version] = _register(store, 1)
    for bad in ("soon", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("BTCFS_LOCK_TIMEOUT_S", bad)
        with pytest.raises(RegistryError, match="BTCFS_LOCK_TIMEOUT_S must be a number"):
            store.promote(MODEL, version)
    assert store.production(MODEL) is None

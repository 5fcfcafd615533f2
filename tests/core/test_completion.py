"""Shell completion as docs/install.md documents it: the script for each shell, and the
completions it then asks `btcfs` for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BTCFS = str(Path(sys.executable).with_name("btcfs"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "install.md"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_its_completion_script(shell: str) -> None:
    assert f"_BTCFS_COMPLETE={shell}_source btcfs" in DOCS.read_text()
    env = {**os.environ, "_BTCFS_COMPLETE": f"{shell}_source"}
    script = subprocess.run([BTCFS], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "_BTCFS_COMPLETE" in script and "btcfs" in script


def test_bash_completes_commands_and_choices() -> None:
    def complete(words: str, index: int) -> list[str]:
        env = {**os.environ, "_BTCFS_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(index)}  # fmt: skip
        answer = subprocess.run([BTCFS], env=env, capture_output=True, text=True, timeout=60)
        return [line.split(",", 1)[1] for line in answer.stdout.splitlines() if "," in line]

    assert {"update", "features", "train"} <= set(complete("btcfs ", 1))
    assert set(complete("btcfs train --target ", 3)) == {"fwd_ret", "tb_label"}

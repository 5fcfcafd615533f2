"""`btcfs serve` on a port another process listens on: one line saying so, before anything
is announced, exit 1; a bad host is one line too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from api.cli import port_problem

BTCFS = str(Path(sys.executable).with_name("btcfs"))


def test_a_busy_port_is_refused_in_one_line_before_any_announcement(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_problem("127.0.0.1", port) is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTCFS_")}
        env["BTCFS_DATA_DIR"] = str(tmp_path)
        result = subprocess.run(
            [BTCFS, "serve", "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == [
        f"Error: port {port} on 127.0.0.1 is in use by another process: stop it, or choose "
        "another with --port (or BTCFS_API_PORT)"
    ]


def test_a_free_port_and_a_bad_host() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert port_problem("127.0.0.1", free) is None
    bad = port_problem("no-such-host.invalid", 1) or ""
    assert "cannot listen on no-such-host.invalid" in bad

"""`btcfs replay` commands: help, option errors, and a real `serve` process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from btcfs.cli import cli


@pytest.mark.parametrize("command", [["replay"], ["replay", "serve"], ["replay", "export-archive"]])
def test_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    if len(command) > 1:
        assert "Example: btcfs replay" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--synthetic", "--faults", "429=2"], "within [0, 1]"),
        (["--synthetic", "--faults", "teapot=0.1"], "unknown fault 'teapot'"),
        (["--synthetic", "--faults", "429"], "is not NAME=RATE"),
        ([], "exactly one of --data DIR or --synthetic"),
        (["--synthetic", "--data", "."], "exactly one of --data DIR or --synthetic"),
        (["--synthetic", "--start", "yesterday"], "invalid time 'yesterday'"),
        (["--synthetic", "--start", "2024-02-01", "--end", "2024-01-01"], "must be before --end"),
        (["--synthetic", "--now", "soon"], "invalid time 'soon'"),
        (["--synthetic", "--symbols", "DOGEUSDT"], "choose from BTCUSDT, ETHUSDT"),
        (["--synthetic", "--seed", "-1"], "-1 is not in the range x>=0"),
        (["--data", "/nonexistent-replay-dir"], "does not exist"),
        (["--data", "."], "cannot read recorded data"),
        (["--synthetic", "--port", "70000"], "70000 is not in the range"),
    ],
)
def test_serve_rejects_bad_options_clearly(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["replay", "serve", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean click error, not a crash


def test_serve_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [
        sys.executable, "-c", "from btcfs.cli import main; main()",
        "replay", "serve", "--port", "0", "--synthetic", "--seed", "3",
        "--start", "2024-01-01", "--end", "2024-01-03", "--now", "2024-01-02T12:00:00Z",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1")
        assert response.status_code == 200 and len(response.json()) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            assert "Traceback" not in process.stderr.read()
            process.stderr.close()


def test_serve_reports_a_busy_port() -> None:
    with socket_listening() as port:
        result = CliRunner().invoke(
            cli, ["replay", "serve", "--port", str(port), "--synthetic", "--end", "2024-01-02"]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@contextmanager
def socket_listening() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]

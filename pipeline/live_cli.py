"""`btcfs live` and `btcfs live verify` (docs/live.md)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import msgspec

from core.settings import DataPaths
from pipeline.live import LiveLoop, LiveOptions, stop_on_signals
from pipeline.params import IngestParams
from pipeline.run import Context, InProcessRunner, TerminalRunner
from pipeline.served import ServedLog

#: What the verify's batch rebuild prints; its own line per problem follows.
MAX_SHOWN = 20


def _finite(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):  # FloatRange lets NaN through
        raise click.BadParameter(f"{value} is not a number of seconds", param=param)
    return value


@click.group("live", invoke_without_command=True)
@click.option(
    "--config", "ingest_config", help="Ingest config (YAML) [default: config/ingest.yml]."
)
@click.option("--base-url", help="Every vendor's REST host (e.g. the replay server).")
@click.option("--archive", help="Binance archive URL, or `none` for REST only (catch-up).")
@click.option("--port", type=int, help="Also serve the API (btcfs serve) on this port.")
@click.option("--no-serve", is_flag=True, help="Do not serve the API (the default).")
@click.option(
    "--price-every", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
    callback=_finite,
    help="Wall seconds between reads of the still-open bar's price.",
)  # fmt: skip
@click.option(
    "--slow-every", type=click.FloatRange(60, 86_400), default=3600.0, show_default=True,
    callback=_finite,
    help="Exchange seconds between full refreshes (btcfs ingest all: other vendors, funding).",
)  # fmt: skip
@click.option("--no-catch-up", is_flag=True, help="Skip the first `btcfs update`.")
@click.pass_context
def live_group(
    ctx: click.Context,
    ingest_config: str | None,
    base_url: str | None,
    archive: str | None,
    port: int | None,
    no_serve: bool,
    price_every: float,
    slow_every: float,
    no_catch_up: bool,
) -> None:
    """Bring everything current (`btcfs update`), then follow the market: land each 1m bar as
    it closes, rebuild the new feature rows with the update plan (the same SQL as `dbt
    build`), run their gates, publish. The still-open bar's price is read every
    --price-every seconds into data/live/state.json (shown, never landed). The other vendors
    refresh every --slow-every seconds of exchange time. Ctrl-C or SIGTERM stops it after the
    current turn. `btcfs live verify` checks every feature row it served against a full
    batch rebuild.

    \b
    Example: btcfs live --port 8000
    Example: btcfs live --base-url http://127.0.0.1:9000 --no-serve
    """
    if ctx.invoked_subcommand is not None:
        return
    if port is not None and no_serve:
        raise click.UsageError("--port and --no-serve contradict each other")
    given = {"config": ingest_config, "base_url": base_url, "archive": archive}
    try:
        ingest = msgspec.convert({k: v for k, v in given.items() if v is not None}, IngestParams)
    except msgspec.ValidationError as exc:
        raise click.UsageError(f"invalid option: {exc}") from None
    options = LiveOptions(
        ingest=ingest,
        price_every_s=price_every,
        slow_every_s=slow_every,
        catch_up=not no_catch_up,
    )
    runner = InProcessRunner(ctx.find_root().command, out=sys.stderr)
    loop = LiveLoop(runner, Context.from_env(), options, out=sys.stderr)
    stop_on_signals(loop)
    server: subprocess.Popen[bytes] | None = None
    if port is not None:
        exe = Context.from_env().commands.exe("btcfs")
        server = subprocess.Popen([exe, "serve", "--port", str(port)])
        loop.say(f"serving the API on port {port} (pid {server.pid})")
    try:
        code = loop.run()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    ctx.exit(code)


@live_group.command("verify")
@click.option("--keep", is_flag=True, help="Keep the batch rebuild's folder (printed).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
def verify_command(keep: bool, as_json: bool) -> None:
    """Rebuild the warehouse from the lake in full, in a folder of its own (`dbt build
    --full-refresh`), and compare every feature row `btcfs live` served (data/live/
    served.duckdb) with the same bar's row there, within 1e-9. Exit 1 on any difference.
    The live loop may keep running: the rebuild reads the lake as it is, and rows served
    since it began are checked too, as long as their bars had landed by then."""
    paths = DataPaths.from_env()
    log = ServedLog(paths.root / "live" / "served.duckdb")
    if not log.path.is_file():  # before a rebuild of minutes
        raise click.ClickException(
            f"no served log at {log.path}: `btcfs live` writes it after each publish"
        )
    folder = Path(tempfile.mkdtemp(prefix="btcfs-verify-", dir=paths.root))
    context = Context.from_env()
    try:
        argv = context.commands.build(
            dbt_vars=json.dumps({"lake_root": str(paths.lake)}), unit_tests=False,
            full_refresh=True,
        )  # fmt: skip
        env = {**os.environ, "BTCFS_DATA_DIR": str(folder), "DBT_TARGET_PATH": str(folder / "t")}
        (folder / "warehouse").mkdir()
        code, tail = TerminalRunner(out=sys.stderr).command(*argv, env=env)
        if code != 0:
            raise click.ClickException(
                "the batch rebuild failed: " + (tail[-1] if tail else f"exit {code}")
            )
        verdict = log.verify(folder / "warehouse" / "build.duckdb")
    finally:
        if keep:
            click.echo(f"batch rebuild kept in {folder}", err=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": verdict.ok,
                    "checked": verdict.checked,
                    "mismatches": [
                        {
                            "table": m.table,
                            "symbol": m.symbol,
                            "open_time": str(m.open_time),
                            "problem": m.problem,
                        }
                        for m in verdict.mismatches
                    ],
                }
            )
        )
    else:
        counts = ", ".join(f"{table} {rows:,} rows" for table, rows in verdict.checked.items())
        click.echo(f"checked {counts or 'nothing'} served by btcfs live")
        for m in verdict.mismatches[:MAX_SHOWN]:
            click.echo(f"  {m.table} {m.symbol} {m.open_time}: {m.problem}")
        if len(verdict.mismatches) > MAX_SHOWN:
            click.echo(f"  … and {len(verdict.mismatches) - MAX_SHOWN} more")
    if not verdict.ok:
        reason = "differences" if verdict.mismatches else "no served rows to check"
        raise click.ClickException(f"live verify: {reason}")
    if not as_json:
        click.echo("every served row equals the batch rebuild's (1e-9)")

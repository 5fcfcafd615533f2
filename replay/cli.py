"""`btcfs replay` commands: run the replay server, export its archive to a folder."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from replay.archive import ARCHIVE_INTERVALS, DATASETS, Archive, export
from replay.clock import US_PER_DAY, parse_moment, real_now_us, running_horizon_us
from replay.faults import FaultSpec, FaultSpecError
from replay.market import MarketData
from replay.query import MarketView
from replay.realdata import RealDataError, RealDataMarket
from replay.server import ReplayServer
from replay.synthetic import PROFILES, REGIMES, SyntheticMarket

_DEFAULT_HISTORY = timedelta(days=365)


def _moment(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def _csv_choice(name: str, value: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing given'}; choose from {', '.join(allowed)}",
            param_hint=name,
        )
    return items


def _speed(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(
            f"{value} is not a finite number > 0 (to freeze the clock give --now alone)"
        )
    return value


def market_options(default_symbols: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options that choose what market is replayed (shared by every replay command)."""
    options = [
        click.option(
            "--data",
            "data_dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder of recorded Binance files (e.g. ../shared/data/binance).",
        ),
        click.option("--synthetic", is_flag=True, help="Serve a seeded synthetic market."),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Seed of the synthetic market and of the fault draws.",
        ),
        click.option("--start", help="Synthetic market start (UTC date or ISO time).", metavar="D"),
        click.option(
            "--end",
            help="Synthetic market end (default: now, or further ahead when the server clock "
            "runs); bars open before it exist.",
            metavar="D",
        ),
        click.option(
            "--symbols",
            help=f"Synthetic symbols, comma-separated [default: {default_symbols}].",
        ),
        click.option(
            "--regime",
            type=click.Choice(REGIMES),
            default="default",
            show_default=True,
            help="Synthetic market regime: BTC-like (default), an i.i.d. random walk, or a "
            "random walk whose next 5m return loads on taker imbalance (planted).",
        ),
        click.option(
            "--now",
            "now_text",
            metavar="ISO",
            help="The server clock's UTC time: frozen there unless `serve --speed` runs it "
            "from there (default: the real clock).",
        ),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def build_market(
    *,
    data_dir: Path | None,
    synthetic: bool,
    seed: int,
    start: str | None,
    end: str | None,
    symbols: str | None,
    default_symbols: str,
    now_us: int | None,
    regime: str = "default",
    horizon_us: int = 0,
) -> MarketData:
    """The market the options describe; every mistake is a click error with a clear message.

    Without --end a synthetic market ends `horizon_us` after now (or --now): a server whose
    clock runs needs bars ahead of where it starts.
    """
    if (data_dir is None) == (not synthetic):
        raise click.UsageError("give exactly one of --data DIR or --synthetic")
    if data_dir is not None:
        if start or end or symbols or regime != "default":
            raise click.UsageError(
                "--start, --end, --symbols and --regime only apply to --synthetic"
            )
        try:
            market: MarketData = RealDataMarket(data_dir)
        except (RealDataError, OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read recorded data: {exc}") from None
        market.seed = seed
        return market
    chosen = _csv_choice("--symbols", symbols or default_symbols, tuple(PROFILES))
    moment_us = now_us if now_us is not None else real_now_us()
    end_us = _moment("--end", end)
    history_end = end_us if end_us is not None else moment_us
    if end_us is None:
        end_us = moment_us + horizon_us
    start_us = _moment("--start", start)
    if start_us is None:
        start_us = (
            (history_end - _DEFAULT_HISTORY // timedelta(microseconds=1)) // US_PER_DAY * US_PER_DAY
        )
    if start_us >= end_us:
        raise click.BadParameter("must be before --end (or before now)", param_hint="--start")
    try:
        return SyntheticMarket(seed, start_us, end_us, symbols=chosen, regime=regime)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="0 = any free port.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@market_options("BTCUSDT,ETHUSDT")
@click.option(
    "--speed",
    type=float,
    callback=_speed,
    metavar="X",
    help="Run the server clock X times as fast as the wall clock (> 0; 1 = real time), from "
    "--now or the real now. Without it, --now freezes the clock.",
)
@click.option(
    "--faults",
    metavar="SPEC",
    help="Fault rates, e.g. 429=0.1,5xx=0.05,truncate=0.02,slow=0.01,drop=0.01.",
)
@click.option(
    "--retry-after", type=click.FloatRange(min=0), default=1.0, show_default=True,
    help="Retry-After seconds sent with injected 429s.",
)  # fmt: skip
@click.option(
    "--slow-delay", type=click.FloatRange(min=0), default=35.0, show_default=True,
    help="Seconds a 'slow' fault stalls before answering.",
)  # fmt: skip
@click.option(
    "--ban-seconds", type=click.FloatRange(min=0), default=120.0, show_default=True,
    help="Length of the 418 ban for ignoring a Retry-After.",
)  # fmt: skip
@click.option(
    "--banned-for", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Start already banned for this many seconds.",
)  # fmt: skip
def serve_command(
    port: int,
    host: str,
    data_dir: Path | None,
    synthetic: bool,
    seed: int,
    start: str | None,
    end: str | None,
    symbols: str | None,
    regime: str,
    now_text: str | None,
    speed: float | None,
    faults: str | None,
    retry_after: float,
    slow_delay: float,
    ban_seconds: float,
    banned_for: float,
) -> None:
    """Serve Binance's spot and futures REST paths and its data archive on HTTP.

    Prints one line, the base URL, then serves until Ctrl-C or SIGTERM. Point both the spot
    and the futures base URLs (and the archive base URL) at it.

    The clock: real time by default; --now T freezes it at T; --now T --speed X starts it at
    T and runs it X times as fast (--speed X alone starts at the real now). Without --end, a
    synthetic market whose clock runs extends a wall day's worth of market time ahead (7 to
    90 days); a recorded market (--data) ends where its files end. Past a market's end the
    clock runs on and no new bar appears.

    \b
    Example: btcfs replay serve --synthetic --seed 7 --start 2024-01-01 --faults 429=0.05
    Example: btcfs replay serve --synthetic --now 2024-06-01T00:00:00Z --speed 10
    """
    try:
        spec = FaultSpec.parse(faults)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    now_us = _moment("--now", now_text)
    market = build_market(
        data_dir=data_dir,
        synthetic=synthetic,
        seed=seed,
        start=start,
        end=end,
        symbols=symbols,
        default_symbols="BTCUSDT,ETHUSDT",
        now_us=now_us,
        regime=regime,
        horizon_us=0 if now_us is not None and speed is None else running_horizon_us(speed or 1),
    )
    server = ReplayServer(
        market,
        host=host,
        port=port,
        faults=spec,
        seed=seed,
        now=now_us,
        speed=speed,
        retry_after=retry_after,
        slow_delay=slow_delay,
        ban_seconds=ban_seconds,
        banned_for=banned_for,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        url = server.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(url)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("export-archive")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write data/... into (created if missing).",
)
@market_options("BTCUSDT")
@click.option(
    "--datasets",
    default=",".join(DATASETS),
    show_default=True,
    help="Comma-separated datasets to write.",
)
@click.option(
    "--intervals",
    default="1m",
    show_default=True,
    help="Kline intervals to write (comma-separated).",
)
@click.option(
    "--granularity",
    default="daily,monthly",
    show_default=True,
    help="daily, monthly or both.",
)
def export_archive_command(
    out: Path,
    data_dir: Path | None,
    synthetic: bool,
    seed: int,
    start: str | None,
    end: str | None,
    symbols: str | None,
    regime: str,
    now_text: str | None,
    datasets: str,
    intervals: str,
    granularity: str,
) -> None:
    """Write the data.binance.vision layout (zips + .CHECKSUM) the server would serve.

    Files land under OUT/data/... exactly as under the server's /data/... URLs: only days
    that are over and months whose every day has data, as the real archive publishes them.

    \b
    Example: btcfs replay export-archive --out arch --synthetic --start 2024-01-01 --end 2024-02-01
    """
    chosen = _csv_choice("--datasets", datasets, tuple(DATASETS))
    chosen_intervals = _csv_choice("--intervals", intervals, ARCHIVE_INTERVALS)
    chosen_granularity = _csv_choice("--granularity", granularity, ("daily", "monthly"))
    now_us = _moment("--now", now_text)
    market = build_market(
        data_dir=data_dir,
        synthetic=synthetic,
        seed=seed,
        start=start,
        end=end,
        symbols=symbols,
        default_symbols="BTCUSDT",
        now_us=now_us,
        regime=regime,
    )
    archive = Archive(MarketView(market))
    moment = now_us if now_us is not None else real_now_us()
    files = [
        file
        for dataset in chosen
        for symbol in market.symbols
        for file in archive.files(dataset, symbol, moment, chosen_intervals, chosen_granularity)
    ]
    try:
        count, size = export(archive, out, files, moment)
    except OSError as exc:
        raise click.ClickException(f"cannot write under {out}: {exc}") from None
    click.echo(f"wrote {count} files ({size / 1e6:.1f} MB) under {out}")


COMMANDS = (serve_command, export_archive_command)


@click.group("replay")
def replay_group() -> None:
    """Offline replay server speaking the vendors' wire formats."""


for _command in COMMANDS:
    replay_group.add_command(_command)

"""Secrets: with dummy vendor keys and an admin token in the environment, a whole demo run
(`scripts/demo.py --no-serve`: replay -> ingest -> dbt -> train -> publish -> API check) and
an ingest with `--debug` leave no trace of any key. Every file under the data, target and log
folders is scanned (gzip and zip members decompressed, Parquet and DuckDB values decoded),
and so is everything the processes printed, for each key as is and URL-encoded.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pyarrow.parquet as pq

from drills._common import (
    BIN,
    DATASETS,
    NOW,
    REPO,
    Context,
    Record,
    cli_env,
    ingest_all,
    ingest_config,
    market,
    run,
)
from ingest.vendors import VENDORS
from replay import ReplayServer

NAME = "secrets"
TITLE = "no key in any log, raw page, Parquet file, report or error"
#: Distinctive dummy values; some carry characters that URL-encoding changes.
KEYS = {
    "COINGLASS_API_KEY": "cgK3y-canary-7f3a9c1e",
    "FRED_API_KEY": "fredcanary0b5d2e8a4c6f1a3b",
    "ALPHA_VANTAGE_API_KEY": "AVCANARY+9c1e/7f3a",
    "COINAPI_KEY": "coinapi-canary-4e2d=8b1c",
    "CQ_TOKEN": "cq.canary.token/51ab+e9",
    "BTCFS_ADMIN_TOKEN": "admin-canary-token-3c7e9a",
}


def demo_keys() -> dict[str, str]:
    """The keys scripts/demo.py gives each vendor in place of the caller's (`vendor_env`)."""
    return {f"{spec.env_key} (demo)": f"demo-{spec.name}-key" for spec in VENDORS.values()}


def needles() -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for name, value in {**KEYS, **demo_keys()}.items():
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            out[form.encode()] = name
    return out


def _texts(path: Path) -> list[bytes]:
    """The file's bytes, plus what it holds decoded where bytes alone could hide a value."""
    data = path.read_bytes()
    out = [data]
    name = path.name
    try:
        if name.endswith(".gz"):
            out.append(gzip.decompress(data))
        elif name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                out += [archive.read(member) for member in archive.namelist()]
        elif name.endswith(".parquet"):
            table = pq.read_table(path)
            out.append(str(table.schema.metadata).encode())
            out.append(str(table.to_pylist()).encode())
        elif name.endswith(".duckdb"):
            con = duckdb.connect(str(path), read_only=True)
            try:
                tables = con.execute(
                    "select table_schema, table_name from information_schema.tables"
                ).fetchall()
                for schema, table in tables:
                    rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()  # noqa: S608
                    out.append(str(rows).encode())
            finally:
                con.close()
    except Exception as exc:  # an undecodable file is still scanned as bytes
        out.append(f"(not decoded: {exc})".encode())
    return out


def scan(folders: list[Path]) -> tuple[Counter[str], Counter[str], list[str]]:
    """(files per type, bytes per type, hits as 'path: KEY')."""
    files: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    hits: list[str] = []
    wanted = needles()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            kind = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
            # Hash-named files (dbt's, the registry's) would each make a "type" of their own.
            kind = kind if 1 < len(kind) <= 9 else "(other)"
            files[kind] += 1
            sizes[kind] += path.stat().st_size
            for text in _texts(path):
                for needle, key in wanted.items():
                    if needle in text:
                        hits.append(f"{path}: {key}")
    return files, sizes, sorted(set(hits))


def drill(ctx: Context) -> Record:
    record = Record(NAME, TITLE)
    data_dir = ctx.work / "data"
    outputs = ctx.work / "output"
    outputs.mkdir(parents=True, exist_ok=True)
    env = cli_env(
        data_dir,
        DBT_TARGET_PATH=str(ctx.work / "target"),
        DBT_LOG_PATH=str(ctx.work / "logs"),
        DBT_PROFILES_DIR=str(REPO / "profiles"),
        CI="true",
        **KEYS,
    )
    record.tried_(
        f"dummy values for {', '.join(KEYS)} in the environment; scripts/demo.py sets its own "
        f"vendor keys ({', '.join(demo_keys().values())}): all are looked for"
    )
    with ReplayServer(market(2), now=NOW) as url:
        config = ingest_config(ctx.work / "ingest.yml", 2, DATASETS, vendors=tuple(VENDORS))
        vendor_urls = {spec.base_url_env: url for spec in VENDORS.values()}
        # Its own data folder: the demo's 80 days end today, these two days in March 2026.
        debug_env = {**env, **vendor_urls, "BTCFS_DATA_DIR": str(ctx.work / "data-debug")}
        debug = run([*ingest_all(url, config), "--debug"], debug_env)
    (outputs / "ingest-debug.out").write_text(debug.stdout + debug.stderr)
    record.expect(
        debug.returncode == 0,
        f"`btcfs ingest all --debug` (2 days, Binance and {', '.join(VENDORS) or 'no other'} "
        f"vendors, all at the replay server): exit {debug.returncode}",
    )
    if debug.returncode != 0:
        record.found_((debug.stdout + debug.stderr)[-1500:])
    if not ctx.quick:
        demo_env = {k: v for k, v in env.items() if k != "BTCFS_NOW"}
        demo = run([str(BIN / "python"), "scripts/demo.py", "--no-serve"], demo_env, timeout=3600)
        (outputs / "demo.out").write_text(demo.stdout + demo.stderr)
        record.expect(demo.returncode == 0, f"`scripts/demo.py --no-serve` exit {demo.returncode}")
        if demo.returncode != 0:
            record.found_((demo.stdout + demo.stderr)[-1500:])
    # The scanner's own check: a planted key, URL-encoded inside a gzip member, must be found.
    planted = ctx.work / "control" / "planted.json.gz"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(gzip.compress(quote(KEYS["ALPHA_VANTAGE_API_KEY"], safe="").encode()))
    record.expect(
        scan([planted.parent])[2] == [f"{planted}: ALPHA_VANTAGE_API_KEY"],
        "the scanner finds a planted key (URL-encoded, inside gzip)",
    )
    folders = [
        p
        for p in (
            data_dir,
            ctx.work / "data-debug",
            ctx.work / "target",
            ctx.work / "logs",
            outputs,
        )
        if p.exists()
    ]
    files, sizes, hits = scan(folders)
    record.found_(
        f"{sum(files.values())} files ({sum(sizes.values()) / 2**20:.1f} MiB) scanned for "
        f"{len(needles())} needles ({len(KEYS) + len(demo_keys())} keys, raw and URL-encoded)"
    )
    for kind, count in sorted(files.items(), key=lambda item: -sizes[item[0]]):
        record.found_(f"  {kind:<16} {count:>6} files {sizes[kind] / 2**20:>9.2f} MiB")
    record.expect(not hits, f"{len(hits)} hits")
    for hit in hits[:20]:
        record.found_(f"  HIT {hit}")
    record.figures = {
        "files": dict(files),
        "bytes": dict(sizes),
        "hits": hits[:100],
    }
    return record

"""The vendored front-end files (api/static/vendor) are the ones recorded in its README:
every script and stylesheet there has its sha256 listed, and matches it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "api" / "static" / "vendor"
_SUM = re.compile(r"^([0-9a-f]{64})  (\S+)$", re.MULTILINE)


def recorded() -> dict[str, str]:
    return {path: digest for digest, path in _SUM.findall((VENDOR / "README.md").read_text())}


def test_every_vendored_script_and_stylesheet_matches_its_recorded_sha256() -> None:
    sums = recorded()
    served = sorted(
        str(path.relative_to(VENDOR))
        for path in VENDOR.rglob("*")
        if path.suffix in (".js", ".css", ".mjs", ".map", ".html")
    )
    assert served, "no vendored files found"
    assert sorted(sums) == served, "README.md must list exactly the vendored scripts and styles"
    for name, digest in sums.items():
        actual = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert actual == digest, f"{name}: sha256 {actual}, README.md records {digest}"

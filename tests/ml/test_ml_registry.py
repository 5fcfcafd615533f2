"""Registry: atomic versions, stages, promote/rollback, fingerprints from manifests and dbt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml import registry
from ml.errors import GateError, RegistryError
from tests.ml.mlframes import isolate


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path / "data")


def add(store: registry.Registry, passed: bool, model: str = "m") -> registry.VersionInfo:
    def write(folder: Path) -> None:
        (folder / registry.MODEL_FILE).write_bytes(b"model")

    return store.register(model, {"gates": {"passed": passed, "failures": ["rank_ic"]}}, write)


def test_versions_are_numbered_and_complete(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)
    first, second = add(store, True), add(store, False)
    assert (first.version, second.version) == ("v0001", "v0002")
    assert (first.stage, second.stage) == ("candidate", "rejected")
    assert json.loads((second.path / registry.METADATA_FILE).read_text())["version"] == "v0002"
    assert (second.path / registry.MODEL_FILE).read_bytes() == b"model"
    assert not list((tmp_path / "m").glob(".incoming-*"))
    assert store.models() == ["m"] and [v.version for v in store.versions("m")] == [
        "v0001",
        "v0002",
    ]


def test_a_model_name_holds_one_symbols_versions(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)

    def write(folder: Path) -> None:
        (folder / registry.MODEL_FILE).write_bytes(b"model")

    store.register("btcusdt_5m", {"symbols": ["BTCUSDT"]}, write)
    store.register("btcusdt_5m", {"symbols": ["BTCUSDT"]}, write)
    with pytest.raises(RegistryError, match="btcusdt_5m holds versions trained on BTCUSDT, not"):
        store.register("btcusdt_5m", {"symbols": ["ETHUSDT"]}, write)
    assert [v.version for v in store.versions("btcusdt_5m")] == ["v0001", "v0002"]
    assert not list((tmp_path / "btcusdt_5m").glob(".incoming-*"))
    assert store.symbols_of("btcusdt_5m") == ["BTCUSDT"] and store.symbols_of("new") is None
    # A version from before `symbols` was recorded counts by its `symbol`.
    store.register("old", {"symbol": "ETHUSDT"}, write)
    store.check_symbols("old", ["ETHUSDT"])
    with pytest.raises(RegistryError, match="old holds versions trained on ETHUSDT"):
        store.check_symbols("old", ["BTCUSDT"])
    pinned = {p.model: p.symbols for p in registry.pin_models(tmp_path)}
    assert pinned == {"btcusdt_5m": ["BTCUSDT"], "old": ["ETHUSDT"]}


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)

    def broken(folder: Path) -> None:
        (folder / "model.cbm").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.register("m", {}, broken)
    assert store.versions("m") == [] and not list((tmp_path / "m").iterdir())


def test_promote_and_rollback(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)
    v1, v2, v3 = add(store, True), add(store, True), add(store, False)
    assert store.production("m") is None
    assert store.get("m").version == "v0002"  # no production: the newest candidate
    with pytest.raises(RegistryError, match="no production version to roll back"):
        store.rollback("m")
    store.promote("m", v1.version)
    with pytest.raises(RegistryError, match="first production version"):
        store.rollback("m")
    store.promote("m", v2.version)
    with pytest.raises(RegistryError, match="already production"):
        store.promote("m", v2.version)
    with pytest.raises(GateError, match="did not pass its gates"):
        store.promote("m", v3.version)
    assert store.promote("m", v3.version, force=True).stage == "production"
    assert store.rollback("m").version == "v0002"
    assert store.rollback("m").version == "v0001"
    assert store.get("m").stage == "production"
    actions = [(h["action"], h["version"]) for h in store.history("m")]
    assert actions == [
        ("promote", "v0001"), ("promote", "v0002"), ("promote", "v0003"),
        ("rollback", "v0002"), ("rollback", "v0001"),
    ]  # fmt: skip
    assert store.history("m")[2]["forced"] is True


def test_unknown_models_and_versions(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path)
    with pytest.raises(RegistryError, match="run `btcfs train` first"):
        store.get("m")
    add(store, True)
    with pytest.raises(RegistryError, match=r"no version v0009 \(versions: v0001\)"):
        store.get("m", "v0009")
    with pytest.raises(RegistryError, match="invalid model name"):
        store.register("../escape", {}, lambda folder: None)


@pytest.mark.parametrize("name", [".", "..", ".hidden", "../outside", "a/b", "", "x" * 101])
def test_a_model_name_is_one_folder_inside_the_registry(tmp_path: Path, name: str) -> None:
    store = registry.Registry(tmp_path / "registry")
    (tmp_path / "v0001").mkdir()  # what `..` + v0001 would reach
    (tmp_path / "v0001" / registry.METADATA_FILE).write_text("{}")
    for call in (
        lambda: add(store, True, model=name),
        lambda: store.get(name, "v0001"),
        lambda: store.promote(name, "v0001"),
        lambda: store.rollback(name),
        lambda: store.versions(name),
    ):
        with pytest.raises(RegistryError, match="invalid model name"):
            call()
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").iterdir())


def test_a_version_is_a_version_name_never_a_path(tmp_path: Path) -> None:
    store = registry.Registry(tmp_path / "registry")
    add(store, True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / registry.METADATA_FILE).write_text('{"leak": true}')
    for version in ("../../secret", "v0001/..", "../m/v0001", "latest"):
        with pytest.raises(RegistryError, match="invalid version"):
            store.get("m", version)


def test_lake_fingerprint_follows_the_manifests(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    part = lake / "binance" / "spot_klines" / "symbol=BTCUSDT" / "date=2025-01-01"
    part.mkdir(parents=True)
    (part / "MANIFEST.json").write_text(json.dumps({"data_sha256": "aa", "rows": 1}))
    quarantine = lake / "_quarantine" / "x"
    quarantine.mkdir(parents=True)
    (quarantine / "MANIFEST.json").write_text(json.dumps({"data_sha256": "zz"}))
    first = registry.lake_fingerprint(lake)
    assert first["partitions"] == 1 and first["sha256"]
    (part / "MANIFEST.json").write_text(json.dumps({"data_sha256": "bb", "rows": 1}))
    assert registry.lake_fingerprint(lake)["sha256"] != first["sha256"]
    assert registry.lake_fingerprint(tmp_path / "none") == {"sha256": None, "partitions": 0}


def test_dbt_fingerprint(tmp_path: Path) -> None:
    assert registry.dbt_fingerprint(tmp_path)["invocation_id"] is None
    (tmp_path / "run_results.json").write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": "abc-123", "generated_at": "2025-01-01T00:00:00Z"},
                "args": {"which": "build"},
                "results": [{"status": "pass"}, {"status": "pass"}, {"status": "success"}],
            }
        )
    )
    fingerprint = registry.dbt_fingerprint(tmp_path)
    assert fingerprint["invocation_id"] == "abc-123" and fingerprint["command"] == "build"
    assert fingerprint["statuses"] == {"pass": 2, "success": 1}


def test_git_revision_of_this_repo() -> None:
    revision = registry.git_revision(Path(__file__).resolve().parents[2])
    assert revision["revision"] is None or len(revision["revision"]) == 40

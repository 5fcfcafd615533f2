"""The one YAML config reader: each package's ConfigError, one line, no Python objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import errors
from core.config import load_mapping
from ingest.errors import ConfigError as IngestConfigError
from ml.errors import ConfigError as MLConfigError


@pytest.mark.parametrize("error", [IngestConfigError, MLConfigError])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("a: [\n", "is not valid YAML"),
        ("!!python/object/apply:os.system ['true']\n", "is not valid YAML"),
    ],
)
def test_a_bad_config_raises_the_callers_config_error(
    tmp_path: Path, error: type[errors.ConfigError], text: str, message: str
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(error, match=message) as caught:
        load_mapping(path, error)
    assert isinstance(caught.value, errors.ConfigError)
    assert isinstance(caught.value, errors.BtcfsError)
    assert "\n" not in str(caught.value).split(": ", 1)[0]


def test_an_empty_config_is_an_empty_mapping_and_a_missing_one_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty.yml").write_text("")
    assert load_mapping(tmp_path / "empty.yml") == {}
    with pytest.raises(errors.ConfigError, match="not found"):
        load_mapping(tmp_path / "missing.yml")

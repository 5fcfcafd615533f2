"""The HttpClient's settings as value objects: refused when nonsensical, and a vendor's reach
the client `build_client` makes for it."""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import httpx
import pytest

from ingest import ClientConfig, HttpClient, RetryPolicy, WeightBudget
from ingest.errors import ConfigError, VendorAuthError, VendorHTTPError
from ingest.vendors import VENDORS
from ingest.vendors.base import build_client

KEY = "cfg-KEY-3b9e1d7a5c-do-not-leak"


@pytest.mark.parametrize("field", ["max_retries", "max_rate_limit_retries", "max_connect_retries"])
def test_a_negative_retry_count_is_refused(field: str) -> None:
    with pytest.raises(ConfigError, match="retry counts must not be negative"):
        RetryPolicy(**{field: -1})


@pytest.mark.parametrize("field", ["backoff_base", "backoff_max"])
@pytest.mark.parametrize("value", [-0.5, math.nan])
def test_a_negative_backoff_is_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match="must not be negative"):
        RetryPolicy(**{field: value})


def test_zero_retries_and_zero_backoff_are_fine() -> None:
    policy = RetryPolicy(max_retries=0, max_connect_retries=0, backoff_base=0, backoff_max=0)
    assert policy.max_retries == 0 and policy.backoff_max == 0


@pytest.mark.parametrize("headroom", [0, -0.1, 1.01, math.nan])
def test_a_headroom_outside_0_to_1_is_refused(headroom: float) -> None:
    with pytest.raises(ConfigError, match=r"weight_headroom must be in \(0, 1\]"):
        WeightBudget(per_minute=100, headroom=headroom)


def test_a_full_headroom_is_fine() -> None:
    assert WeightBudget(per_minute=100, headroom=1.0).headroom == 1.0


@pytest.mark.parametrize("concurrency", [0, -1])
def test_max_concurrency_below_one_is_refused(concurrency: int) -> None:
    with pytest.raises(ConfigError, match=f"max_concurrency must be at least 1, got {concurrency}"):
        ClientConfig(max_concurrency=concurrency)


def test_replace_validates_too() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        dataclasses.replace(ClientConfig(), max_concurrency=0)
    with pytest.raises(ConfigError, match="retry counts"):
        dataclasses.replace(RetryPolicy(), max_retries=-3)


def test_settings_are_frozen_and_defaults_are_not_shared_by_mistake() -> None:
    config = ClientConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_concurrency = 8  # type: ignore[misc]
    assert config == ClientConfig()
    assert config.retry == RetryPolicy() and config.weight == WeightBudget()
    assert config.auth_statuses == (401,) and config.weight.per_minute is None


def test_a_client_without_config_uses_the_defaults() -> None:
    with HttpClient("https://api.test", vendor="plain") as client:
        assert client.config == ClientConfig()
        assert client.weight_budget_1m is None


def test_a_vendor_specs_config_reaches_the_client_build_client_makes() -> None:
    spec = VENDORS["coinapi"]
    assert spec.client.auth_statuses == (401, 403) and spec.client.max_concurrency == 2
    with build_client(spec, KEY, base_url="https://coinapi.test") as client:
        assert client.config is spec.client
        assert client.config.auth_statuses == (401, 403)
        assert client.config.max_concurrency == 2


def test_coinglass_weight_budget_reaches_its_client() -> None:
    spec = VENDORS["coinglass"]
    with build_client(spec, KEY, base_url="https://coinglass.test") as client:
        assert client.config.weight == WeightBudget(
            per_minute=30,
            headroom=0.8,
            used_header="API-KEY-USE-LIMIT",
            limit_header="API-KEY-MAX-LIMIT",
        )
        assert client.weight_budget_1m == 30


def test_a_config_given_to_build_client_replaces_the_specs() -> None:
    spec = VENDORS["coinapi"]
    override = dataclasses.replace(spec.client, retry=RetryPolicy(max_retries=1))
    with build_client(spec, KEY, base_url="https://coinapi.test", config=override) as client:
        assert client.config.retry.max_retries == 1
        assert client.config.auth_statuses == (401, 403) and client.config.max_concurrency == 2


def test_coinapi_403_is_an_auth_error_through_build_client_and_not_by_default() -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "no privilege"})

    factory = partial(HttpClient, transport=httpx.MockTransport(forbidden))
    with (
        build_client(VENDORS["coinapi"], KEY, client_factory=factory) as client,
        pytest.raises(VendorAuthError, match="check the API key"),
    ):
        client.get("/v1/ohlcv")
    with (
        HttpClient(
            "https://api.test", vendor="plain", transport=httpx.MockTransport(forbidden)
        ) as plain,
        pytest.raises(VendorHTTPError) as info,
    ):
        plain.get("/x")
    assert not isinstance(info.value, VendorAuthError) and info.value.status == 403

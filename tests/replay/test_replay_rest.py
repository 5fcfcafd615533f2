"""Binance REST semantics of the replay server, over real HTTP on loopback (synthetic market)."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import httpx
import pytest

from replay import ReplayServer, SyntheticMarket, parse_moment

NOW = "2024-02-20T10:30:30Z"
NOW_MS = parse_moment(NOW) // 1000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def ms(moment: str) -> int:
    return parse_moment(moment) // 1000


def klines(client: httpx.Client, path: str = "/api/v3/klines", **params: object) -> list[list]:
    response = client.get(path, params={"symbol": "BTCUSDT", "interval": "1h", **params})
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


# -- ping, time, exchangeInfo ----------------------------------------------------------------


def test_ping_and_time_on_both_bases(client: httpx.Client) -> None:
    assert client.get("/api/v3/ping").json() == {}
    assert client.get("/fapi/v1/ping").json() == {}
    assert client.get("/api/v3/time").json() == {"serverTime": NOW_MS}
    assert client.get("/fapi/v1/time").json() == {"serverTime": NOW_MS}
    micros = client.get("/api/v3/time", headers={"X-MBX-TIME-UNIT": "MICROSECOND"}).json()
    assert micros == {"serverTime": NOW_MS * 1000}


def test_exchange_info_lists_symbols_and_limits(client: httpx.Client) -> None:
    spot = client.get("/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in spot["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert spot["rateLimits"][0]["limit"] == 6000
    assert client.get("/fapi/v1/exchangeInfo").json()["rateLimits"][0]["limit"] == 2400


# -- spot klines --------------------------------------------------------------------------------


def test_kline_row_shape(client: httpx.Client) -> None:
    rows = klines(client, startTime=ms("2024-01-10T00:00:00Z"), limit=3)
    assert len(rows) == 3
    for row in rows:
        assert len(row) == 12
        open_time, o, h, low, c, volume, close_time, quote, trades, taker, taker_quote, ignore = row
        assert (
            isinstance(open_time, int) and isinstance(close_time, int) and isinstance(trades, int)
        )
        assert close_time == open_time + HOUR_MS - 1
        for text in (o, h, low, c, volume, quote, taker, taker_quote):
            assert isinstance(text, str) and len(text.split(".")[1]) == 8  # "104645.15000000"
        assert ignore == "0"
        assert (
            Decimal(low) <= min(Decimal(o), Decimal(c)) <= max(Decimal(o), Decimal(c)) <= Decimal(h)
        )
        assert Decimal(taker) <= Decimal(volume)
        vwap = Decimal(quote) / Decimal(volume)
        assert Decimal(low) <= vwap <= Decimal(h)
    assert [r[0] for r in rows] == [ms("2024-01-10T00:00:00Z") + i * HOUR_MS for i in range(3)]


def test_resampling_matches_the_one_minute_bars(client: httpx.Client) -> None:
    start = ms("2024-01-15T00:00:00Z")
    minutes = klines(client, interval="1m", startTime=start, limit=60)
    [hour] = klines(client, interval="1h", startTime=start, limit=1)
    assert hour[1] == minutes[0][1]
    assert Decimal(hour[2]) == max(Decimal(m[2]) for m in minutes)
    assert Decimal(hour[3]) == min(Decimal(m[3]) for m in minutes)
    assert hour[4] == minutes[-1][4]
    for index in (5, 7, 9, 10):
        assert Decimal(hour[index]) == sum(Decimal(m[index]) for m in minutes)
    assert hour[8] == sum(m[8] for m in minutes)
    five = klines(client, interval="5m", startTime=start, limit=12)
    assert [r[0] for r in five] == [start + i * 5 * MINUTE_MS for i in range(12)]


@pytest.mark.parametrize("interval", ["3m", "15m", "30m", "2h", "4h", "6h", "8h", "12h", "1d"])
def test_every_fixed_interval_is_aligned(client: httpx.Client, interval: str) -> None:
    rows = klines(client, interval=interval, startTime=ms("2024-01-03T01:00:00Z"), limit=5)
    step = rows[1][0] - rows[0][0]
    assert all(r[0] % step == 0 for r in rows)
    assert all(r[6] == r[0] + step - 1 for r in rows)


def test_weekly_and_monthly_bars(client: httpx.Client) -> None:
    weeks = klines(client, interval="1w", startTime=ms("2024-01-01T00:00:00Z"), limit=2)
    assert [w[0] for w in weeks] == [
        ms("2024-01-01T00:00:00Z"),
        ms("2024-01-08T00:00:00Z"),
    ]  # Mondays
    months = klines(client, interval="1M", limit=5)
    assert [m[0] for m in months] == [ms("2024-01-01T00:00:00Z"), ms("2024-02-01T00:00:00Z")]
    assert months[0][6] == ms("2024-02-01T00:00:00Z") - 1
    assert klines(client, interval="1s", limit=5) == []  # valid interval, no data at that grain


def test_limit_default_and_maximum(client: httpx.Client) -> None:
    assert len(klines(client, interval="1m")) == 500
    assert len(klines(client, interval="1m", limit=1000)) == 1000
    for bad in (0, 1001):
        response = client.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": bad}
        )
        assert error(response) == (400, -1130, "Data sent for paramter 'limit' is not valid.")


def test_start_and_end_are_inclusive(client: httpx.Client) -> None:
    start, end = ms("2024-01-05T00:00:00Z"), ms("2024-01-05T05:00:00Z")
    rows = klines(client, startTime=start, endTime=end)
    assert [r[0] for r in rows] == [start + i * HOUR_MS for i in range(6)]
    later = klines(client, startTime=start + 1, endTime=end)
    assert later[0][0] == start + HOUR_MS  # a bar is selected by its open time
    capped = klines(client, startTime=start, endTime=end, limit=2)
    assert [r[0] for r in capped] == [start, start + HOUR_MS]  # the first `limit`, ascending


def test_end_time_only_gives_the_last_bars_up_to_it(client: httpx.Client) -> None:
    end = ms("2024-01-20T12:34:00Z")
    rows = klines(client, endTime=end, limit=4)
    assert [r[0] for r in rows] == [ms("2024-01-20T12:00:00Z") - i * HOUR_MS for i in (3, 2, 1, 0)]


def test_without_times_the_latest_bars_end_with_the_open_one(client: httpx.Client) -> None:
    rows = klines(client, interval="1m", limit=3)
    assert [r[0] for r in rows] == [ms("2024-02-20T10:28:00Z") + i * MINUTE_MS for i in range(3)]
    open_bar = rows[-1]
    assert open_bar[6] > NOW_MS  # still open: close time in the future, the loader drops it
    assert all(r[6] < NOW_MS for r in rows[:-1])
    hourly = klines(client, limit=2)
    assert hourly[-1][0] == ms("2024-02-20T10:00:00Z") and hourly[-1][6] > NOW_MS


def test_open_bar_values_are_partial_and_consistent(synthetic_market: SyntheticMarket) -> None:
    later = "2024-02-20T11:00:00Z"
    params = {
        "symbol": "BTCUSDT",
        "interval": "1h",
        "startTime": ms("2024-02-20T10:00:00Z"),
        "limit": 1,
    }
    with ReplayServer(synthetic_market, now=NOW) as url:
        [partial] = httpx.get(f"{url}/api/v3/klines", params=params).json()
    with ReplayServer(synthetic_market, now=later) as url:
        [full] = httpx.get(f"{url}/api/v3/klines", params=params).json()
    assert partial[0] == full[0] and partial[1] == full[1]
    assert Decimal(partial[5]) < Decimal(full[5]) and partial[8] < full[8]
    assert Decimal(full[3]) <= Decimal(partial[3]) and Decimal(partial[2]) <= Decimal(full[2])
    low, high = Decimal(partial[3]), Decimal(partial[2])
    assert low <= min(Decimal(partial[1]), Decimal(partial[4]))
    assert max(Decimal(partial[1]), Decimal(partial[4])) <= high
    assert Decimal(partial[9]) <= Decimal(partial[5])
    assert full[6] == partial[6] == ms("2024-02-20T11:00:00Z") - 1


def test_no_bar_opens_after_now(client: httpx.Client) -> None:
    assert klines(client, interval="1m", startTime=NOW_MS + MINUTE_MS) == []


def test_microsecond_time_unit(client: httpx.Client) -> None:
    start_us = parse_moment("2024-01-05T00:00:00Z")
    response = client.get(
        "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": start_us, "limit": 2},
        headers={"X-MBX-TIME-UNIT": "MICROSECOND"},
    )
    rows = response.json()
    assert [r[0] for r in rows] == [start_us, start_us + 60_000_000]
    assert rows[0][6] == start_us + 60_000_000 - 1
    in_ms = klines(client, interval="1m", startTime=start_us // 1000, limit=2)
    assert [r[1:6] for r in in_ms] == [r[1:6] for r in rows]


def test_eth_is_a_scaled_market(client: httpx.Client) -> None:
    rows = klines(client, symbol="ETHUSDT", interval="1d", limit=30)
    closes = [float(r[4]) for r in rows]
    assert min(closes) > 1_500 and max(closes) < 5_000


# -- futures klines ---------------------------------------------------------------------------


def test_futures_klines_print_contract_precision(client: httpx.Client) -> None:
    rows = klines(client, "/fapi/v1/klines", startTime=ms("2024-01-10T00:00:00Z"), limit=2)
    open_time, o, h, low, c, volume, close_time, quote, _, taker, taker_quote, ignore = rows[0]
    assert [len(x.split(".")[1]) for x in (o, h, low, c)] == [2, 2, 2, 2]
    assert len(volume.split(".")[1]) == 3 and len(quote.split(".")[1]) == 5
    assert Decimal(taker) <= Decimal(volume) and Decimal(taker_quote) <= Decimal(quote)
    assert close_time == open_time + HOUR_MS - 1 and ignore == "0"
    spot = klines(client, startTime=ms("2024-01-10T00:00:00Z"), limit=1)[0]
    basis = Decimal(c) / Decimal(spot[4]) - 1
    assert abs(basis) < Decimal("0.005")


def test_futures_limit_max_1500(client: httpx.Client) -> None:
    path = "/fapi/v1/klines"
    assert len(klines(client, path, interval="1m")) == 500
    assert len(klines(client, path, interval="1m", limit=1500)) == 1500
    response = client.get(path, params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1501})
    assert error(response)[:2] == (400, -1130)


def test_continuous_klines_are_the_perpetual(client: httpx.Client) -> None:
    params = {"interval": "1h", "startTime": ms("2024-01-10T00:00:00Z"), "limit": 3}
    perp = klines(client, "/fapi/v1/klines", **params)
    response = client.get(
        "/fapi/v1/continuousKlines",
        params={"pair": "BTCUSDT", "contractType": "PERPETUAL", **params},
    )
    assert response.json() == perp
    quarter = client.get(
        "/fapi/v1/continuousKlines",
        params={"pair": "BTCUSDT", "contractType": "CURRENT_QUARTER", **params},
    )
    assert error(quarter)[:2] == (400, -1130)
    missing = client.get("/fapi/v1/continuousKlines", params={"pair": "BTCUSDT", **params})
    assert error(missing)[:2] == (400, -1102)
    no_pair = client.get(
        "/fapi/v1/continuousKlines", params={"contractType": "PERPETUAL", **params}
    )
    assert error(no_pair) == (
        400,
        -1102,
        "Mandatory parameter 'pair' was not sent, was empty/null, or malformed.",
    )


def test_mark_price_and_premium_index_klines(client: httpx.Client) -> None:
    start = ms("2024-01-10T00:00:00Z")
    mark = klines(client, "/fapi/v1/markPriceKlines", startTime=start, limit=3)
    premium = klines(client, "/fapi/v1/premiumIndexKlines", startTime=start, limit=3)
    perp = klines(client, "/fapi/v1/klines", startTime=start, limit=3)
    for m, p, q in zip(mark, premium, perp, strict=True):
        assert m[0] == p[0] == q[0]
        assert [m[5], m[7], m[9], m[10], m[11]] == ["0"] * 5
        assert [p[5], p[7], p[9], p[10], p[11]] == ["0"] * 5
        assert m[8] == 3600 and p[8] == 720  # samples per hour: 1 a second, 1 every 5 s
        assert abs(Decimal(m[4]) / Decimal(q[4]) - 1) < Decimal("0.001")
        for value in p[1:5]:
            assert abs(Decimal(value)) < Decimal("0.01") and len(value.split(".")[1]) == 8


# -- funding ------------------------------------------------------------------------------------


def funding(client: httpx.Client, **params: object) -> list[dict]:
    response = client.get("/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_funding_rows_and_limits(client: httpx.Client) -> None:
    rows = funding(client)
    assert len(rows) == 100  # default limit: the most recent 100
    assert set(rows[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert all(isinstance(r["fundingTime"], int) for r in rows)
    assert all(isinstance(r["fundingRate"], str) and isinstance(r["markPrice"], str) for r in rows)
    times = [r["fundingTime"] for r in rows]
    assert times == sorted(times) and times[-1] <= NOW_MS
    assert len(funding(client, limit=1000)) == 151  # every event up to now
    assert error(client.get("/fapi/v1/fundingRate", params={"limit": 1001}))[:2] == (400, -1130)


def test_funding_start_end_inclusive_and_paging_forward(client: httpx.Client) -> None:
    first = funding(client, startTime=0, limit=3)
    assert first[0]["fundingTime"] // 1000 * 1000 == ms("2024-01-01T08:00:00Z")
    exact = funding(client, startTime=first[1]["fundingTime"], endTime=first[2]["fundingTime"])
    assert exact == first[1:3]
    all_symbols = client.get("/fapi/v1/fundingRate", params={"startTime": 0, "limit": 4}).json()
    assert {r["symbol"] for r in all_symbols} == {"BTCUSDT", "ETHUSDT"}


# -- open interest ------------------------------------------------------------------------------


def open_interest(client: httpx.Client, **params: object) -> httpx.Response:
    return client.get(
        "/futures/data/openInterestHist", params={"symbol": "BTCUSDT", "period": "5m", **params}
    )


def test_open_interest_rows_and_periods(client: httpx.Client) -> None:
    rows = open_interest(client).json()
    assert len(rows) == 30  # default limit
    assert set(rows[0]) == {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
    assert rows[-1]["timestamp"] == ms("2024-02-20T10:30:00Z")
    assert all(b["timestamp"] - a["timestamp"] == 300_000 for a, b in pairwise(rows))
    price = Decimal(rows[-1]["sumOpenInterestValue"]) / Decimal(rows[-1]["sumOpenInterest"])
    assert 60_000 < price < 110_000
    daily = open_interest(client, period="1d", limit=500).json()
    assert all(r["timestamp"] % 86_400_000 == 0 for r in daily)
    assert daily[0]["timestamp"] == ms("2024-01-21T00:00:00Z")  # only the latest 30 days
    assert len(open_interest(client, limit=500).json()) == 500
    assert error(open_interest(client, limit=501))[:2] == (400, -1130)


def test_open_interest_only_the_latest_30_days(client: httpx.Client) -> None:
    ok = open_interest(client, startTime=ms("2024-01-21T00:00:00Z"), limit=2).json()
    assert [r["timestamp"] for r in ok] == [ms("2024-01-21T00:00:00Z"), ms("2024-01-21T00:05:00Z")]
    old = open_interest(client, startTime=ms("2024-01-20T23:55:00Z"))
    assert error(old) == (400, -1130, "parameter 'startTime' is invalid.")
    end_only = open_interest(client, endTime=ms("2024-01-22T00:00:00Z"), limit=3).json()
    assert [r["timestamp"] for r in end_only][-1] == ms("2024-01-22T00:00:00Z")


def test_open_interest_parameter_errors(client: httpx.Client) -> None:
    missing = client.get("/futures/data/openInterestHist", params={"symbol": "BTCUSDT"})
    assert error(missing)[:2] == (400, -1102)
    assert error(open_interest(client, period="1m"))[:2] == (400, -1130)


# -- errors -------------------------------------------------------------------------------------


def mandatory(name: str) -> tuple[int, str]:
    return -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def illegal(name: str, legal: str = "^[0-9]{1,20}$") -> tuple[int, str]:
    return -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."


def not_valid(name: str) -> tuple[int, str]:
    return -1130, f"Data sent for paramter '{name}' is not valid."


BTC_1H = {"symbol": "BTCUSDT", "interval": "1h"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"interval": "1h"}, mandatory("symbol")),
        ({"symbol": "", "interval": "1h"}, mandatory("symbol")),
        ({"symbol": "DOGEUSDT", "interval": "1h"}, (-1121, "Invalid symbol.")),
        ({"symbol": "btcusdt", "interval": "1h"}, illegal("symbol", "^[A-Z0-9-_.]{1,20}$")),
        ({"symbol": "BTCUSDT"}, mandatory("interval")),
        ({"symbol": "BTCUSDT", "interval": "1H"}, (-1120, "Invalid interval.")),
        ({"symbol": "BTCUSDT", "interval": "2m"}, (-1120, "Invalid interval.")),
        ({**BTC_1H, "startTime": "abc"}, illegal("startTime")),
        ({**BTC_1H, "endTime": "-5"}, illegal("endTime")),
        ({**BTC_1H, "startTime": "99999999999999999999"}, not_valid("startTime")),
        ({**BTC_1H, "startTime": 2, "endTime": 1}, (-1023, "Start time is greater than end time.")),
        ({**BTC_1H, "limit": "ten"}, illegal("limit")),
        ({**BTC_1H, "timeZone": "+08:00"}, not_valid("timeZone")),
    ],
)
def test_spot_errors(client: httpx.Client, params: dict, expected: tuple[int, str]) -> None:
    response = client.get("/api/v3/klines", params=params)
    assert error(response) == (400, *expected)
    assert response.headers["content-type"].startswith("application/json")


def test_hostile_input_never_breaks_the_server(client: httpx.Client) -> None:
    far = klines(client, startTime="9000000000000000000", endTime="9000000000000000000")
    assert far == []
    month_far = klines(client, interval="1M", endTime="9999999999999999")
    assert month_far[-1][0] == ms("2024-02-01T00:00:00Z")
    assert client.get("/api/v3/klines", params={"symbol": "\x00" * 50}).status_code == 400
    duplicate = client.get("/api/v3/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=1h")
    assert error(duplicate)[:2] == (400, -1101)
    unknown = client.get("/api/v3/nope")
    assert unknown.status_code == 404 and unknown.json()["code"] == -1000
    assert client.post("/api/v3/klines").status_code == 405
    long_query = client.get("/api/v3/ping", params={"x": "y" * 20_000})
    assert long_query.status_code == 200
    assert client.get("/api/v3/ping").json() == {}  # still serving


# -- weights ------------------------------------------------------------------------------------


def used(response: httpx.Response) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


def test_weights_per_endpoint(client: httpx.Client) -> None:
    spot = [
        used(client.get("/api/v3/ping")),
        used(client.get("/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1")),
    ]
    assert spot == [1, 3]  # ping 1, klines 2
    fapi = []
    for limit in (1, 99, 100, 499, 500, 1000, 1001, 1500):
        response = client.get(
            "/fapi/v1/klines",
            params={"symbol": "BTCUSDT", "interval": "1d", "limit": limit, "startTime": 0},
        )
        fapi.append(used(response))
    deltas = [b - a for a, b in pairwise([0, *fapi])]
    assert deltas == [1, 1, 2, 2, 5, 5, 10, 10]
    before = fapi[-1]
    assert used(open_interest(client)) == before  # weight 0
    assert used(client.get("/fapi/v1/fundingRate")) == before + 1
    assert used(client.get("/api/v3/ping")) == 4  # a separate budget per base


def test_weight_over_budget_gives_429_then_resets(
    synthetic_market: SyntheticMarket, wall_clock
) -> None:
    wall_clock.now = 1_800_000_000.0  # the start of a minute
    with (
        ReplayServer(synthetic_market, now=NOW, wall_clock=wall_clock) as url,
        httpx.Client(base_url=url) as http,
    ):
        params = {
            "symbol": "BTCUSDT",
            "interval": "1d",
            "limit": 1001,
            "startTime": 0,
            "endTime": 1,
        }
        statuses = [http.get("/fapi/v1/klines", params=params).status_code for _ in range(240)]
        assert set(statuses) == {200}  # 240 x 10 = the 2400 fapi budget
        wall_clock.advance(20)
        over = http.get("/fapi/v1/klines", params=params)
        assert over.status_code == 429 and over.json()["code"] == -1003
        assert over.headers["Retry-After"] == "40"  # until the minute ends
        assert used(over) == 2410
        assert http.get("/api/v3/ping").status_code == 200  # spot has its own budget
        wall_clock.advance(40)
        again = http.get("/fapi/v1/klines", params=params)
        assert again.status_code == 200 and used(again) == 10
        assert http.get("/__replay/stats").json()["rate_limited"] == 1


def test_a_request_the_server_will_not_keep_alive_says_connection_close(
    client: httpx.Client,
) -> None:
    refused = client.post("/api/v3/klines")
    assert refused.status_code == 405
    assert refused.headers["connection"] == "close"
    # The client drops that connection instead of reusing it: the next requests all succeed.
    assert all(client.get("/api/v3/ping").status_code == 200 for _ in range(20))

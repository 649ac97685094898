"""The synthetic Polygon flat-file generator: layout, calendars, schema, realism, determinism."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from scipy.stats import kurtosis

from data.calendar import (
    monthly_option_expiry,
    nyse_sessions,
    session_on_or_before,
    third_friday,
    weekly_option_expiries,
)
from data.flatfiles import (
    HEADER,
    AssetClass,
    Timeframe,
    flat_file_relpath,
    parse_flat_file_path,
    parse_future_ticker,
    parse_occ_ticker,
)
from data.synth import (
    OPTION_HALF_SPREAD_FRACTION,
    OPTION_TICK,
    RISK_FREE_RATE,
    generate,
    option_half_spread,
)

NY = ZoneInfo("America/New_York")
JULY = (dt.date(2024, 7, 1), dt.date(2024, 7, 12))  # July 3 half day, July 4 holiday
NOV = (dt.date(2024, 11, 25), dt.date(2024, 11, 29))  # Thanksgiving, then a half day
STOCKS, OPTIONS, FOREX, FUTURES = AssetClass.STOCKS, AssetClass.OPTIONS, AssetClass.FOREX, AssetClass.FUTURES
MINUTE, DAY = Timeframe.MINUTE, Timeframe.DAY
D = dt.date


@pytest.fixture(scope="module")
def july(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("july")
    generate(root, start=JULY[0], end=JULY[1], seed=7)
    return root


@pytest.fixture(scope="module", params=[None, "zrce:1"], ids=["null", "planted"])
def july_planted_too(request: pytest.FixtureRequest, july: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """July as it is, and with the zrce edge planted: options and futures must follow the planted SPY."""
    if request.param is None:
        return july
    root = tmp_path_factory.mktemp("july_zrce")
    generate(root, start=JULY[0], end=JULY[1], seed=7, plant=request.param)
    return root


@pytest.fixture(scope="module")
def november(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nov")
    generate(root, tickers=["SPY", "C:EURUSD", "MGC", "MES"], start=NOV[0], end=NOV[1], seed=11)
    return root


def read(root: Path, asset: AssetClass, timeframe: Timeframe, day: dt.date) -> pl.DataFrame:
    df = pl.read_csv(root / flat_file_relpath(asset, timeframe, day))
    return df.with_columns(t=pl.from_epoch("window_start", "ns").dt.convert_time_zone("America/New_York"))


def file_dates(root: Path, asset: AssetClass, timeframe: Timeframe) -> list[dt.date]:
    found = [parse_flat_file_path(str(p)) for p in root.rglob("*.csv.gz")]
    return sorted(f.date for f in found if f and f.asset_class is asset and f.timeframe is timeframe)


def ny(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NY)


def hhmm(frame: pl.DataFrame) -> pl.Series:
    return frame["t"].dt.hour().cast(pl.Int32) * 60 + frame["t"].dt.minute().cast(pl.Int32)


# ----------------------------------------------------------------------------- layout and calendars


def test_a_file_per_session(july: Path, november: Path) -> None:
    sessions = [D(2024, 7, d) for d in (1, 2, 3, 5, 8, 9, 10, 11, 12)]
    for asset in (STOCKS, OPTIONS, FUTURES):
        for timeframe in (MINUTE, DAY):
            assert file_dates(july, asset, timeframe) == sessions, (asset, timeframe)
    # Forex trades Sunday 17:00 to Friday 17:00 New York: a Sunday file, none on Saturday.
    forex = [D(2024, 7, d) for d in (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12)]
    assert file_dates(july, FOREX, MINUTE) == file_dates(july, FOREX, DAY) == forex
    assert file_dates(november, STOCKS, MINUTE) == [D(2024, 11, d) for d in (25, 26, 27, 29)]
    assert file_dates(november, FOREX, MINUTE) == [D(2024, 11, d) for d in (25, 26, 27, 28, 29)]


def test_exact_header_and_column_types(july: Path) -> None:
    for asset in AssetClass:
        for timeframe in Timeframe:
            path = july / flat_file_relpath(asset, timeframe, D(2024, 7, 2))
            text = gzip.decompress(path.read_bytes()).decode()
            assert text.splitlines()[0] == HEADER
            rows = list(csv.reader(io.StringIO(text)))[1:]
            assert rows, path
            for ticker, volume, *prices, window_start, transactions in rows[:: max(1, len(rows) // 500)]:
                assert ticker and volume.isdigit() and window_start.isdigit() and transactions.isdigit()
                assert all(float(p) > 0 for p in prices)
            frame = pl.read_csv(path)
            assert frame.schema == pl.Schema(
                {
                    "ticker": pl.String, "volume": pl.Int64, "open": pl.Float64, "close": pl.Float64,
                    "high": pl.Float64, "low": pl.Float64, "window_start": pl.Int64, "transactions": pl.Int64,
                }
            )
            assert (frame["high"] >= frame[["open", "close", "low"]].max_horizontal()).all()
            assert (frame["low"] <= frame[["open", "close"]].min_horizontal()).all()
            assert (frame["volume"] >= frame["transactions"]).all() and (frame["transactions"] >= 1).all()
            # Polygon sorts each file by ticker, then time.
            assert frame.sort(["ticker", "window_start"], maintain_order=True).equals(frame)


def test_price_decimals(july: Path) -> None:
    def decimals(frame: pl.DataFrame) -> int:
        values = pl.concat([frame[c] for c in ("open", "high", "low", "close")]).to_numpy()
        return next(k for k in range(9) if np.allclose(values, np.round(values, k), rtol=0, atol=1e-9))

    stocks = read(july, STOCKS, MINUTE, D(2024, 7, 2))
    assert 2 < decimals(stocks) <= 4  # whole cents with a few sub-penny prints
    assert decimals(read(july, STOCKS, DAY, D(2024, 7, 2)).select(["open", "high", "low", "close"])) <= 4
    assert decimals(read(july, OPTIONS, MINUTE, D(2024, 7, 2))) == 2
    forex = read(july, FOREX, MINUTE, D(2024, 7, 2))
    assert decimals(forex.filter(pl.col("ticker") == "C:EURUSD")) == 5
    assert decimals(forex.filter(pl.col("ticker") == "C:XAUUSD")) == 2
    futures = read(july, FUTURES, MINUTE, D(2024, 7, 2))
    quarters = (futures.select(["open", "high", "low", "close"]).to_numpy() / 0.25) % 1
    assert np.allclose(quarters, 0) and (futures["ticker"] == "MESU24").all()


def test_window_start_is_the_new_york_minute(july: Path) -> None:
    day = D(2024, 7, 2)
    stocks = read(july, STOCKS, MINUTE, day)
    assert (stocks["window_start"] % 60_000_000_000 == 0).all()
    assert (stocks["t"].dt.date() == day).all()
    spy = stocks.filter(pl.col("ticker") == "SPY")
    assert spy["t"].min() >= ny(day, 4) and spy["t"].max() <= ny(day, 19, 59)
    first = spy.filter(pl.col("t") >= ny(day, 9, 30)).row(0, named=True)
    assert first["window_start"] == int(dt.datetime(2024, 7, 2, 13, 30, tzinfo=dt.UTC).timestamp()) * 10**9
    options = read(july, OPTIONS, MINUTE, day)
    assert options["t"].min() >= ny(day, 9, 30) and options["t"].max() <= ny(day, 15, 59)
    for asset in (STOCKS, OPTIONS, FUTURES, FOREX):
        daily = read(july, asset, DAY, day)
        assert (daily["t"] == ny(day, 0)).all(), asset


def test_half_day_and_holiday(july: Path, november: Path) -> None:
    for root, day in ((july, D(2024, 7, 3)), (november, D(2024, 11, 29))):
        spy = read(root, STOCKS, MINUTE, day).filter(pl.col("ticker") == "SPY")
        minutes = hhmm(spy)
        regular = spy.filter((minutes >= 570) & (minutes < 780))
        assert hhmm(regular).max() == 12 * 60 + 59 and regular.height >= 200
        assert minutes.max() <= 16 * 60 + 59 and minutes.max() >= 16 * 60  # after hours end at 17:00
        # The day bar closes with the regular session's last minute, not with after-hours prints.
        day_bar = read(root, STOCKS, DAY, day).filter(pl.col("ticker") == "SPY").row(0, named=True)
        assert day_bar["close"] == regular["close"][-1]
        assert day_bar["volume"] == spy["volume"].sum()
        options = read(root, OPTIONS, MINUTE, day)
        assert hhmm(options).max() == 12 * 60 + 59
        futures = read(root, FUTURES, MINUTE, day)
        assert hhmm(futures.filter(pl.col("t").dt.date() == day)).max() <= 13 * 60 + 14  # CME closes 13:15
    # CME trades the holiday's morning for the next trade date and halts at 13:00.
    after_holiday = read(july, FUTURES, MINUTE, D(2024, 7, 5))
    holiday = after_holiday.filter(pl.col("t").dt.date() == D(2024, 7, 4))
    assert holiday.height > 600 and hhmm(holiday.filter(pl.col("t") < ny(D(2024, 7, 4), 17))).max() <= 12 * 60 + 59
    assert after_holiday["t"].min() == ny(D(2024, 7, 3), 18)


def test_globex_hours_and_daily_break(july: Path) -> None:
    futures = read(july, FUTURES, MINUTE, D(2024, 7, 9))
    minutes = hhmm(futures)
    assert futures["t"].min() == ny(D(2024, 7, 8), 18) and futures["t"].max() == ny(D(2024, 7, 9), 16, 59)
    assert ((minutes < 17 * 60) | (minutes >= 18 * 60)).all()
    monday = read(july, FUTURES, MINUTE, D(2024, 7, 8))
    assert monday["t"].min() == ny(D(2024, 7, 7), 18)  # Sunday evening open


def test_forex_week_and_rollover(july: Path) -> None:
    sunday = read(july, FOREX, MINUTE, D(2024, 7, 7))
    assert sunday["t"].min() >= ny(D(2024, 7, 7), 17)
    friday = read(july, FOREX, MINUTE, D(2024, 7, 5))
    assert friday["t"].max() < ny(D(2024, 7, 5), 17)
    week = pl.concat([read(july, FOREX, MINUTE, D(2024, 7, d)) for d in (8, 9, 10, 11)])
    eur = week.filter(pl.col("ticker") == "C:EURUSD")
    minutes = hhmm(eur)
    rollover = eur.filter((minutes >= 16 * 60 + 55) & (minutes < 17 * 60 + 10))
    london = eur.filter((minutes >= 4 * 60) & (minutes < 11 * 60))
    assert rollover["volume"].mean() < 0.3 * london["volume"].mean()
    assert len(rollover) < 0.99 * 4 * 15  # some rollover minutes have no quotes at all
    assert (week["volume"] == week["transactions"]).all()  # quote counts


def test_futures_track_the_etf(july_planted_too: Path) -> None:
    july, day = july_planted_too, D(2024, 7, 10)
    spy = read(july, STOCKS, MINUTE, day).filter(pl.col("ticker") == "SPY").select("window_start", spy="close")
    mes = read(july, FUTURES, MINUTE, day).select("window_start", mes="close")
    joined = spy.join(mes, on="window_start")
    ratio = joined["mes"] / joined["spy"]
    assert joined.height > 300 and ratio.min() > 10.0 and ratio.max() < 10.2  # x10 plus carry to September
    assert ratio.std() < 0.01


def test_futures_roll(tmp_path: Path) -> None:
    # September 2024: MESU24 expires on the 20th, volume moves to MESZ24 around the 12th.
    generate(tmp_path, tickers=["MES", "MGC"], start=D(2024, 9, 3), end=D(2024, 9, 27), options=False)
    days = file_dates(tmp_path, FUTURES, DAY)
    daily = pl.concat([read(tmp_path, FUTURES, DAY, d).with_columns(day=pl.lit(d)) for d in days])
    mes = daily.filter(pl.col("ticker").str.starts_with("MES"))
    contracts = mes.group_by("day").agg(pl.col("ticker").sort()).sort("day")
    by_day = dict(zip(contracts["day"].to_list(), contracts["ticker"].to_list(), strict=True))
    assert by_day[D(2024, 9, 3)] == ["MESU24"]
    assert by_day[D(2024, 9, 12)] == ["MESU24", "MESZ24"]
    assert by_day[D(2024, 9, 20)] == ["MESU24", "MESZ24"]
    assert by_day[D(2024, 9, 23)] == ["MESZ24"]
    z = mes.filter(pl.col("ticker") == "MESZ24").sort("day")["volume"].to_numpy()
    assert z[0] < z[4] < z[8]  # rising volume into the roll
    u = mes.filter(pl.col("ticker") == "MESU24").sort("day")
    assert u.filter(pl.col("day") == D(2024, 9, 19))["volume"][0] < 0.2 * u["volume"][0]
    # Gold: even months; October trades until the end of September, then December.
    gold = daily.filter(pl.col("ticker").str.starts_with("MGC"))
    assert set(gold["ticker"]) == {"MGCV24", "MGCZ24"}
    for ticker in gold["ticker"]:
        assert parse_future_ticker(ticker)[0] == "MGC"


# ----------------------------------------------------------------------------- options


def option_frame(root: Path, day: dt.date) -> pl.DataFrame:
    frame = read(root, OPTIONS, MINUTE, day)
    contracts = [parse_occ_ticker(t) for t in frame["ticker"].unique().to_list()]
    table = pl.DataFrame(
        {
            "ticker": [c.ticker for c in contracts],
            "underlying": [c.underlying for c in contracts],
            "expiry": [c.expiry for c in contracts],
            "right": [c.right for c in contracts],
            "strike": [c.strike for c in contracts],
        }
    )
    return frame.join(table, on="ticker")


def test_zero_dte_every_spy_session_and_expiry_schedules(july: Path) -> None:
    for day in file_dates(july, OPTIONS, MINUTE):
        chain = option_frame(july, day)
        spy = chain.filter(pl.col("underlying") == "SPY")
        expiries = sorted(set(spy["expiry"]))
        assert expiries[0] == day  # 0DTE every session
        assert (chain["expiry"] >= day).all()
        assert (chain["t"] < chain["expiry"].map_elements(lambda e: ny(e, 16), return_dtype=pl.Datetime("us", "America/New_York"))).all()
        # Near-the-money 0DTE SPY trades in most minutes.
        zero = spy.filter(pl.col("expiry") == day)
        per_contract = zero.group_by("ticker").len()["len"]
        assert per_contract.max() >= 0.7 * hhmm(zero).n_unique()
        amd = sorted(set(chain.filter(pl.col("underlying") == "AMD")["expiry"]))
        assert amd and all(e.weekday() == 4 for e in amd), amd
        assert monthly_option_expiry(2024, 8) in amd
        assert set(chain["underlying"]) == {"SPY", "QQQ", "AMD"}
        strikes = sorted(set(zero["strike"]))
        assert all(float(k).is_integer() for k in strikes)  # SPY: $1 strikes near the money
    amd_strikes = set(option_frame(july, D(2024, 7, 2)).filter(pl.col("underlying") == "AMD")["strike"])
    assert any(k % 1 == 0.5 for k in amd_strikes)  # $2.50 increments away from the money


def test_put_call_parity(july_planted_too: Path) -> None:
    july, checked = july_planted_too, 0
    for day in (D(2024, 7, 2), D(2024, 7, 3)):
        chain = option_frame(july, day)
        keys = ["underlying", "expiry", "strike", "window_start"]
        calls = chain.filter(pl.col("right") == "C").select(*keys, C="close")
        puts = chain.filter(pl.col("right") == "P").select(*keys, P="close")
        spot = read(july, STOCKS, MINUTE, day).select(underlying="ticker", window_start="window_start", S="close")
        pairs = calls.join(puts, on=keys).join(spot, on=["underlying", "window_start"])
        closes = nyse_sessions(day, day + dt.timedelta(days=70))["close"]
        close_ns = {ts.date(): c.value for ts, c in closes.items()}
        expiry_ns = pairs["expiry"].map_elements(close_ns.__getitem__, return_dtype=pl.Int64).to_numpy()
        years = (expiry_ns - (pairs["window_start"].to_numpy() + 60_000_000_000)) / (365 * 86_400e9)
        lhs = (pairs["C"] - pairs["P"]).to_numpy()
        rhs = pairs["S"].to_numpy() - pairs["strike"].to_numpy() * np.exp(-RISK_FREE_RATE * years)

        # Each close is the mid -/+ the mid's half-spread, rounded to the tick; the mid is at most
        # (close + tick/2) / (1 - fraction), which bounds its half-spread from the observed close.
        def half_spread(close: pl.Series) -> np.ndarray:
            return option_half_spread((close.to_numpy() + OPTION_TICK / 2) / (1 - OPTION_HALF_SPREAD_FRACTION))

        tolerance = half_spread(pairs["C"]) + half_spread(pairs["P"]) + OPTION_TICK + 1e-9
        deviation = np.abs(lhs - rhs)
        assert (deviation <= tolerance).all(), deviation[deviation > tolerance][:5]
        assert deviation.mean() > 0.005  # trades at the bid or the ask, not at the model price
        checked += len(pairs)
    assert checked > 1000


def test_option_day_bars_match_minutes(july: Path) -> None:
    day = D(2024, 7, 8)
    minutes = read(july, OPTIONS, MINUTE, day)
    daily = read(july, OPTIONS, DAY, day)
    expected = minutes.group_by("ticker").agg(
        pl.col("volume").sum(), pl.col("high").max(), pl.col("low").min(), pl.col("open").first(),
        pl.col("close").last(), pl.col("transactions").sum(),
    )
    got = daily.select(expected.columns).sort("ticker")
    assert got.equals(expected.sort("ticker"))


# ----------------------------------------------------------------------------- realism


def regular_minutes(root: Path, ticker: str) -> pl.DataFrame:
    days = file_dates(root, STOCKS, MINUTE)
    frame = pl.concat([read(root, STOCKS, MINUTE, d) for d in days]).filter(pl.col("ticker") == ticker)
    minutes = hhmm(frame)
    return frame.filter((minutes >= 570) & (minutes < 960)).with_columns(m=hhmm(frame.filter((minutes >= 570) & (minutes < 960))))


def minute_returns(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ws = frame["window_start"].to_numpy()
    r = np.diff(np.log(frame["close"].to_numpy()))
    adjacent = np.diff(ws) == 60_000_000_000
    return r[adjacent], ws[1:][adjacent]


def test_volatility_clustering_and_fat_tails(july: Path) -> None:
    spy = regular_minutes(july, "SPY")
    r, _ = minute_returns(spy)
    assert len(r) > 3000
    a = np.abs(r)
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.05
    assert kurtosis(r, fisher=False) > 3


def test_u_shaped_volume(july: Path) -> None:
    spy = regular_minutes(july, "SPY")
    per_minute = spy.group_by("m").agg(pl.col("volume").mean()).sort("m")
    v = per_minute["volume"].to_numpy()
    midday = v[(per_minute["m"] >= 12 * 60) & (per_minute["m"] < 14 * 60)].mean()
    assert v[:30].mean() > 1.3 * midday
    assert v[-30:].mean() > 1.3 * midday


def test_cross_section(july: Path) -> None:
    returns = {}
    for ticker in ("SPY", "QQQ", "AMD"):
        r, ws = minute_returns(regular_minutes(july, ticker))
        returns[ticker] = pl.DataFrame({"ws": ws, ticker: r})
    joined = returns["SPY"].join(returns["QQQ"], on="ws").join(returns["AMD"], on="ws")
    spy, qqq, amd = (joined[t].to_numpy() for t in ("SPY", "QQQ", "AMD"))
    assert np.corrcoef(spy, qqq)[0, 1] > 0.6  # a common market factor
    assert np.cov(amd, spy)[0, 1] / spy.var() > 1.3  # AMD is high beta
    assert amd.std() > 2 * spy.std()


def test_overnight_gaps_exist(july: Path) -> None:
    days = file_dates(july, STOCKS, DAY)
    daily = pl.concat([read(july, STOCKS, DAY, d) for d in days]).filter(pl.col("ticker") == "AMD")
    gaps = np.log(daily["open"].to_numpy()[1:] / daily["close"].to_numpy()[:-1])
    assert np.abs(gaps).max() > 0.002


# ----------------------------------------------------------------------------- determinism and API


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.csv.gz"))}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    args = dict(tickers=["SPY", "C:EURUSD", "MES"], start=D(2024, 7, 1), end=D(2024, 7, 2))
    first = generate(tmp_path / "a", seed=5, **args)
    generate(tmp_path / "b", seed=5, **args)
    generate(tmp_path / "c", seed=6, **args)
    a, b, c = snapshot(tmp_path / "a"), snapshot(tmp_path / "b"), snapshot(tmp_path / "c")
    assert a == b and len(a) == first.files == 4 * 2 * 2
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_a_ticker_does_not_depend_on_its_companions(tmp_path: Path) -> None:
    generate(tmp_path / "one", tickers=["SPY"], start=D(2024, 7, 1), end=D(2024, 7, 1), options=False)
    generate(tmp_path / "two", tickers=["AMD", "SPY"], start=D(2024, 7, 1), end=D(2024, 7, 1), options=False)
    one = read(tmp_path / "one", STOCKS, MINUTE, D(2024, 7, 1))
    two = read(tmp_path / "two", STOCKS, MINUTE, D(2024, 7, 1)).filter(pl.col("ticker") == "SPY")
    assert one.equals(two)
    assert not (tmp_path / "one" / "us_options_opra").exists()


def test_report_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = generate(
        tmp_path, tickers=["QQQ", "C:USDJPY", "ZZZT"], start=D(2024, 7, 2), end=D(2024, 7, 2), progress=True
    )
    assert "synth" in capsys.readouterr().err  # the tqdm bar
    assert report.files == len(list(tmp_path.rglob("*.csv.gz"))) == 6
    assert set(report.rows) == {"stocks", "options", "forex"} and all(v > 0 for v in report.rows.values())
    assert report.rows["stocks"] == read(tmp_path, STOCKS, MINUTE, D(2024, 7, 2)).height
    assert report.day_rows["options"] == read(tmp_path, OPTIONS, DAY, D(2024, 7, 2)).height
    summary = report.summary()
    assert "6 files" in summary and "options" in summary and len(summary.splitlines()) >= 4
    generic = read(tmp_path, STOCKS, DAY, D(2024, 7, 2)).filter(pl.col("ticker") == "ZZZT")
    assert generic.height == 1
    jpy = read(tmp_path, FOREX, MINUTE, D(2024, 7, 2))
    assert 100 < jpy["close"].mean() < 200


@pytest.mark.parametrize(
    ("tickers", "message"),
    [(["SPY", "C:EUR"], "C:EURUSD"), (["spy", "$$$"], "not a stock ticker"), ([" "], "no tickers")],
)
def test_bad_tickers(tmp_path: Path, tickers: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, tickers=tickers, start=D(2024, 7, 1), end=D(2024, 7, 1))


def test_bad_dates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="after end"):
        generate(tmp_path, start=D(2024, 7, 2), end=D(2024, 7, 1))


def test_expiry_calendar() -> None:
    assert third_friday(2024, 3) == D(2024, 3, 15)
    assert monthly_option_expiry(2025, 4) == D(2025, 4, 17)  # Good Friday 2025 -> Thursday
    assert session_on_or_before(D(2024, 7, 4)) == D(2024, 7, 3)
    weeklies = weekly_option_expiries(D(2024, 3, 18), D(2024, 4, 12))
    assert weeklies == [D(2024, 3, 22), D(2024, 3, 28), D(2024, 4, 5), D(2024, 4, 12)]

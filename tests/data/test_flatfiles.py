"""The Polygon flat-file layout: paths, OCC option tickers, futures tickers, contract tables."""

from __future__ import annotations

import datetime as dt

import pytest

from data.flatfiles import (
    COLUMNS,
    CONTRACT_MONTHS,
    HEADER,
    MONTH_CODES,
    TICK_SIZES,
    AssetClass,
    FlatFile,
    OptionContract,
    Timeframe,
    flat_file_relpath,
    forex_ticker,
    future_ticker,
    occ_ticker,
    parse_flat_file_path,
    parse_future_ticker,
    parse_occ_ticker,
)


def test_header_is_polygons() -> None:
    assert HEADER == "ticker,volume,open,close,high,low,window_start,transactions"
    assert HEADER.split(",") == list(COLUMNS)


def test_occ_ticker_exact_format() -> None:
    assert occ_ticker("SPY", dt.date(2024, 3, 7), "C", 510) == "O:SPY240307C00510000"
    assert occ_ticker("AMD", dt.date(2024, 7, 19), "put", 142.5) == "O:AMD240719P00142500"
    assert occ_ticker("SPX", dt.date(2025, 12, 19), "C", 6125) == "O:SPX251219C06125000"
    assert occ_ticker("F", dt.date(2024, 1, 19), "P", 0.5) == "O:F240119P00000500"


STRIKES = [0.5, 1, 2.5, 7.5, 12.125, 33, 99.5, 142.5, 500, 510, 1234.5, 5000, 99_999.5]


@pytest.mark.parametrize("strike", STRIKES)
@pytest.mark.parametrize("right", ["C", "P"])
@pytest.mark.parametrize("root", ["SPY", "QQQ", "AMD", "F", "GOOGL", "BRKB"])
def test_occ_round_trip(root: str, right: str, strike: float) -> None:
    expiry = dt.date(2024, 11, 29)
    ticker = occ_ticker(root, expiry, right, strike)
    assert len(ticker) == 2 + len(root) + 6 + 1 + 8
    contract = parse_occ_ticker(ticker)
    assert contract == OptionContract(root, expiry, right, float(strike))
    assert contract.ticker == ticker


def test_occ_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="right"):
        occ_ticker("SPY", dt.date(2024, 3, 7), "X", 500)
    with pytest.raises(ValueError, match="8-digit"):
        occ_ticker("SPY", dt.date(2024, 3, 7), "C", 100_000)
    with pytest.raises(ValueError, match="8-digit"):
        occ_ticker("SPY", dt.date(2024, 3, 7), "C", 0)
    for bad in ("SPY240307C00510000", "O:SPY240307X00510000", "O:SPY240307C0051000", "O:spy240307C00510000"):
        with pytest.raises(ValueError, match="OCC"):
            parse_occ_ticker(bad)


@pytest.mark.parametrize("root", sorted(TICK_SIZES))
def test_future_ticker_round_trip(root: str) -> None:
    for year in (2024, 2025, 2030):
        for month in range(1, 13):
            ticker = future_ticker(root, year, month)
            assert ticker == f"{root}{MONTH_CODES[month - 1]}{year % 100:02d}"
            assert parse_future_ticker(ticker) == (root, year, month)


def test_future_ticker_examples_and_errors() -> None:
    assert future_ticker("MES", 2024, 3) == "MESH24"
    assert parse_future_ticker("MGCZ24") == ("MGC", 2024, 12)
    assert parse_future_ticker("M2KU25") == ("M2K", 2025, 9)
    assert parse_future_ticker("ESM24") == ("ES", 2024, 6)
    for bad in ("MES24", "MESA24", "MESH2024", "mesh24"):
        with pytest.raises(ValueError, match="futures contract ticker"):
            parse_future_ticker(bad)


def test_futures_tables_agree() -> None:
    from spec_space.instruments import FUTURES

    assert set(TICK_SIZES) == set(FUTURES) == set(CONTRACT_MONTHS)
    assert {root: c.multiplier for root, c in FUTURES.items()} == {
        "MES": 5, "ES": 50, "MNQ": 2, "NQ": 20, "M2K": 5, "RTY": 50, "MGC": 10, "GC": 100, "MYM": 0.5, "YM": 5,
    }
    assert TICK_SIZES["MES"] == TICK_SIZES["ES"] == 0.25 and TICK_SIZES["MGC"] == 0.1 and TICK_SIZES["YM"] == 1.0
    assert CONTRACT_MONTHS["ES"] == (3, 6, 9, 12) and CONTRACT_MONTHS["GC"] == (2, 4, 6, 8, 10, 12)


@pytest.mark.parametrize("asset", list(AssetClass))
@pytest.mark.parametrize("timeframe", list(Timeframe))
def test_flat_file_path_round_trip(asset: AssetClass, timeframe: Timeframe) -> None:
    day = dt.date(2024, 7, 3)
    rel = flat_file_relpath(asset, timeframe, day)
    assert rel.endswith("/2024/07/2024-07-03.csv.gz")
    assert parse_flat_file_path(rel) == FlatFile(asset, timeframe, day)
    assert parse_flat_file_path(f"s3://flatfiles/{rel}") == FlatFile(asset, timeframe, day)
    assert parse_flat_file_path("C:\\data\\" + rel.replace("/", "\\")) == FlatFile(asset, timeframe, day)
    assert FlatFile(asset, timeframe, day).relpath == rel


def test_flat_file_paths_polygon_names() -> None:
    assert (
        flat_file_relpath(AssetClass.STOCKS, Timeframe.MINUTE, dt.date(2024, 1, 2))
        == "us_stocks_sip/minute_aggs_v1/2024/01/2024-01-02.csv.gz"
    )
    assert (
        flat_file_relpath(AssetClass.OPTIONS, Timeframe.DAY, dt.date(2024, 1, 2))
        == "us_options_opra/day_aggs_v1/2024/01/2024-01-02.csv.gz"
    )


@pytest.mark.parametrize(
    "path",
    [
        "us_stocks_sip/trades_v1/2024/07/2024-07-03.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2024/07/2024-07-03.csv",
        "crypto/minute_aggs_v1/2024/07/2024-07-03.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2024-07-03.csv.gz",
        "README.md",
    ],
)
def test_parse_flat_file_path_rejects_other_files(path: str) -> None:
    assert parse_flat_file_path(path) is None


def test_forex_ticker() -> None:
    assert forex_ticker("EURUSD") == forex_ticker("eur/usd") == forex_ticker("C:EURUSD") == "C:EURUSD"

"""The Kirkland signals parser: aliases, bad rows with line numbers, symbol normalisation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from seeds.kirkland import (
    KirklandFormatError,
    load_kirkland_signals,
    normalize_symbol,
    parse_kirkland_signals,
)


def parse(text: str, **kwargs):
    return parse_kirkland_signals(text.strip() + "\n", source="signals.csv", **kwargs)


# ------------------------------------------------------------------------------ the shipped sample


def test_sample_file_loads_good_rows_and_reports_the_two_bad_ones(repo_root: Path):
    result = load_kirkland_signals(repo_root / "seeds" / "kirkland_signals_sample.csv")
    frame = result.frame

    assert len(frame) == 38
    assert [(i.line, i.severity) for i in result.issues] == [(13, "error"), (28, "error")]
    assert "stop 5264.25 is not below entry 5244.75 for a buy" in result.issues[0].reason
    assert result.issues[1].field == "Entry Price" and result.issues[1].value == "market"
    assert "not a number" in result.issues[1].reason
    assert 13 not in set(frame["line"]) and 28 not in set(frame["line"])
    report = result.report()
    assert "38 signal(s) loaded, 2 row(s) skipped" in report and "kirkland_signals_sample.csv: line 13" in report

    assert str(frame["datetime"].dt.tz) == "America/New_York"
    assert frame["datetime"].min() >= pd.Timestamp("2024-01-02", tz="America/New_York")
    assert frame["datetime"].max() < pd.Timestamp("2024-06-29", tz="America/New_York")
    assert frame["datetime"].is_monotonic_increasing
    assert set(frame["data_ticker"]) == {"C:EURUSD", "C:XAUUSD", "MES"}
    assert set(frame["contract"].dropna()) == {"MESH24", "MESM24", "MESU24"}

    # entries sit at the sample data's prices (search data synth, seed 7) at each signal's time
    by_ticker = frame.groupby("data_ticker")["entry"]
    assert by_ticker.min()["C:EURUSD"] > 1.0 and by_ticker.max()["C:EURUSD"] < 1.2
    assert by_ticker.min()["C:XAUUSD"] > 1500 and by_ticker.max()["C:XAUUSD"] < 2600
    assert by_ticker.min()["MES"] > 4500 and by_ticker.max()["MES"] < 6000

    long = frame[frame["side"] == "long"]
    short = frame[frame["side"] == "short"]
    assert (long["stop"] < long["entry"]).all() and (long["tp1"] > long["entry"]).all()
    assert (short["stop"] > short["entry"]).all() and (short["tp1"] < short["entry"]).all()


# ------------------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    "header",
    [
        "Date,Time,Symbol,Side,Entry,Stop,TP1,TP2",
        "date,time,pair,direction,entry price,sl,tp 1,tp 2",
        "Date,Time,Instrument,Action,Price,Stop Loss,Target 1,Target 2",
        "DATE,TIME,TICKER,BUY/SELL,ENTRY_PRICE,STOP_LOSS,TAKE_PROFIT_1,TAKE_PROFIT_2",
        "Date,Time,Ticker,Type,EntryPrice,StopLoss,TakeProfit1,TakeProfit2",
    ],
)
def test_header_aliases(header: str):
    result = parse(f"{header}\n2024-03-01,09:45,EURUSD,Buy,1.0850,1.0830,1.0870,1.0890")
    assert result.issues == []
    row = result.frame.iloc[0]
    assert (row["data_ticker"], row["side"], row["entry"], row["stop"], row["tp1"], row["tp2"]) == (
        "C:EURUSD", "long", 1.0850, 1.0830, 1.0870, 1.0890)
    assert row["datetime"] == pd.Timestamp("2024-03-01 09:45", tz="America/New_York")


def test_single_datetime_column_generic_take_profit_and_optional_columns():
    result = parse(
        "Timestamp,Ticker,Side,Entry,SL,Take Profit,TF,Comment,Confidence\n"
        '2024-02-05T14:30:00Z,XAUUSD,short,2030.5,2040,2010,H1,"after CPI, fade",high'
    )
    row = result.frame.iloc[0]
    assert row["datetime"] == pd.Timestamp("2024-02-05 09:30", tz="America/New_York")  # 14:30 UTC
    assert row["tp1"] == 2010.0 and row["timeframe"] == "H1" and row["notes"] == "after CPI, fade"
    assert result.columns["tp1"] == "Take Profit" and result.ignored_columns == ["Confidence"]


def test_missing_required_column_names_file_expected_columns_and_aliases():
    with pytest.raises(KirklandFormatError) as caught:
        parse("Date,Time,Pair,Direction,Entry,TP1\n2024-03-01,09:45,EURUSD,Buy,1.085,1.087")
    message = str(caught.value)
    assert message.startswith("signals.csv: missing required column(s): stop")
    assert "Found headers: ['Date', 'Time', 'Pair', 'Direction', 'Entry', 'TP1']" in message
    assert "stop: stop, sl, stop loss" in message and "symbol: symbol, pair, instrument, ticker" in message
    assert "Target 1" in message


def test_missing_date_and_take_profit_columns_are_both_named():
    with pytest.raises(KirklandFormatError, match=r"date \(or datetime\), take-profit"):
        parse("Pair,Direction,Entry,SL\nEURUSD,Buy,1.085,1.083")


def test_ambiguous_headers_are_an_error():
    with pytest.raises(KirklandFormatError, match="'Price' and 'Entry Price' both mean 'entry'"):
        parse("Date,Time,Pair,Side,Price,Entry Price,SL,TP\n")
    with pytest.raises(KirklandFormatError, match="both mean take-profit 1"):
        parse("Date,Time,Pair,Side,Entry,SL,TP,TP1\n")
    with pytest.raises(KirklandFormatError, match="numbered"):
        parse("Date,Time,Pair,Side,Entry,SL,TP1,TP3\n")


def test_empty_file_and_missing_file(tmp_path: Path):
    with pytest.raises(KirklandFormatError, match="empty"):
        parse_kirkland_signals("\n\n", source="x.csv")
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        load_kirkland_signals(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------ bad rows


BAD_ROWS = """\
Date,Time,Pair,Direction,Entry,SL,TP1,TP2
2024-03-01,09:45,EURUSD,Buy,1.0850,1.0830,1.0870,1.0890

2024-03-01,10:00,EURUSD,Sell,1.0850,1.0830,1.0830,
2024-03-01,10:15,XAUUSD,Sell,2100,2110,2120,
2024-03-01,10:30,EURUSD,Hold,1.0850,1.0830,1.0870,
2024-13-45,10:45,EURUSD,Buy,1.0850,1.0830,1.0870,
2024-03-01,11:00,BTC-PERP-X,Buy,1.0850,1.0830,1.0870,
2024-03-01,11:15,EURUSD,Buy,1.0850,1.0830,,
2024-03-01,11:30,EURUSD,Buy,1.0850,1.0830,1.0870,1.0890,extra
2024-03-01,11:45,MESM24,Buy,5100,5090,5120,5110
2024-03-01,12:00,EURUSD,Buy,1.0850,-1,1.0870,
2024-03-01,12:15,GBPUSD,Sell,1.2650,1.2670,1.2630,1.2610
"""


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_still_load():
    result = parse(BAD_ROWS)
    errors = {i.line: i for i in result.errors}

    assert list(result.frame["line"]) == [2, 11, 13]  # line 3 is blank, line 11 only warns
    assert "stop 1.0830 is not above entry 1.0850 for a sell" in errors[4].reason
    assert "take-profit 1 2120 is not below entry 2100 for a sell" in errors[5].reason
    assert errors[6].field == "Direction" and errors[6].value == "Hold" and "buy/long or sell/short" in errors[6].reason
    assert errors[7].field == "Date" and "unrecognised date" in errors[7].reason
    assert errors[8].field == "Pair" and "unrecognised symbol" in errors[8].reason
    assert "no take-profit level" in errors[9].reason
    assert "9 fields but the header has 8" in errors[10].reason
    assert "positive" in errors[12].reason and errors[12].field == "SL"
    warning = next(i for i in result.issues if i.line == 11)
    assert warning.severity == "warning" and "not in order" in warning.reason
    assert str(errors[4]).startswith("line 4, SL='1.0830': stop") and str(errors[4]).endswith("(row skipped)")
    assert sorted(errors) == [4, 5, 6, 7, 8, 9, 10, 12]


def test_quoted_multiline_notes_keep_line_numbers_right():
    text = (
        "Date,Time,Pair,Side,Entry,SL,TP1,Notes\n"
        '2024-03-01,09:45,EURUSD,Buy,1.0850,1.0830,1.0870,"first line\nsecond line"\n'
        "2024-03-01,10:00,EURUSD,Buy,oops,1.0830,1.0870,\n"
    )
    result = parse_kirkland_signals(text, source="s.csv")
    assert result.frame.iloc[0]["notes"] == "first line\nsecond line"
    assert [i.line for i in result.errors] == [4]


# ------------------------------------------------------------------------------ dates, zones, delimiters


def test_time_formats_zone_and_dayfirst():
    text = """Date,Time,Pair,Side,Entry,SL,TP
03/08/2024,2:05 PM,EURUSD,Buy,1.09,1.08,1.10
2024-03-11,09:30:15,EURUSD,Buy,1.09,1.08,1.10
2024-06-03T10:00:00-04:00,,EURUSD,Buy,1.09,1.08,1.10"""
    frame = parse(text).frame
    assert list(frame["datetime"]) == [
        pd.Timestamp("2024-03-08 14:05", tz="America/New_York"),
        pd.Timestamp("2024-03-11 09:30:15", tz="America/New_York"),  # after the DST switch: EDT
        pd.Timestamp("2024-06-03 10:00", tz="America/New_York"),
    ]
    assert frame["datetime"].iloc[1].utcoffset() == dt.timedelta(hours=-4)

    utc = parse(text, tz="UTC").frame
    assert utc["datetime"].iloc[0] == pd.Timestamp("2024-03-08 14:05", tz="UTC")
    dayfirst = parse(text, dayfirst=True).frame
    first_row = dayfirst.set_index("line").loc[2]
    assert first_row["datetime"].date() == dt.date(2024, 8, 3)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse(text, tz="Mars/Olympus")


def test_date_only_rows_get_midnight_and_one_warning():
    result = parse("Date,Pair,Side,Entry,SL,TP\n2024-03-01,XAUUSD,Buy,2050,2040,2070\n2024-03-04,XAUUSD,Buy,2080,2070,2100")
    assert len(result.frame) == 2 and result.errors == []
    [warning] = result.warnings
    assert "2 row(s) have a date but no time" in warning.reason and warning.line == 2
    assert result.frame["datetime"].iloc[0] == pd.Timestamp("2024-03-01 00:00", tz="America/New_York")


def test_semicolon_delimiter_and_byte_order_mark(tmp_path: Path):
    path = tmp_path / "eu.csv"
    path.write_text("\ufeffDatum;Time;Symbol;Side;Entry;SL;TP1\n2024-03-01;09:45;EURUSD;Buy;1.085;1.083;1.087\n",
                    encoding="utf-8")
    with pytest.raises(KirklandFormatError, match="Datum"):  # unknown header: listed among those found
        load_kirkland_signals(path)
    path.write_text("\ufeffDate;Time;Symbol;Side;Entry;SL;TP1\n2024-03-01;09:45;EURUSD;Buy;1.085;1.083;1.087\n",
                    encoding="utf-8")
    result = load_kirkland_signals(path)
    assert len(result.frame) == 1 and result.columns["date"] == "Date"


def test_prices_with_thousands_separators_and_decimal_commas():
    text = """Date;Time;Pair;Side;Entry;SL;TP1;TP2
2024-03-01;09:45;EURUSD;Buy;1,0850;1,0830;1,0870;
2024-03-01;10:00;XAUUSD;Sell;"2,030.5";2040;$2,010;2000,5"""
    frame = parse(text).frame
    assert list(frame["entry"]) == [1.085, 2030.5]
    assert list(frame["tp1"]) == [1.087, 2010.0] and frame["tp2"].iloc[1] == 2000.5


def test_datetime_column_wins_over_separate_time_column():
    result = parse("Datetime,Time,Pair,Side,Entry,SL,TP\n2024-03-01 09:45,23:59,EURUSD,Buy,1.085,1.083,1.087")
    assert result.frame["datetime"].iloc[0] == pd.Timestamp("2024-03-01 09:45", tz="America/New_York")
    assert result.ignored_columns == ["Time"]


def test_empty_result_keeps_columns_and_dtypes():
    result = parse("Date,Time,Pair,Side,Entry,SL,TP1,TP2\n2024-03-01,09:45,EURUSD,Buy,x,1.083,1.087,")
    frame = result.frame
    assert frame.empty and list(frame.columns)[:3] == ["line", "datetime", "symbol"]
    assert str(frame["datetime"].dtype) == "datetime64[ns, America/New_York]"
    assert frame["tp2"].dtype == "float64"


# ------------------------------------------------------------------------------ symbols


@pytest.mark.parametrize(
    ("raw", "kind", "asset_class", "data_ticker", "contract"),
    [
        ("XAUUSD", "forex", "forex", "C:XAUUSD", None),
        ("eurusd", "forex", "forex", "C:EURUSD", None),
        ("GBP/USD", "forex", "forex", "C:GBPUSD", None),
        ("EURUSD.pro", "forex", "forex", "C:EURUSD", None),
        ("NAS100", "index_cfd", "futures", "MNQ", None),
        ("US30", "index_cfd", "futures", "MYM", None),
        ("US500", "index_cfd", "futures", "MES", None),
        ("MES", "future", "futures", "MES", None),
        ("MESZ24", "future", "futures", "MES", "MESZ24"),
        ("MES 12-24", "future", "futures", "MES", "MESZ24"),
        ("MES 06/2024", "future", "futures", "MES", "MESM24"),
        ("/MES DEC24", "future", "futures", "MES", "MESZ24"),
        ("MNQH25", "future", "futures", "MNQ", "MNQH25"),
        ("M2K U24", "future", "futures", "M2K", "M2KU24"),
        ("MGCZ4", "future", "futures", "MGC", "MGCZ24"),
        ("ESM24", "future", "futures", "ES", "ESM24"),
        ("MES1!", "future", "futures", "MES", None),
        ("SPY", "stock", "stocks", "SPY", None),
        ("ESPR", "stock", "stocks", "ESPR", None),  # starts like ES but is not a contract
    ],
)
def test_normalize_symbol(raw: str, kind: str, asset_class: str, data_ticker: str, contract: str | None):
    symbol = normalize_symbol(raw)
    assert (symbol.kind, symbol.asset_class.value, symbol.data_ticker, symbol.contract) == (
        kind, asset_class, data_ticker, contract)
    assert symbol.original == raw.strip()


@pytest.mark.parametrize("raw", ["", "MES 13-24", "BTC-PERP-X", "12345"])
def test_normalize_symbol_rejects(raw: str):
    with pytest.raises(ValueError):
        normalize_symbol(raw)


def test_cfd_keeps_original_symbol_in_frame():
    frame = parse("Date,Time,Pair,Side,Entry,SL,TP\n2024-03-01,09:45,NAS100,Sell,18000,18100,17800").frame
    row = frame.iloc[0]
    assert (row["symbol"], row["kind"], row["data_ticker"]) == ("NAS100", "index_cfd", "MNQ")

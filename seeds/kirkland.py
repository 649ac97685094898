"""Parser for Kirkland trade-signal CSV files (the "Signals" strategy family).

A signal row says: at this date and time, go long or short this symbol at ``entry``, with this
``stop`` and one or more take-profit levels. Files come from different exports, so headers are
matched through aliases (case, spaces, underscores and hyphens ignored): ``Pair``, ``Instrument``
or ``Ticker`` for the symbol, ``SL`` or ``Stop Loss`` for the stop, ``TP1``, ``Target 1`` or
``Take Profit 1`` for the first target, ``Direction`` or ``Action`` for the side, and so on
(``FIELD_ALIASES``).

Rows that cannot be used are reported (``ParseIssue`` with the file's line number and the reason)
and skipped; the good rows still load. A missing required column is a ``KirklandFormatError``
naming the file, the expected columns and the headers accepted for each.

The result is a **pandas** DataFrame: the consumers are pandas-based (Lumibot strategies,
exchange_calendars sessions in ``data.calendar``), and pandas keeps the tz-aware
``America/New_York`` timestamps through every operation they need. ``.frame`` converts to
polars with ``polars.from_pandas`` if wanted.

Symbols are normalised for our data store:

* forex pairs (``XAUUSD``, ``EUR/USD``, ``EURUSD.pro``) -> ``C:XAUUSD`` style tickers;
* index CFDs (``NAS100``, ``US30``, ``US500``, ``US2000``) -> the micro future used as their data
  proxy (``MNQ``, ``MYM``, ``MES``, ``M2K``), the original kept in ``symbol``;
* futures (``MES``, ``MESZ24``, ``MES 12-24``, ``/MES DEC24``) -> the root (``MES``), the contract in
  Polygon style (``MESZ24``) in ``contract`` when the month was given;
* anything else that looks like a ticker (``SPY``) -> a stock.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from data.flatfiles import MONTH_CODES, AssetClass, forex_ticker, future_ticker
from spec_space.instruments import FUTURES

DEFAULT_TZ = "America/New_York"

# ----------------------------------------------------------------------------- headers

#: Accepted headers per field, as written in real exports. Matching ignores case, spaces,
#: underscores and hyphens ("Stop_Loss" == "stop loss" == "StopLoss").
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "datetime": ("datetime", "date time", "date/time", "timestamp", "signal datetime", "entry datetime"),
    "date": ("date", "day", "trade date", "signal date", "entry date"),
    "time": ("time", "signal time", "entry time", "hour"),
    "symbol": ("symbol", "pair", "instrument", "ticker", "asset", "market", "currency pair", "contract"),
    "side": ("side", "direction", "action", "type", "signal", "order type", "buy/sell", "position", "bias"),
    "entry": ("entry", "entry price", "price", "open price", "entry level", "entry point"),
    "stop": ("stop", "sl", "stop loss", "stoploss", "stop price", "s/l", "stop level"),
    "timeframe": ("timeframe", "time frame", "tf", "interval", "chart", "period"),
    "notes": ("notes", "note", "comment", "comments", "remarks", "description"),
}
#: Take-profit headers: TP, TP1, TP 2, T/P, Target 1, Take Profit 3, TakeProfit, Profit Target 2, PT1.
_TP_HEADER = re.compile(r"^(?:tp|t/p|target|takeprofit|profittarget|pt)(?P<n>\d{0,2})$")
_TP_ALIASES_TEXT = "TP, TP1, TP2..., T/P, Target 1, Take Profit 1, Take Profit, Profit Target 2, PT1"

_REQUIRED = ("symbol", "side", "entry", "stop")


def _squash(header: str) -> str:
    return re.sub(r"[\s_\-]+", "", header.strip().lower())


_ALIAS_TO_FIELD: dict[str, str] = {_squash(a): f for f, aliases in FIELD_ALIASES.items() for a in aliases}


class KirklandFormatError(ValueError):
    """The file cannot be read as a signals file at all (no header, a required column missing...)."""


@dataclass(frozen=True)
class ParseIssue:
    """A problem with one line of the file. ``error`` rows are skipped; ``warning`` rows are kept."""

    line: int  # 1-based line in the file; the header is line 1
    reason: str
    field: str | None = None
    value: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.field is not None:
            where += f", {self.field}={self.value!r}"
        return f"{where}: {self.reason}" + (" (row kept)" if self.severity == "warning" else " (row skipped)")


@dataclass
class KirklandSignals:
    """The parsed file: one DataFrame row per good signal, and the issues found."""

    frame: pd.DataFrame
    issues: list[ParseIssue]
    source: str
    columns: dict[str, str]  # field -> header as written in the file
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ParseIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ParseIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    def report(self) -> str:
        """Human-readable summary: rows loaded, then one line per issue prefixed with the file name."""
        head = f"{self.source}: {len(self.frame)} signal(s) loaded, {len(self.errors)} row(s) skipped"
        if self.warnings:
            head += f", {len(self.warnings)} warning(s)"
        return "\n".join([head, *(f"{self.source}: {issue}" for issue in self.issues)])


# ----------------------------------------------------------------------------- symbols

#: Index CFDs (forex brokers such as TrendMarkets) -> the micro future whose data stands in for them.
INDEX_CFD_PROXIES: dict[str, str] = {
    "NAS100": "MNQ", "US100": "MNQ", "USTEC": "MNQ", "NDX100": "MNQ",
    "US30": "MYM", "DJ30": "MYM", "WS30": "MYM",
    "US500": "MES", "SPX500": "MES", "SP500": "MES",
    "US2000": "M2K", "RUS2000": "M2K",
}
#: Currencies and metals that make up forex-style pairs.
CURRENCIES = frozenset({"EUR", "USD", "GBP", "JPY", "AUD", "NZD", "CAD", "CHF", "XAU", "XAG", "SEK", "NOK",
                        "MXN", "ZAR", "SGD", "HKD", "CNH", "TRY", "PLN"})
_FOREX = re.compile(r"^(?P<pair>[A-Z]{6})(?:[.+][A-Z0-9]{1,5}|M)?$")  # EURUSD, EURUSD.PRO, EURUSDm
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CONTRACT_FORMS = (
    re.compile(rf"^(?P<code>[{MONTH_CODES}])(?P<year>\d{{1,2}}|\d{{4}})$"),  # Z24, Z4, Z2024
    re.compile(r"^(?P<month>\d{1,2})[-/ ](?P<year>\d{2}|\d{4})$"),  # 12-24, 3/2024
    re.compile(rf"^(?P<mon>{'|'.join(_MONTHS)})[A-Z]*[-/ ]?(?P<year>\d{{2}}|\d{{4}})$"),  # DEC24, DEC-2024
    re.compile(r"^(?P<year>\d{4})[-/](?P<month>\d{1,2})$"),  # 2024-12
)
_STOCK = re.compile(r"^[A-Z]{1,5}(?:\.[A-Z])?$")


@dataclass(frozen=True)
class NormalizedSymbol:
    original: str
    kind: Literal["forex", "index_cfd", "future", "stock"]
    asset_class: AssetClass  # where its bars live in the data store
    data_ticker: str  # C:EURUSD, MNQ, MES, SPY
    contract: str | None = None  # MESZ24 when the contract month was given


def _contract(root: str, rest: str) -> str | None:
    """``rest`` after a futures root as a Polygon-style contract; ``""`` if bare; None if not a contract."""
    rest = rest.strip(" -/")
    if rest in ("", "1!", "!", "CONT"):
        return ""
    for form in _CONTRACT_FORMS:
        match = form.match(rest)
        if match is None:
            continue
        g = match.groupdict()
        if g.get("code"):
            month = MONTH_CODES.index(g["code"]) + 1
        elif g.get("mon"):
            month = _MONTHS.index(g["mon"]) + 1
        else:
            month = int(g["month"])
        if not 1 <= month <= 12:
            return None
        year = int(g["year"])
        # a one-digit year ("MESZ4") is taken in the 2020s: the decade the data covers
        year = year + 2020 if year < 10 and len(g["year"]) == 1 else year if year >= 100 else year + 2000
        return future_ticker(root, year, month)
    return None


def normalize_symbol(raw: str) -> NormalizedSymbol:
    """Classify and normalise one symbol as written in a signals file. ``ValueError`` if unrecognised."""
    text = raw.strip().upper()
    if not text:
        raise ValueError("empty symbol")
    compact = text.replace("/", "").replace(" ", "").replace("_", "")
    if compact in INDEX_CFD_PROXIES:
        proxy = INDEX_CFD_PROXIES[compact]
        return NormalizedSymbol(raw.strip(), "index_cfd", AssetClass.FUTURES, proxy)
    forex = _FOREX.match(compact)
    if forex and forex["pair"][:3] in CURRENCIES and forex["pair"][3:] in CURRENCIES:
        return NormalizedSymbol(raw.strip(), "forex", AssetClass.FOREX, forex_ticker(forex["pair"]))
    future = text.lstrip("/")
    for root in sorted(FUTURES, key=len, reverse=True):  # MES before ES
        if future.startswith(root):
            contract = _contract(root, future[len(root):])
            if contract is not None:
                return NormalizedSymbol(raw.strip(), "future", AssetClass.FUTURES, root, contract or None)
    if _STOCK.match(text):
        return NormalizedSymbol(raw.strip(), "stock", AssetClass.STOCKS, text)
    raise ValueError(
        "unrecognised symbol; expected a forex pair (EURUSD, XAU/USD), an index CFD "
        f"({', '.join(sorted(INDEX_CFD_PROXIES))}), a futures root ({', '.join(sorted(FUTURES))}) with an "
        "optional contract month (MESZ24, 'MES 12-24', 'MES DEC24') or a stock ticker"
    )


# ----------------------------------------------------------------------------- values

_LONG = {"buy", "long", "b", "bull", "bullish", "l"}
_SHORT = {"sell", "short", "s", "bear", "bearish"}


def _side(value: str) -> Literal["long", "short"]:
    words = re.split(r"[\s_\-/]+", value.strip().lower())
    first = words[0] if words else ""
    if first in _LONG:
        return "long"
    if first in _SHORT:
        return "short"
    raise ValueError("side must be buy/long or sell/short")


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _price(value: str) -> float | None:
    text = value.strip().replace("$", "").replace(" ", "")
    if "," in text:
        # "1,085.50" and "2,030" use thousands separators; "1,0850" or "2030,5" is a decimal comma
        # (European exports, usually with ';' as the delimiter)
        text = text.replace(",", "") if _THOUSANDS.fullmatch(text) else text.replace(",", ".")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError("a price must be a positive number")
    return number


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y",
                 "%d %b %Y", "%b %d %Y", "%b %d, %Y", "%d-%b-%Y", "%d-%b-%y")
_DAYFIRST_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y",
                     "%d-%m-%Y", "%d %b %Y", "%b %d %Y", "%b %d, %Y", "%d-%b-%Y", "%d-%b-%y")
_TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%H:%M:%S.%f", "%I:%M %p", "%I:%M%p", "%I:%M:%S %p", "%I %p", "%I%p")


def _parse_date(text: str, dayfirst: bool) -> dt.date:
    for fmt in _DAYFIRST_FORMATS if dayfirst else _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("unrecognised date; expected e.g. 2024-01-02 or " + ("02/01/2024" if dayfirst else "01/02/2024"))


def _parse_time(text: str) -> dt.time:
    cleaned = re.sub(r"\s*(ET|EST|EDT|NY)$", "", text.strip(), flags=re.I).upper().replace(".", "")
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).time()
        except ValueError:
            continue
    raise ValueError("unrecognised time; expected e.g. 09:30, 14:05:00 or 2:05 PM")


def _parse_when(date_text: str, time_text: str | None, zone: ZoneInfo, dayfirst: bool) -> tuple[dt.datetime, bool]:
    """The signal time in ``zone`` and whether a time of day was given."""
    date_text = date_text.strip()
    time_text = (time_text or "").strip()
    if not time_text:
        try:  # one column holding an ISO timestamp, possibly with an offset
            stamp = dt.datetime.fromisoformat(date_text.replace("Z", "+00:00"))
        except ValueError:
            stamp = None
        if stamp is not None:
            has_time = "T" in date_text or " " in date_text
            if stamp.tzinfo is None:
                return stamp.replace(tzinfo=zone), has_time
            return stamp.astimezone(zone), True
        head, _, tail = date_text.partition(" ")
        if tail and re.search(r"\d:\d|\d\s*[ap]\.?m", tail, re.I):
            date_text, time_text = head, tail
    day = _parse_date(date_text, dayfirst)
    if not time_text:
        return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone), False
    return dt.datetime.combine(day, _parse_time(time_text), tzinfo=zone), True


# ----------------------------------------------------------------------------- parsing


def _map_headers(headers: list[str], source: str) -> tuple[dict[str, int], dict[int, int], list[str]]:
    """field -> column index, take-profit number -> column index, ignored headers."""
    fields: dict[str, int] = {}
    tps: dict[int, int] = {}
    ignored: list[str] = []
    for index, header in enumerate(headers):
        key = _squash(header)
        tp = _TP_HEADER.match(key)
        if tp:
            number = int(tp["n"] or 1)
            if number in tps:
                raise KirklandFormatError(
                    f"{source}: columns {headers[tps[number]]!r} and {header!r} both mean take-profit {number}; "
                    "rename or remove one"
                )
            tps[number] = index
            continue
        name = _ALIAS_TO_FIELD.get(key)
        if name is None:
            ignored.append(header)
            continue
        if name in fields:
            raise KirklandFormatError(
                f"{source}: columns {headers[fields[name]]!r} and {header!r} both mean {name!r}; rename or remove one"
            )
        fields[name] = index

    if "datetime" in fields:  # one timestamp column wins; separate date/time columns are then unused
        for unused in ("date", "time"):
            if unused in fields:
                ignored.append(headers[fields.pop(unused)])
    missing = [name for name in _REQUIRED if name not in fields]
    if "datetime" not in fields and "date" not in fields:
        missing.insert(0, "date (or datetime)")
    if not tps:
        missing.append("take-profit")
    if missing:
        accepted = "; ".join(f"{name}: {', '.join(FIELD_ALIASES[name])}" for name in FIELD_ALIASES)
        raise KirklandFormatError(
            f"{source}: missing required column(s): {', '.join(missing)}. Found headers: {headers}. "
            "Expected columns: date and time (or one datetime column), symbol, side, entry, stop, tp1[, tp2, "
            "tp3...]; optional: timeframe, notes. Accepted headers (case, spaces, underscores and hyphens "
            f"ignored): {accepted}; take-profit: {_TP_ALIASES_TEXT}."
        )
    if sorted(tps) != list(range(1, len(tps) + 1)):
        raise KirklandFormatError(
            f"{source}: take-profit columns are numbered {sorted(tps)}; expected 1..{len(tps)} without gaps "
            f"(headers {[headers[i] for _, i in sorted(tps.items())]})"
        )
    return fields, tps, ignored


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def parse_kirkland_signals(
    text: str, *, source: str = "<signals>", tz: str = DEFAULT_TZ, dayfirst: bool = False
) -> KirklandSignals:
    """Parse signals CSV text. ``tz`` is the zone of times written without an offset; ``dayfirst``
    reads 02/01/2024 as 2 January (default: US month-first)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}; use an IANA name like 'America/New_York' or 'UTC'") from exc

    text = text.lstrip("\ufeff")  # Excel's byte-order mark
    first_line = next((line for line in text.splitlines() if line.strip()), None)
    if first_line is None:
        raise KirklandFormatError(f"{source}: the file is empty; expected a header line then one signal per line")
    reader = csv.reader(io.StringIO(text), delimiter=_sniff_delimiter(first_line))
    headers: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            headers = [cell.strip() for cell in row]
            break
    assert headers is not None
    fields, tps, ignored = _map_headers(headers, source)
    columns = {name: headers[i] for name, i in fields.items()} | {f"tp{n}": headers[i] for n, i in tps.items()}
    n_tp = len(tps)

    records: list[dict[str, object]] = []
    issues: list[ParseIssue] = []
    no_time_lines: list[int] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(headers) and any(cell.strip() for cell in row[len(headers):]):
            issues.append(ParseIssue(line, f"{len(row)} fields but the header has {len(headers)}; quote values "
                                           "that contain the delimiter"))
            continue
        cells = [c.strip() for c in row] + [""] * (len(headers) - len(row))  # exports drop trailing empties

        def cell(name: str, cells: list[str] = cells) -> str:
            index = fields.get(name)
            return cells[index] if index is not None else ""

        row_issues: list[ParseIssue] = []
        record: dict[str, object] = {"line": line}

        when_field = "datetime" if "datetime" in fields else "date"
        if not cell(when_field):
            row_issues.append(ParseIssue(line, "no date", columns[when_field], ""))
        else:
            time_text = cell("time") if when_field == "date" else None
            try:
                when, has_time = _parse_when(cell(when_field), time_text, zone, dayfirst)
                record["datetime"] = when
                if not has_time:
                    no_time_lines.append(line)
            except ValueError as exc:
                shown = cell(when_field) + (f" {time_text}" if time_text else "")
                row_issues.append(ParseIssue(line, str(exc), columns[when_field], shown))

        try:
            symbol = normalize_symbol(cell("symbol"))
            record.update(symbol=symbol.original, kind=symbol.kind, asset_class=symbol.asset_class.value,
                          data_ticker=symbol.data_ticker, contract=symbol.contract)
        except ValueError as exc:
            row_issues.append(ParseIssue(line, str(exc), columns["symbol"], cell("symbol")))

        try:
            record["side"] = _side(cell("side"))
        except ValueError as exc:
            row_issues.append(ParseIssue(line, str(exc), columns["side"], cell("side")))

        for name in ("entry", "stop"):
            try:
                value = _price(cell(name))
                if value is None:
                    row_issues.append(ParseIssue(line, f"no {name} price", columns[name], ""))
                record[name] = value
            except ValueError as exc:
                row_issues.append(ParseIssue(line, f"{name}: {exc}", columns[name], cell(name)))
                record[name] = None
        targets: list[float | None] = []
        for n in range(1, n_tp + 1):
            raw = cells[tps[n]]
            try:
                targets.append(_price(raw))
            except ValueError as exc:
                row_issues.append(ParseIssue(line, f"take-profit {n}: {exc}", columns[f"tp{n}"], raw))
                targets.append(None)
            record[f"tp{n}"] = targets[-1]
        if not any(t is not None for t in targets) and not any(i.reason.startswith("take-profit") for i in row_issues):
            row_issues.append(ParseIssue(line, "no take-profit level", columns["tp1"], ""))

        written = {"entry": cell("entry"), "stop": cell("stop")} | {f"tp{n}": cells[tps[n]] for n in tps}
        row_issues.extend(_sanity(line, record, targets, columns, written))
        record["timeframe"] = cell("timeframe") or None
        record["notes"] = cell("notes") or None

        issues.extend(row_issues)
        if not any(i.severity == "error" for i in row_issues):
            records.append(record)

    if no_time_lines:
        issues.append(ParseIssue(
            no_time_lines[0],
            f"{len(no_time_lines)} row(s) have a date but no time of day (first on line {no_time_lines[0]}); "
            f"00:00 {tz} assumed",
            severity="warning",
        ))
    issues.sort(key=lambda i: i.line)
    return KirklandSignals(_frame(records, n_tp, tz), issues, source, columns, ignored)


def _sanity(
    line: int,
    record: dict[str, object],
    targets: list[float | None],
    columns: dict[str, str],
    written: dict[str, str],
) -> Iterable[ParseIssue]:
    """Stop and targets on the right side of the entry for the side of the trade.

    ``written`` holds the cells as they appear in the file, so messages quote the file exactly."""
    side, entry, stop = record.get("side"), record.get("entry"), record.get("stop")
    if side is None or not isinstance(entry, float):
        return
    long = side == "long"
    word = "buy" if long else "sell"
    if isinstance(stop, float) and (stop >= entry if long else stop <= entry):
        relation = "below" if long else "above"
        yield ParseIssue(line, f"stop {written['stop']} is not {relation} entry {written['entry']} for a {word}",
                         columns["stop"], written["stop"])
    given = [(n, t) for n, t in enumerate(targets, start=1) if t is not None]
    for n, target in given:
        if target <= entry if long else target >= entry:
            relation = "above" if long else "below"
            yield ParseIssue(
                line,
                f"take-profit {n} {written[f'tp{n}']} is not {relation} entry {written['entry']} for a {word}",
                columns[f"tp{n}"],
                written[f"tp{n}"],
            )
    ordered = [t for _, t in given]
    if ordered != sorted(ordered, reverse=not long):
        yield ParseIssue(line, f"take-profit levels {ordered} are not in order away from the entry",
                         severity="warning")


def _frame(records: list[dict[str, object]], n_tp: int, tz: str) -> pd.DataFrame:
    tp_cols = [f"tp{n}" for n in range(1, n_tp + 1)]
    columns = ["line", "datetime", "symbol", "kind", "asset_class", "data_ticker", "contract", "side",
               "entry", "stop", *tp_cols, "timeframe", "notes"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["line"] = frame["line"].astype("int64")
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True).dt.tz_convert(tz)
    for name in ["entry", "stop", *tp_cols]:
        frame[name] = frame[name].astype("float64")
    for name in ["symbol", "kind", "asset_class", "data_ticker", "contract", "side", "timeframe", "notes"]:
        frame[name] = frame[name].astype("object")
    return frame.sort_values(["datetime", "line"], kind="stable").reset_index(drop=True)


def load_kirkland_signals(
    path: str | os.PathLike[str], *, tz: str = DEFAULT_TZ, dayfirst: bool = False
) -> KirklandSignals:
    """Read and parse a signals CSV file (UTF-8, with or without a byte-order mark)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"{file}: signals file not found") from None
    except UnicodeDecodeError as exc:
        raise KirklandFormatError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as "
                                  "UTF-8 CSV") from None
    return parse_kirkland_signals(text, source=str(file), tz=tz, dayfirst=dayfirst)


__all__ = [
    "DEFAULT_TZ",
    "FIELD_ALIASES",
    "INDEX_CFD_PROXIES",
    "KirklandFormatError",
    "KirklandSignals",
    "NormalizedSymbol",
    "ParseIssue",
    "load_kirkland_signals",
    "normalize_symbol",
    "parse_kirkland_signals",
]

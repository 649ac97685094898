"""Streaming ingest of Polygon flat files into the partitioned Parquet store read by ``data.store``.

Store layout (relative to the store root, a folder or an object-store URL such as ``s3://bucket/prefix``)::

    _manifest.json                                       what was ingested (see "Manifest")
    stocks/minute/ticker=SPY/2024-03.parquet             one file per ticker and month
    stocks/day/ticker=SPY/2024.parquet                   one file per ticker and year
    forex/minute/pair=EURUSD/2024-03.parquet             keyed by the pair without "C:"
    forex/day/pair=EURUSD/2024.parquet
    futures/minute/root=MES/2024-03.parquet              every contract of a root, ``contract`` column
    futures/day/root=MES/2024.parquet
    options/minute/underlying=SPY/2024-03-07.parquet     one file per underlying (OCC root) and day
    options/day/underlying=SPY/2024.parquet

The month/year/day of a partition is the flat file's date, not the bar's UTC date. Keys are
percent-encoded. Columns of every partition:

    ts                          timestamp[ns, UTC]   Polygon's ``window_start``
    open, high, low, close      float64
    volume                      float64              recent files have fractional volume
    transactions                int64                null when the file left it empty
    date                        date32               the flat file's date (the session it belongs to)
    regular                     bool                 stocks minute only: NYSE regular session,
                                                     09:30 <= ts < close (13:00 on half days)
    contract                    string               futures only (``MESH24``)
    ticker, expiry, right, strike                    options only: ``O:SPY240307C00510000``, date32,
                                                     "C"/"P", float64

Rows are sorted by ts (options by ticker then ts, futures by ts then contract), written with zstd and
row-group statistics, so readers prune partitions by path and row groups by statistics.

Manifest (``_manifest.json``): ``{"format": 1, "files": {canonical flat-file relpath: entry}}`` with, per
source file, its location, size, mtime_ns, sha256 (computed while streaming), rows read and kept, the
ticker filter it was ingested with (null = everything) and the partitions it wrote rows to.

How a run proceeds:

1. Walk ``src`` for files ``data.flatfiles.parse_flat_file_path`` recognises, within ``date_from``/``date_to``.
2. Skip files the manifest already holds with the same size and mtime and a ticker filter that covers the
   request. A file whose size or mtime changed is hashed first and skipped if its content did not change.
   A changed file, or one asked for tickers its recorded filter did not keep, is re-ingested with the
   union of both filters so nothing stored earlier is dropped.
3. Workers (a spawn-context process pool: polars/pyarrow thread pools do not survive fork) stream each
   file through gzip and ``pyarrow.csv.open_csv`` with fixed column types, validate it, keep only the
   wanted tickers batch by batch and stage the kept rows, sorted by partition, as an Arrow IPC file in a
   local temporary folder. A bad file (header, non-numeric field, corrupt or truncated gzip) fails alone.
4. The parent merges the staged rows of all files of a month (year for day files, day for options) into
   each partition: stored rows of the re-ingested dates are replaced, other dates kept. Every partition
   and the manifest are written to a temporary name and renamed over the old file (object stores publish
   a single upload atomically), so a crash never leaves a half-written file. The manifest is updated after
   the partitions, so files of an interrupted run are simply ingested again next time.

Generated sample data: ``data.synth.generate`` writes ``_synthetic.json`` into the flat-file root (seed,
window, tickers and the planted edge, if any). Ingest copies it verbatim into the manifest under
``"synthetic"`` (replacing an earlier one), so ``Store.synthetic()`` and the study provenance can say
"synthetic data, planted edge zrce:0.5". A root without that file (real downloads) leaves the manifest
without the key.

Concurrent ingests into the same store are not supported (the last manifest write wins).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import shutil
import tempfile
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
import pyarrow.ipc as paipc
import pyarrow.parquet as pq
from tqdm import tqdm

from data.flatfiles import (
    COLUMNS,
    HEADER,
    AssetClass,
    FlatFile,
    Timeframe,
    parse_flat_file_path,
    parse_occ_ticker,
)
from data.store import (
    MANIFEST_NAME,
    STORE_FORMAT,
    SYNTHETIC_INFO_NAME,
    SYNTHETIC_KEY,
    data_origin_label,
    partition_relpath,
    read_json_file,
    read_manifest,
    resolve_root,
)

__all__ = ["FileError", "IngestReport", "ingest"]

#: Column types of the CSV. Volume is float: recent Polygon files carry fractional volume.
CSV_TYPES: dict[str, pa.DataType] = {
    "ticker": pa.string(),
    "volume": pa.float64(),
    "open": pa.float64(),
    "close": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "window_start": pa.int64(),
    "transactions": pa.int64(),
}
_EXPECTED_TYPE = {pa.float64(): "a number (float64)", pa.int64(): "a whole number (int64)"}
#: Columns that may not be empty; ``transactions`` may (it becomes null).
_REQUIRED = ("ticker", "volume", "open", "close", "high", "low", "window_start")
_SORT: dict[AssetClass, list[str]] = {
    AssetClass.STOCKS: ["ts"],
    AssetClass.FOREX: ["ts"],
    AssetClass.FUTURES: ["ts", "contract"],
    AssetClass.OPTIONS: ["ticker", "ts"],
}
_TICKER_PATTERN: dict[AssetClass, tuple[str, str]] = {
    AssetClass.OPTIONS: (r"^O:[A-Z0-9.]{1,6}\d{6}[CP]\d{8}$", "an OCC option ticker like O:SPY240307C00510000"),
    AssetClass.FOREX: (r"^C:[A-Z0-9]{2,}$", "a forex ticker like C:EURUSD"),
    AssetClass.FUTURES: (r"^[A-Z0-9]{1,4}?[FGHJKMNQUVXZ]\d{2}$", "a futures contract ticker like MESH24"),
}
_BLOCK_SIZE = 1 << 22  # CSV bytes per batch: ~50k rows, large enough that per-batch overhead vanishes
_ROW_GROUP = 1 << 17
_RERUN = "then re-run `search data ingest`"


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class FileError:
    """Why one flat file was not ingested, precisely enough to fix it."""

    file: str
    problem: str
    hint: str
    row: int | None = None  # 1-based line number in the CSV, the header being line 1
    column: str | None = None
    expected: str | None = None

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}, line {self.row}"
        column = f", column {self.column!r}" if self.column else ""
        expected = f" (expected {self.expected})" if self.expected else ""
        return f"{where}{column}: {self.problem}{expected}. {self.hint}"


@dataclass(slots=True)
class IngestReport:
    """What one ``ingest`` run did. ``failed`` non-empty means some files were not ingested."""

    src: str
    dst: str
    files_found: int = 0
    ingested: list[str] = field(default_factory=list)  # canonical flat-file relpaths
    skipped: list[str] = field(default_factory=list)  # unchanged since the last run
    failed: list[FileError] = field(default_factory=list)
    rows_read: int = 0
    rows_written: int = 0
    partitions_written: int = 0
    elapsed: float = 0.0
    synthetic: dict | None = None  # the source's _synthetic.json (generated sample data), else None

    def summary(self) -> str:
        if self.files_found == 0 and not self.failed:
            return (
                f"No flat files found under {self.src} (in the date range): expected Polygon's layout, e.g. "
                "us_stocks_sip/minute_aggs_v1/2024/03/2024-03-07.csv.gz. Nothing was written."
            )
        rate = f", {self.rows_read / self.elapsed:,.0f} rows/s" if self.elapsed > 0 and self.rows_read else ""
        lines = [
            f"Ingested {len(self.ingested)} of {self.files_found} flat files into {self.dst}: "
            f"{self.rows_written:,} of {self.rows_read:,} rows kept, {self.partitions_written} partitions "
            f"written; {len(self.skipped)} unchanged (skipped); {len(self.failed)} failed; "
            f"{self.elapsed:.1f} s{rate}."
        ]
        if self.synthetic is not None:
            lines.append(f"Source: {data_origin_label(self.synthetic)} (seed {self.synthetic.get('seed')}).")
        lines += [f"FAILED {error}" for error in self.failed]
        return "\n".join(lines)


class _FileProblem(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


# ----------------------------------------------------------------------------- worker side


@dataclass(frozen=True, slots=True)
class _Task:
    fs: pafs.FileSystem
    path: str  # within fs
    display: str  # what error messages call the file
    flat: FlatFile
    size: int
    mtime_ns: int | None
    tickers: tuple[str, ...] | None  # the filter to record
    wanted: frozenset[str] | None  # partition keys / tickers to keep
    known_sha256: str | None  # hash first; the file is unchanged when it matches
    session_ns: tuple[int, int] | None  # stocks minute: NYSE open and close (UTC ns) of the file's date
    staging: str
    old_outputs: tuple[str, ...]

    @property
    def batch(self) -> str:
        """Files of one batch write to the same partitions."""
        return partition_relpath(self.flat.asset_class, self.flat.timeframe, "_", self.flat.date)


@dataclass(slots=True)
class _Result:
    sha256: str | None = None
    unchanged: bool = False
    error: FileError | None = None
    rows_read: int = 0
    rows_kept: int = 0
    slices: list[tuple[str, int, int]] = field(default_factory=list)  # partition key, offset, length


class _HashingReader(io.RawIOBase):
    """Hands the raw (compressed) bytes on while hashing them, so the file is read once."""

    def __init__(self, raw: pa.NativeFile) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n


class _Prepend(io.RawIOBase):
    """The decompressed stream with already-read bytes put back in front of it."""

    def __init__(self, head: bytes, rest: pa.NativeFile) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _gzip_error(task: _Task, exc: BaseException) -> FileError:
    return FileError(
        task.display,
        f"not a complete gzip file ({exc}); the download is truncated or corrupted",
        f"Download the file again (size on disk: {task.size:,} bytes), {_RERUN}.",
        expected="a gzip-compressed CSV",
    )


def _read_header(stream: pa.NativeFile) -> tuple[str, bytes]:
    head = b""
    while b"\n" not in head:
        chunk = stream.read(1 << 16)
        if not chunk:
            break
        head += chunk
    line, _, rest = head.partition(b"\n")
    return line.decode("utf-8-sig", errors="replace").strip(), rest


def _check_header(task: _Task, header: str) -> list[str]:
    names = [name.strip() for name in header.split(",")] if header else []
    missing = [c for c in COLUMNS if c not in names]
    unexpected = [n for n in names if n not in COLUMNS]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if not (missing or unexpected or duplicated):
        return names
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected column(s) {', '.join(unexpected)}")
    if duplicated:
        problems.append(f"duplicated column(s) {', '.join(duplicated)}")
    raise _FileProblem(
        FileError(
            task.display,
            f"wrong header {header[:200]!r}: {'; '.join(problems)}",
            f"Is this a Polygon aggregates flat file? Download it again, {_RERUN}.",
            row=1,
            expected=f"the columns {HEADER}",
        )
    )


def _open_decompressed(task: _Task) -> tuple[pa.NativeFile, _HashingReader, pa.NativeFile]:
    raw = task.fs.open_input_stream(task.path, compression=None)
    hashing = _HashingReader(raw)
    return raw, hashing, pa.CompressedInputStream(pa.PythonFile(hashing, mode="r"), "gzip")


def _hash_only(task: _Task) -> str:
    digest = hashlib.sha256()
    with task.fs.open_input_stream(task.path, compression=None) as raw:
        while chunk := raw.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _first_index(mask: pa.Array | pa.ChunkedArray, value: bool = True) -> int:
    return pc.index(mask, value).as_py()


def _partition_keys(asset: AssetClass, tickers: pa.Array) -> pa.Array:
    if asset is AssetClass.OPTIONS:
        return pc.utf8_slice_codeunits(tickers, 2, -15)  # O: + ROOT + YYMMDD C/P 8-digit strike
    if asset is AssetClass.FOREX:
        return pc.utf8_slice_codeunits(tickers, 2)  # C:EURUSD -> EURUSD
    if asset is AssetClass.FUTURES:
        return pc.utf8_slice_codeunits(tickers, 0, -3)  # MESH24 -> MES
    return tickers


def _select(task: _Task, batch: pa.RecordBatch, rows_before: int) -> pa.RecordBatch | None:
    """Validate one CSV batch and keep the wanted rows, with their partition key as ``_key``."""
    for name in _REQUIRED:
        column = batch.column(name)
        if column.null_count:
            index = _first_index(pc.is_null(column))
            raise _FileProblem(
                FileError(task.display, "empty value", f"Fix or re-download the file, {_RERUN}.",
                          row=rows_before + index + 2, column=name, expected=_EXPECTED_TYPE.get(CSV_TYPES[name], "a ticker"))
            )
    tickers = batch.column("ticker")
    empty = pc.equal(tickers, "")
    if pc.any(empty).as_py():
        raise _FileProblem(
            FileError(task.display, "empty ticker", f"Fix or re-download the file, {_RERUN}.",
                      row=rows_before + _first_index(empty) + 2, column="ticker", expected="a ticker")
        )
    asset = task.flat.asset_class
    keys = _partition_keys(asset, tickers)
    if task.wanted is not None:
        wanted = pa.array(sorted(task.wanted), pa.string())
        mask = pc.is_in(keys, value_set=wanted)
        if asset is AssetClass.FUTURES:
            mask = pc.or_(mask, pc.is_in(tickers, value_set=wanted))  # a single contract asked for
        positions = pc.indices_nonzero(mask)
        if len(positions) == 0:
            return None
        batch = batch.filter(mask)
        keys = keys.filter(mask)
    else:
        positions = None
    pattern = _TICKER_PATTERN.get(asset)
    if pattern is not None and batch.num_rows:
        valid = pc.match_substring_regex(batch.column("ticker"), pattern[0])
        if asset is AssetClass.OPTIONS and pc.all(valid).as_py():
            # The pattern admits 241399; the expiry must be a real date.
            expiry = pc.utf8_slice_codeunits(batch.column("ticker"), -15, -9)
            valid = pc.is_valid(pc.strptime(expiry, format="%y%m%d", unit="s", error_is_null=True))
        if not pc.all(valid).as_py():
            index = _first_index(valid, False)
            original = index if positions is None else positions[index].as_py()
            raise _FileProblem(
                FileError(task.display, f"invalid ticker {batch.column('ticker')[index].as_py()!r}",
                          f"Check that the file is in the right folder ({task.flat.relpath}), {_RERUN}.",
                          row=rows_before + original + 2, column="ticker", expected=pattern[1])
            )
    return batch.append_column("_key", keys)


def _locate_bad_number(task: _Task, names: list[str], from_row: int, column_hint: str | None) -> FileError:
    """Second pass after a conversion error: read as text to find the line, column and value."""
    numeric = [n for n in names if n != "ticker"]
    if column_hint in numeric:
        numeric.remove(column_hint)
        numeric.insert(0, column_hint)
    rows = 0
    try:
        raw, _, stream = _open_decompressed(task)
        with raw:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(skip_rows=1, column_names=names, block_size=_BLOCK_SIZE),
                convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                    strings_can_be_null=True),
            )
            for batch in reader:
                if rows + batch.num_rows > from_row:
                    for name in numeric:
                        index = _first_bad_cast(batch.column(name), CSV_TYPES[name])
                        if index is not None:
                            return FileError(
                                task.display, f"invalid value {batch.column(name)[index].as_py()!r}",
                                f"Fix or re-download the file, {_RERUN}.",
                                row=rows + index + 2, column=name, expected=_EXPECTED_TYPE[CSV_TYPES[name]],
                            )
                rows += batch.num_rows
    except (OSError, pa.ArrowInvalid):
        pass
    return FileError(task.display, "a field is not a number", f"Fix or re-download the file, {_RERUN}.",
                     column=column_hint, expected=_EXPECTED_TYPE.get(CSV_TYPES.get(column_hint or "", pa.null())))


def _first_bad_cast(values: pa.Array, target: pa.DataType) -> int | None:
    def fails(upto: int) -> bool:
        try:
            pc.cast(values.slice(0, upto), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return True
        return False

    if not fails(len(values)):
        return None
    low, high = 0, len(values) - 1  # the first failing prefix ends at ``high``
    while low < high:
        middle = (low + high) // 2
        if fails(middle + 1):
            high = middle
        else:
            low = middle + 1
    return low


def _locate_bad_line(task: _Task, n_columns: int) -> int | None:
    """Second pass after a CSV parse error: the first line whose field count is wrong."""
    try:
        with task.fs.open_input_stream(task.path, compression=None) as raw, gzip.GzipFile(fileobj=raw) as lines:
            for number, line in enumerate(lines, start=1):
                if number > 1 and line.strip() and line.count(b",") != n_columns - 1:
                    return number
    except (OSError, EOFError):
        pass
    return None


def _process(task: _Task) -> _Result:
    """Worker entry point: never raises for a bad file, reports it instead."""
    try:
        if task.known_sha256 is not None and _hash_only(task) == task.known_sha256:
            return _Result(sha256=task.known_sha256, unchanged=True)
        return _parse(task)
    except _FileProblem as problem:
        return _Result(error=problem.error)
    except OSError as exc:
        return _Result(error=FileError(task.display, f"could not read the file ({exc})",
                                       f"Check that it exists and is readable, {_RERUN}."))
    except Exception as exc:  # a bug must not take the other files down with it
        return _Result(error=FileError(task.display, f"unexpected error {type(exc).__name__}: {exc}",
                                       "Please report this with the file; the other files were ingested."))


def _parse(task: _Task) -> _Result:
    raw, hashing, stream = _open_decompressed(task)
    kept: list[pa.RecordBatch] = []
    rows = 0
    with raw:
        try:
            header, rest = _read_header(stream)
        except OSError as exc:
            raise _FileProblem(_gzip_error(task, exc)) from exc
        names = _check_header(task, header)
        try:
            reader = pcsv.open_csv(
                _Prepend(rest, stream),
                read_options=pcsv.ReadOptions(column_names=names, block_size=_BLOCK_SIZE),
                convert_options=pcsv.ConvertOptions(column_types=CSV_TYPES),
            )
            for batch in reader:
                selected = _select(task, batch, rows)
                rows += batch.num_rows
                if selected is not None and selected.num_rows:
                    kept.append(selected)
            while hashing.read(1 << 22):  # the gzip trailer and anything after it belongs in the hash too
                pass
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "conversion error" in message:
                match = re.search(r"column #(\d+)", message)
                hint = names[int(match[1])] if match and int(match[1]) < len(names) else None
                raise _FileProblem(_locate_bad_number(task, names, rows, hint)) from exc
            if "parse error" in message:
                raise _FileProblem(
                    FileError(task.display, f"malformed CSV line ({message.split(':', 1)[-1].strip()[:200]})",
                              f"Fix or re-download the file, {_RERUN}.", row=_locate_bad_line(task, len(names)),
                              expected=f"{len(names)} comma-separated fields")
                ) from exc
            raise _FileProblem(FileError(task.display, message, f"Fix or re-download the file, {_RERUN}.")) from exc
        except OSError as exc:
            raise _FileProblem(_gzip_error(task, exc)) from exc
    result = _Result(sha256=hashing.sha256.hexdigest(), rows_read=rows)
    if not kept:
        return result
    frame = _to_store_rows(task, pl.from_arrow(pa.Table.from_batches(kept)))  # type: ignore[arg-type]
    counts = frame.group_by("_key", maintain_order=True).len()
    offset = 0
    for key, n in counts.iter_rows():
        result.slices.append((key, offset, n))
        offset += n
    result.rows_kept = frame.height
    table = frame.drop("_key").to_arrow()
    with paipc.new_file(task.staging, table.schema) as writer:
        writer.write_table(table)
    return result


def _to_store_rows(task: _Task, raw: pl.DataFrame) -> pl.DataFrame:
    asset, timeframe = task.flat.asset_class, task.flat.timeframe
    start = pl.col("window_start")
    columns: list[pl.Expr] = []
    if asset is AssetClass.OPTIONS:
        ticker = pl.col("ticker")
        columns += [
            ticker,
            ticker.str.slice(-15, 6).str.to_date("%y%m%d").alias("expiry"),
            ticker.str.slice(-9, 1).alias("right"),
            (ticker.str.slice(-8).cast(pl.Int64) / 1000).alias("strike"),
        ]
    if asset is AssetClass.FUTURES:
        columns.append(pl.col("ticker").alias("contract"))
    columns += [
        start.cast(pl.Datetime("ns", "UTC")).alias("ts"),
        pl.col("open"),
        pl.col("high"),
        pl.col("low"),
        pl.col("close"),
        pl.col("volume"),
        pl.col("transactions"),
        pl.lit(task.flat.date, pl.Date).alias("date"),
    ]
    if asset is AssetClass.STOCKS and timeframe is Timeframe.MINUTE:
        opens, closes = task.session_ns or (0, 0)
        columns.append(((start >= opens) & (start < closes)).alias("regular"))
    columns.append(pl.col("_key"))
    return raw.select(columns).sort(["_key", *_SORT[asset]], maintain_order=True)


# ----------------------------------------------------------------------------- parent side


def _normalise_tickers(tickers: Sequence[str] | None) -> tuple[str, ...] | None:
    if tickers is None:
        return None
    cleaned = tuple(sorted({t.strip() for t in tickers if t.strip()}))
    return cleaned or None


def _wanted(tickers: tuple[str, ...] | None) -> frozenset[str] | None:
    """The partition keys (and futures contracts) a ticker filter keeps, for every asset class."""
    if tickers is None:
        return None
    wanted = set()
    for ticker in tickers:
        wanted.add(ticker)
        if ticker.startswith("C:"):
            wanted.add(ticker[2:])
        elif ticker.startswith("O:"):
            wanted.add(parse_occ_ticker(ticker).underlying)
        else:
            wanted.add(ticker.replace("/", ""))  # EUR/USD
    return frozenset(wanted)


def _discover(
    fs: pafs.FileSystem, base: str, src: str, date_from: dt.date | None, date_to: dt.date | None,
    report: IngestReport,
) -> list[tuple[FlatFile, pafs.FileInfo]]:
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"flat-file root {src} does not exist; pass --src the folder holding us_stocks_sip/ etc.")
    infos = [info] if info.type == pafs.FileType.File else fs.get_file_info(pafs.FileSelector(base, recursive=True))
    found: dict[str, tuple[FlatFile, pafs.FileInfo]] = {}
    for entry in sorted(infos, key=lambda i: i.path):
        if entry.type != pafs.FileType.File:
            continue
        flat = parse_flat_file_path(entry.path)
        if flat is None:
            continue
        if (date_from and flat.date < date_from) or (date_to and flat.date > date_to):
            continue
        if flat.relpath in found:
            report.failed.append(FileError(
                entry.path, f"the same flat file as {found[flat.relpath][1].path}",
                f"Keep one copy under {src}, {_RERUN}.", expected=f"one file per {flat.relpath}",
            ))
            continue
        found[flat.relpath] = (flat, entry)
    return list(found.values())


def _read_synthetic_info(fs: pafs.FileSystem, base: str, src: str) -> dict | None:
    """``<src>/_synthetic.json`` written by ``data.synth.generate`` (seed, window, planted edge), or None."""
    path = f"{base}/{SYNTHETIC_INFO_NAME}"
    info = read_json_file(
        fs,
        path,
        name=_display(src, path),
        mend="it describes generated sample data: re-run `search data synth` for this root, or delete the file "
        "for real flat files",
    )
    if info is None:
        return None  # real flat files: no generator wrote this root
    if not isinstance(info, dict) or "seed" not in info or "plant" not in info:
        raise ValueError(
            f"{_display(src, path)}: expected an object with 'seed' and 'plant' as `search data synth` writes it; "
            "re-run `search data synth` for this root, or delete the file for real flat files"
        )
    return info


def _display(src: str | Path, path: str) -> str:
    """How messages name a source file: a local path, or the URL with its scheme."""
    text = str(src)
    return f"{text.split('://', 1)[0]}://{path}" if "://" in text else path


def _nyse_sessions(dates: Sequence[dt.date]) -> dict[dt.date, tuple[int, int]]:
    if not dates:
        return {}
    from data.calendar import nyse_sessions

    schedule = nyse_sessions(min(dates), max(dates))
    return {ts.date(): (row.open.value, row.close.value) for ts, row in schedule.iterrows()}


def _write_atomic(fs: pafs.FileSystem, path: str, write: Callable[[str], object]) -> None:
    """Write via ``write(where)`` to a temporary name, then rename over ``path``."""
    parent, _, name = path.rpartition("/")
    fs.create_dir(parent, recursive=True)
    if fs.type_name != "local":
        write(path)  # an object-store upload becomes visible only when complete
        return
    temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temporary)
        fs.move(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(temporary)
        raise


def _write_parquet(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    _write_atomic(fs, path, lambda where: pq.write_table(
        table, where, filesystem=fs, compression="zstd", row_group_size=_ROW_GROUP, write_statistics=True,
    ))


def _write_manifest(fs: pafs.FileSystem, base: str, manifest: dict) -> None:
    # One source file per line: readable and diffable, and the C encoder (used only without ``indent``)
    # keeps a manifest of years of files fast to rewrite after every batch.
    head = json.dumps({k: v for k, v in manifest.items() if k != "files"}, sort_keys=True)[1:-1]
    files = ",\n".join(
        f"  {json.dumps(key)}: {json.dumps(entry, sort_keys=True)}" for key, entry in sorted(manifest["files"].items())
    )
    data = f'{{{head}, "files": {{\n{files}\n}}}}\n'.encode()

    def write(where: str) -> None:
        with fs.open_output_stream(where) as out:
            out.write(data)

    _write_atomic(fs, f"{base}/{MANIFEST_NAME}", write)


def _merge_partition(
    fs: pafs.FileSystem, path: str, chunks: list[pa.Table], replaced: set[dt.date], sort: list[str]
) -> int:
    """Replace the rows of ``replaced`` dates in one partition by ``chunks``; returns rows now stored."""
    frames: list[pl.DataFrame] = []
    changed = bool(chunks)
    if fs.get_file_info(path).type == pafs.FileType.File:
        old: pl.DataFrame = pl.from_arrow(pq.read_table(path, filesystem=fs))  # type: ignore[assignment]
        kept = old.filter(~pl.col("date").is_in(sorted(replaced)))
        changed |= kept.height != old.height
        frames.append(kept)
    if not changed:
        return -1
    frames += [pl.from_arrow(chunk) for chunk in chunks]  # type: ignore[misc]
    merged = pl.concat(frames, how="vertical_relaxed")
    if merged.is_empty():
        fs.delete_file(path)  # its only rows came from a re-ingested file that no longer has them
        return 0
    _write_parquet(fs, path, merged.sort(sort, maintain_order=True).to_arrow())
    return merged.height


def _results(tasks: Sequence[_Task], workers: int) -> Iterator[_Result]:
    """Results in task order; workers run ahead by a bounded window so staging stays small."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield _process(task)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
    try:
        upcoming = iter(tasks)
        pending: deque[Future[_Result]] = deque(pool.submit(_process, t) for t in islice(upcoming, workers * 3))
        while pending:
            future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(_process, following))
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ingest(
    src: str | Path,
    dst: str | Path,
    *,
    tickers: Sequence[str] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> IngestReport:
    """Ingest the flat files under ``src`` into the Parquet store at ``dst`` (see the module docstring).

    ``tickers`` keeps only those stocks/ETFs, forex pairs (``C:EURUSD`` or ``EURUSD``), option underlyings
    (``SPY`` keeps every ``O:SPY...`` contract) and futures roots (``MES``) or contracts; ``None`` keeps
    everything. Files that fail are listed in ``report.failed`` and leave the store as it was for them.
    """
    started = time.perf_counter()
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    src_fs, src_base = resolve_root(src)
    dst_fs, dst_base = resolve_root(dst)
    report = IngestReport(src=str(src), dst=str(dst))
    requested = _normalise_tickers(tickers)
    files = _discover(src_fs, src_base, str(src), date_from, date_to, report)
    report.files_found = len(files) + len(report.failed)
    dst_fs.create_dir(dst_base, recursive=True)
    manifest = read_manifest(dst_fs, dst_base)
    if manifest.get("format", STORE_FORMAT) != STORE_FORMAT:
        raise ValueError(
            f"the store at {dst} has format {manifest.get('format')}, this code writes format {STORE_FORMAT}: "
            "ingest into a new, empty --dst"
        )
    manifest["format"] = STORE_FORMAT
    synthetic = _read_synthetic_info(src_fs, src_base, str(src))
    # Only a generated root carries the file: real downloads leave the manifest exactly as before.
    synthetic_changed = synthetic is not None and manifest.get(SYNTHETIC_KEY) != synthetic
    if synthetic is not None:
        manifest[SYNTHETIC_KEY] = synthetic
    entries: dict[str, dict] = manifest["files"]
    sessions = _nyse_sessions(
        [f.date for f, _ in files if f.asset_class is AssetClass.STOCKS and f.timeframe is Timeframe.MINUTE]
    )
    staging_dir = tempfile.mkdtemp(prefix="ingest-staging-")
    tasks: list[_Task] = []
    for flat, info in files:
        entry = entries.get(flat.relpath)
        tickers_filter, known, old_outputs = requested, None, ()
        if entry is not None:
            recorded = entry.get("tickers")
            covered = recorded is None or (requested is not None and set(requested) <= set(recorded))
            same_stat = entry.get("size") == info.size and entry.get("mtime_ns") == info.mtime_ns
            if same_stat and covered:
                report.skipped.append(flat.relpath)
                continue
            # Widen, never narrow: rows stored for the recorded tickers must survive a re-ingest.
            tickers_filter = None if recorded is None or requested is None else tuple(sorted({*recorded, *requested}))
            known = entry.get("sha256") if covered else None
            old_outputs = tuple(entry.get("outputs", ()))
        tasks.append(_Task(
            fs=src_fs, path=info.path, display=_display(src, info.path), flat=flat, size=info.size, mtime_ns=info.mtime_ns,
            tickers=tickers_filter, wanted=_wanted(tickers_filter), known_sha256=known,
            session_ns=sessions.get(flat.date, (0, 0)) if flat.asset_class is AssetClass.STOCKS else None,
            staging=os.path.join(staging_dir, f"{len(tasks)}.arrow"), old_outputs=old_outputs,
        ))
    tasks.sort(key=lambda t: (t.batch, t.flat.date))
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    bar = tqdm(total=len(tasks), unit="file", desc="ingest", disable=not progress)
    results = _results(tasks, n_workers)
    try:
        index = 0
        while index < len(tasks):
            batch_end = index
            while batch_end < len(tasks) and tasks[batch_end].batch == tasks[index].batch:
                batch_end += 1
            done = []
            for task in tasks[index:batch_end]:
                done.append((task, next(results)))
                bar.update(1)
            _merge_batch(dst_fs, dst_base, manifest, done, report)
            index = batch_end
    finally:
        results.close()  # stops the worker pool now if merging failed
        bar.close()
        shutil.rmtree(staging_dir, ignore_errors=True)
    if synthetic_changed and not report.ingested:
        # Same files, new description (e.g. a plant of strength 0 over a null market): record it anyway.
        _write_manifest(dst_fs, dst_base, manifest)
    report.synthetic = synthetic
    report.elapsed = time.perf_counter() - started
    return report


def _merge_batch(
    fs: pafs.FileSystem, base: str, manifest: dict, done: list[tuple[_Task, _Result]], report: IngestReport
) -> None:
    entries: dict[str, dict] = manifest["files"]
    good: list[tuple[_Task, _Result]] = []
    for task, result in done:
        if result.error is not None:
            report.failed.append(result.error)
        elif result.unchanged:
            # Same content, new mtime (a re-download): remember the new stat so it is not hashed again.
            entries[task.flat.relpath].update(size=task.size, mtime_ns=task.mtime_ns)
            report.skipped.append(task.flat.relpath)
        else:
            good.append((task, result))
    if good:
        asset = good[0][0].flat.asset_class
        replaced = {task.flat.date for task, _ in good}
        chunks: dict[str, list[pa.Table]] = defaultdict(list)
        outputs: dict[str, set[str]] = defaultdict(set)
        touched: set[str] = set()
        for task, result in good:
            touched.update(task.old_outputs)
            if not result.slices:
                continue
            table = paipc.open_file(pa.memory_map(task.staging)).read_all()
            for key, offset, length in result.slices:
                part = partition_relpath(task.flat.asset_class, task.flat.timeframe, key, task.flat.date)
                chunks[part].append(table.slice(offset, length))
                outputs[task.flat.relpath].add(part)
        touched.update(chunks)
        try:
            for part in sorted(touched):
                stored = _merge_partition(fs, f"{base}/{part}", chunks.get(part, []), replaced, _SORT[asset])
                if stored >= 0:
                    report.partitions_written += 1
        except OSError as exc:
            for task, _ in good:
                report.failed.append(FileError(
                    task.display, f"could not write the store at {report.dst} ({exc})",
                    f"Stored partitions are each either old or new, none half-written; fix the cause, {_RERUN}.",
                ))
            good = []
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for task, result in good:
            entries[task.flat.relpath] = {
                "source": task.display,
                "asset_class": task.flat.asset_class.value,
                "timeframe": task.flat.timeframe.value,
                "date": task.flat.date.isoformat(),
                "size": task.size,
                "mtime_ns": task.mtime_ns,
                "sha256": result.sha256,
                "rows_read": result.rows_read,
                "rows": result.rows_kept,
                "tickers": list(task.tickers) if task.tickers is not None else None,
                "outputs": sorted(outputs[task.flat.relpath]),
                "ingested_at": now,
            }
            report.ingested.append(task.flat.relpath)
            report.rows_read += result.rows_read
            report.rows_written += result.rows_kept
    for task, _ in done:
        with contextlib.suppress(FileNotFoundError):
            os.remove(task.staging)
    if good or any(result.unchanged for _, result in done):
        _write_manifest(fs, base, manifest)

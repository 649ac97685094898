"""The validator's dry run: a short backtest of a space's default spec on the idea's own instrument.

It reads the instrument the space trades from the given Parquet store. Missing data is an error
(:class:`MissingDryRunData`) that names the ticker and the ``search data`` commands that get it;
synthetic data is generated for the instrument only when asked for (``synth_missing=True``, the
``search seed --synth-missing`` flag), and the metrics then say so (``synthetic_data = 1``) so the
written space records that its dry run never saw market data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from data.store import Store
from evaluator.fast import run
from evaluator.market import load_market, signal_symbol
from spec_space.space import DefaultSource, SpecSpace

SESSIONS = 10


class MissingDryRunData(LookupError):
    """The store has no bars of the idea's instrument for the dry-run window."""


def _synth_ticker(kind: str, ticker: str) -> str:
    return ticker if ticker.startswith("C:") or kind != "forex" else "C:" + ticker


class DryRunner:
    def __init__(self, store_root: str | Path | None, cache_dir: str | Path = "studies/.seed_data", *,
                 synth_missing: bool = False) -> None:
        self.store_root = store_root
        self.cache_dir = Path(cache_dir)
        self.synth_missing = synth_missing

    def _from_store(self, ticker: str, start: dt.date, end: dt.date) -> Store | None:
        if self.store_root is None or not Path(str(self.store_root)).exists():
            return None
        store = Store(self.store_root)
        try:
            return store if store.sessions(ticker, start, end) else None
        except LookupError:
            return None

    def _missing(self, ticker: str, kind: str, start: dt.date, end: dt.date) -> MissingDryRunData:
        root = self.store_root if self.store_root is not None else "sample_data/store"
        options = " (with its option chains)" if kind == "option" else ""
        return MissingDryRunData(
            f"no {kind} data for {ticker}{options} between {start} and {end} in the store at {root}, so the idea "
            f"cannot be dry-run on its own instrument. Get it with `search data ingest --src <Polygon flat-file "
            f"root> --dst {root} --tickers {ticker}`, or generate sample data with `search data synth --root "
            f"<flat dir> --tickers {_synth_ticker(kind, ticker)} --start {start} --end {end}` and then `search "
            f"data ingest --src <flat dir> --dst {root}`; or rerun `search seed --synth-missing` to dry-run on "
            f"generated data (the space then says so in its provenance)."
        )

    def _synthetic(self, ticker: str, kind: str, start: dt.date, end: dt.date) -> Store:
        from data.ingest import ingest
        from data.synth import generate

        key = hashlib.sha256(f"{ticker}:{kind}:{start}:{end}".encode()).hexdigest()[:12]
        root = self.cache_dir / key
        store_dir = root / "store"
        if not (store_dir / "_manifest.json").exists():
            generate(root / "flat", tickers=[_synth_ticker(kind, ticker)], start=start, end=end, seed=1,
                     options=kind == "option")
            report = ingest(root / "flat", store_dir, tickers=None, workers=1)
            if report.failed:
                raise RuntimeError(f"sample data for {ticker} did not ingest: {report.summary()}")
        return Store(store_dir)

    def __call__(self, space: SpecSpace) -> dict[str, float]:
        spec = space.build(space.suggest(DefaultSource(space)))
        kind = spec.instrument.type
        ticker = spec.instrument.symbol if kind == "future" else signal_symbol(spec)
        start = space.data.start
        # daily bars need the whole window: a 200-day average has no value in ten sessions
        end = space.data.end if spec.timeframe == "1d" else min(space.data.end, start + dt.timedelta(days=SESSIONS * 2))
        store, synthetic = self._from_store(ticker, start, end), False
        if store is None:
            if not self.synth_missing:
                raise self._missing(ticker, kind, start, end)
            store, synthetic = self._synthetic(ticker, kind, start, end), True
        market = load_market(store, spec, start, end)
        result = run(spec, market, start, end)
        metrics = {k: float(result.metrics[k]) for k in ("n_trades", "total_return", "sharpe")}
        metrics["synthetic_data"] = 1.0 if synthetic else 0.0
        metrics["sessions"] = float(len(store.sessions(ticker, start, end)))
        return metrics

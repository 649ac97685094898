"""The validator's dry run: a short backtest of a space's default spec on sample data.

It uses the given Parquet store when it holds the instrument; otherwise it generates a few
sessions of synthetic data for that instrument into a cache folder, so a new space can always be
exercised end to end without the user preparing data first.
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


class DryRunner:
    def __init__(self, store_root: str | Path | None, cache_dir: str | Path = "studies/.seed_data") -> None:
        self.store_root = store_root
        self.cache_dir = Path(cache_dir)

    def _store_for(self, ticker: str, start: dt.date, end: dt.date) -> Store:
        if self.store_root is not None and Path(str(self.store_root)).exists():
            store = Store(self.store_root)
            try:
                if store.sessions(ticker, start, end):
                    return store
            except LookupError:
                pass
        return self._synthetic(ticker, start)

    def _synthetic(self, ticker: str, start: dt.date) -> Store:
        from data.ingest import ingest
        from data.synth import generate

        key = hashlib.sha256(f"{ticker}:{start}".encode()).hexdigest()[:12]
        root = self.cache_dir / key
        store_dir = root / "store"
        if not (store_dir / "_manifest.json").exists():
            end = start + dt.timedelta(days=SESSIONS * 2)
            generate(root / "flat", tickers=[ticker], start=start, end=end, seed=1, options=True)
            report = ingest(root / "flat", store_dir, tickers=None, workers=1)
            if report.failed:
                raise RuntimeError(f"sample data for {ticker} did not ingest: {report.summary()}")
        return Store(store_dir)

    def __call__(self, space: SpecSpace) -> dict[str, float]:
        spec = space.build(space.suggest(DefaultSource(space)))
        ticker = signal_symbol(spec)
        if spec.instrument.type == "future":
            ticker = spec.instrument.symbol
        start = space.data.start
        end = min(space.data.end, start + dt.timedelta(days=SESSIONS * 2))
        store = self._store_for(ticker, start, end)
        market = load_market(store, spec, start, end)
        result = run(spec, market, start, end)
        return {k: float(result.metrics[k]) for k in ("n_trades", "total_return", "sharpe")}

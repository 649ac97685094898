"""Fixtures for the search tests: a small sample store (3 months of SPY minute bars) and space files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

START = dt.date(2024, 1, 2)
END = dt.date(2024, 3, 28)

#: An sma_cross-like space: 3 folds of 24 train / 1 embargo / 8 test sessions, then an embargo and a 10-session
#: holdout, fit the 61 sessions above.
SPACE: dict[str, Any] = {
    "name": "sma_small",
    "data": {"start": str(START), "end": str(END)},
    "walk_forward": {
        "scheme": "rolling",
        "train_days": 24,
        "test_days": 8,
        "embargo_days": 1,
        "folds": 3,
        "holdout_days": 10,
    },
    "objectives": [
        {"metric": "sharpe", "direction": "maximize"},
        {"metric": "max_drawdown", "direction": "minimize"},
    ],
    "constraints": [{"metric": "n_trades", "op": ">=", "value": 5}],
    "params": {
        "fast": {"int": [3, 20]},
        "slow": {"int": [20, 80], "step": 5},
        "stop_pct": {"float": [0.002, 0.02], "log": True},
    },
    "spec": {
        "name": "sma_small",
        "instrument": {"type": "stock", "symbol": "SPY"},
        "timeframe": "1min",
        "direction": "long",
        "entry": {
            "long": "crosses_above(sma(close, $fast), sma(close, $slow))",
            "window_start": "09:45",
            "window_end": "15:30",
        },
        "exits": {
            "exit_long": "crosses_below(sma(close, $fast), sma(close, $slow))",
            "stop_loss": {"pct": "$stop_pct"},
            "eod_flat_time": "15:55",
        },
        "sizing": {"mode": "pct_equity", "pct_equity": 0.5},
        "costs": {"commission_per_share": 0.005, "slippage_bps": 1.0},
    },
}


def write_space(folder: Path, name: str = "sma_small", **changes: Any) -> Path:
    """Write :data:`SPACE` with top-level ``changes`` (and ``params`` merged key by key) to a YAML file."""
    space = {**SPACE, "name": name, **{k: v for k, v in changes.items() if k != "params"}}
    if "params" in changes:
        space["params"] = {**SPACE["params"], **changes["params"]}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Parquet store of synthetic SPY minute bars, 2024-01-02 .. 2024-03-28 (61 sessions)."""
    from data.ingest import ingest
    from data.synth import generate

    root = tmp_path_factory.mktemp("sample")
    generate(root / "flat", tickers=["SPY"], start=START, end=END, seed=11, options=False)
    report = ingest(root / "flat", root / "store", tickers=["SPY"])
    assert not report.failed, report.summary()
    return str(root / "store")


@pytest.fixture(scope="session")
def space_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spaces")


@pytest.fixture(scope="session")
def space_file(space_dir: Path) -> Path:
    return write_space(space_dir)


@pytest.fixture(scope="session")
def postgres_url() -> Any:
    """A real local PostgreSQL (Debian's package) for the session: ``postgresql://farm:...@127.0.0.1:PORT/farm``."""
    from tests.services import postgres_server

    with postgres_server() as url:
        yield url

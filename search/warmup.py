"""``search warmup``: compile (and cache) the fast engine's numba kernels once, at install time.

The kernels are ``@numba.njit(cache=True)``: the first process to run them compiles for ~15 s and
writes the machine code next to the sources (``__pycache__``); every later process loads it in well
under a second. ``search warmup`` runs each shipped space's default spec over a few days of generated
sample data in a temporary folder (nothing is left behind), so a new user's first ``search backtest``
or ``search run`` does not pay for compilation. ``scripts/demo.sh`` and ``.ci/run`` call it after install.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

__all__ = ["warmup", "warmup_command"]

SPACES = Path(__file__).resolve().parent.parent / "spec_space"
START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 19)


def warmup(echo: Callable[[str], None] = print) -> dict[str, float]:
    """Backtest every shipped space's defaults on generated data; returns seconds per space."""
    from data.ingest import ingest
    from data.store import Store
    from data.synth import DEFAULT_TICKERS, generate
    from evaluator.engines import get_engine
    from evaluator.market import load_market
    from spec_space.loader import load_space
    from spec_space.space import DefaultSource

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="farm-warmup-") as tmp:
        root = Path(tmp)
        generate(root / "flat", tickers=list(DEFAULT_TICKERS), start=START, end=END, seed=1)
        ingest(root / "flat", root / "store", workers=1)
        store = Store(root / "store")
        engine = get_engine("fast")
        for path in sorted(SPACES.glob("*.yaml")):
            t0 = time.perf_counter()
            try:
                space = load_space(path)
                spec = space.build(space.suggest(DefaultSource(space)))
                market = load_market(store, spec, START, END)
                engine(spec, market, START, END)
            except Exception as exc:  # noqa: BLE001 - a space the sample cannot run still warms the rest
                echo(f"  {path.stem}: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
                continue
            timings[path.stem] = time.perf_counter() - t0
            echo(f"  {path.stem}: {timings[path.stem]:.1f} s")
    return timings


@click.command("warmup")
def warmup_command() -> None:
    """Compile and cache the fast engine's kernels (run once after install; later runs take ~1 s)."""
    t0 = time.perf_counter()
    click.echo("compiling the fast engine's kernels (cached for every later run)...")
    warmup(click.echo)
    click.echo(f"warm in {time.perf_counter() - t0:.1f} s")

"""The search driver's own cost per trial, with a zero-cost objective, and what it caps on a cluster.

    python -m benchmarks.bench_driver [--trials 400] [--postgres URL|auto] [--workers-cost-ms X]

``search run``'s loop (ask, suggest, budget check, record file, user attributes, tell, progress) runs
with an executor that answers every trial at once with a canned outcome (one real walk-forward trial's,
so records and attributes have their real size): the loop time per trial is the driver's cost alone.
Measured on SQLite (the default), Optuna's journal file, and PostgreSQL (``--postgres auto`` starts a
throw-away local server as tests/services.py does; needs Debian's postgresql). Then, from the driver
cost and the worker cost per trial (one in-process walk-forward trial of the same space, plus Ray's
per-task cost unless given), it prints the throughput the study would reach on 8, 32 and 128 workers:
``min(workers / worker cost, 1 / driver cost)``, and which one caps it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna

import search.run as run_module
from benchmarks.bench_search import _setup, space_dict
from data.ingest import ingest
from data.synth import generate
from evaluator.trial import evaluate_params
from search.executor import TaskResult
from search.run import RunConfig, run_search
from spec_space.space import RandomSource

#: Ray's own cost per task measured by bench_search (ray x1 eval minus in-process), used when not measured
RAY_TASK_MS = 4.8


class ZeroCostExecutor:
    """Answers every trial at once with a canned outcome carrying the trial's own parameters."""

    kind = "zero-cost"
    workers = 1

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.queue: list[tuple[int, dict]] = []

    def submit(self, number: int, values: dict) -> None:
        self.queue.append((number, values))

    def next_result(self, timeout: float | None = None) -> TaskResult | None:
        number, values = self.queue.pop(0)
        return TaskResult(number, outcome=dataclasses.replace(self.outcome, values=values), worker="0@bench")

    def pending(self) -> int:
        return len(self.queue)

    def cancel(self) -> list[int]:
        numbers = [n for n, _ in self.queue]
        self.queue.clear()
        return numbers

    def close(self) -> None:
        pass


def driver_cost(space_path: Path, store: str, root: Path, storage: str | None, trials: int, outcome: Any,
                name: str, sampler: str = "tpe") -> float:
    """Milliseconds of driver per trial over ``trials`` zero-cost trials (after a one-batch warm-up)."""
    original = run_module.make_executor
    run_module.make_executor = lambda *a, **k: ZeroCostExecutor(outcome)
    try:
        def config(n: int) -> RunConfig:
            return RunConfig(space_path=space_path, trials=n, study=name, sampler=sampler, seed=0, use_ray=False,
                             data_root=store, studies_root=root, storage=storage, progress=False)

        run_search(config(run_module.BATCH_SIZE), echo=lambda _: None)  # creates the study, warms caches
        started = time.perf_counter()
        summary = run_search(config(run_module.BATCH_SIZE + trials), echo=lambda _: None)
        elapsed = summary.timings.get("loop_s", time.perf_counter() - started)
    finally:
        run_module.make_executor = original
    return 1000 * elapsed / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--sampler", default="tpe", help="Sampler of the timed study (default tpe).")
    parser.add_argument("--postgres", default=None, help="A PostgreSQL URL, or 'auto' to start a local one.")
    parser.add_argument("--workers-cost-ms", type=float, default=None,
                        help="Worker cost per trial (default: measured in-process + Ray's per-task cost).")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = dt.date(2024, 1, 2)
    end = start + dt.timedelta(days=120)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        generate(work / "flat", tickers=["SPY"], start=start, end=end, seed=5, options=False)
        ingest(work / "flat", work / "store", tickers=["SPY"])
        store = str(work / "store")
        space_path = work / "bench_sma.yaml"
        space_path.write_text(yaml.safe_dump(space_dict(start, end), sort_keys=False))
        space, market, folds = _setup(space_path, store)
        outcome = evaluate_params(space, space.suggest(RandomSource(1)), market, folds)
        t0 = time.perf_counter()
        n_eval = 30
        for seed in range(n_eval):
            evaluate_params(space, space.suggest(RandomSource(seed)), market, folds)
        eval_ms = 1000 * (time.perf_counter() - t0) / n_eval
        worker_ms = args.workers_cost_ms if args.workers_cost_ms is not None else eval_ms + RAY_TASK_MS

        storages: dict[str, str | None] = {"SQLite": None, "journal": f"journal:{work / 'farm.log'}"}
        if args.postgres == "auto":
            from tests.services import postgres_server

            storages["PostgreSQL"] = stack.enter_context(postgres_server())
        elif args.postgres:
            storages["PostgreSQL"] = args.postgres
        costs = {}
        for label, url in storages.items():
            costs[label] = driver_cost(space_path, store, work / "studies", url, args.trials, outcome,
                                       f"zero_{label.lower()}", args.sampler)
    print(f"driver cost per trial, zero-cost objective, {args.sampler}, {args.trials} trials after a warm-up batch:")
    for label, ms in costs.items():
        print(f"  {label:<11} {ms:7.2f} ms/trial  (caps the study at {1000 / ms:7.0f} trials/s)")
    source = "given" if args.workers_cost_ms is not None else f"{eval_ms:.1f} ms evaluation + {RAY_TASK_MS} ms Ray task"
    print(f"worker cost per trial: {worker_ms:.1f} ms ({source}; 3 folds, 6 backtests)")
    print(f"{'projected trials/s':<20}" + "".join(f"{f'{w} workers':>16}" for w in (8, 32, 128)))
    for label, ms in costs.items():
        cells = []
        for workers in (8, 32, 128):
            rate = min(workers * 1000 / worker_ms, 1000 / ms)
            capped = "driver" if 1000 / ms < workers * 1000 / worker_ms else "workers"
            cells.append(f"{rate:>8.0f} ({capped:>7})")
        print(f"{label:<20}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()

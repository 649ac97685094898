"""Search throughput: trials per second inline and on Ray with 1 and 2 workers, printed side by side.

    python -m benchmarks.bench_search [--trials 96] [--months 4] [--keep DIR]

Generates synthetic SPY minute bars (options off), ingests them, writes an sma-cross space with three
walk-forward folds (so one trial = six backtests), then runs the same study settings (random sampler,
seed 0, SQLite storage) four ways:

* ``evaluate only``: ``evaluate_params`` in a loop, no Optuna, no storage (the floor);
* ``ray x1 eval`` and ``ray x2 eval``: the same trials as Ray tasks, no Optuna (Ray's own cost);
* ``inline x1``: ``search run --no-ray --workers 1`` (ask / evaluate / record / tell in one process);
* ``ray x1`` and ``ray x2``: local Ray with 1 and 2 worker processes;
* ``inline journal`` and ``ray x2 journal``: the same with Optuna's journal file storage instead of SQLite.

For each it prints the total loop time, trials/s over the whole loop and in steady state (searches:
trials asked after the first two batches, when every worker has loaded its market, timed by the
times their batches were asked), and Ray's start-up time;
then ``bench_driver``'s table (the driver alone, zero-cost objective, on SQLite, PostgreSQL and the
journal file at 100, 1,000 and 10,000 trials) and from it and the measured Ray worker cost the
throughput the same study would reach on 8, 32 and 128 workers, ``min(workers / worker cost, 1 /
driver cost)``, and which one caps it.
"""

from __future__ import annotations

import argparse
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

from data.ingest import ingest
from data.store import Store
from data.synth import generate
from evaluator.market import load_market
from evaluator.trial import evaluate_params
from evaluator.walkforward import make_folds
from search.executor import RayExecutor, WorkContext
from search.run import RunConfig, run_search
from search.study import open_storage, storage_url
from spec_space.loader import load_space
from spec_space.space import DefaultSource, RandomSource

BATCH = 8


def space_dict(start: dt.date, end: dt.date) -> dict[str, Any]:
    return {
        "name": "bench_sma",
        "data": {"start": str(start), "end": str(end)},
        "walk_forward": {
            "scheme": "rolling",
            "train_days": 30,
            "test_days": 8,
            "embargo_days": 1,
            "folds": 3,
        },
        "objectives": [{"metric": "sharpe", "direction": "maximize"}],
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 5}],
        "params": {
            "fast": {"int": [3, 20]},
            "slow": {"int": [20, 80], "step": 5},
            "stop_pct": {"float": [0.002, 0.02], "log": True},
        },
        "spec": {
            "name": "bench_sma",
            "instrument": {"type": "stock", "symbol": "SPY"},
            "timeframe": "1min",
            "direction": "long",
            "entry": {"long": "crosses_above(sma(close, $fast), sma(close, $slow))"},
            "exits": {
                "exit_long": "crosses_below(sma(close, $fast), sma(close, $slow))",
                "stop_loss": {"pct": "$stop_pct"},
                "eod_flat_time": "15:55",
            },
            "sizing": {"mode": "pct_equity", "pct_equity": 0.5},
        },
    }


def _setup(space_path: Path, store: str) -> tuple[Any, Any, list[Any]]:
    space = load_space(space_path)
    st = Store(store)
    spec = space.build(space.suggest(DefaultSource(space)))
    market = load_market(st, spec, space.data.start, space.data.end)
    wf = space.walk_forward
    folds = make_folds(
        st.sessions("SPY", space.data.start, space.data.end),
        scheme=wf.scheme,
        train_days=wf.train_days,
        test_days=wf.test_days,
        embargo_days=wf.embargo_days,
        n_folds=wf.folds,
    )
    return space, market, folds


def evaluate_only(space_path: Path, store: str, trials: int) -> dict[str, float]:
    """``evaluate_params`` in a loop in this process: no executor, no Optuna, no storage."""
    space, market, folds = _setup(space_path, store)
    for seed in range(3):  # warm-up: numba and signal code paths
        evaluate_params(space, space.suggest(RandomSource(10_000 + seed)), market, folds)
    started = time.perf_counter()
    for seed in range(trials):
        evaluate_params(space, space.suggest(RandomSource(seed)), market, folds)
    loop = time.perf_counter() - started
    return {"loop_s": loop, "rate": trials / loop, "steady": trials / loop, "start_s": 0.0}


def ray_evaluate_only(space_path: Path, store: str, trials: int, workers: int) -> dict[str, float]:
    """The same trials as Ray tasks through the executor (no Optuna, no storage): Ray's own cost."""
    space, _, folds = _setup(space_path, store)
    ctx = WorkContext(space, space.content_hash(), store, tuple(folds))
    started = time.perf_counter()
    executor = RayExecutor(ctx, workers=workers)
    start_s = time.perf_counter() - started
    try:
        for seed in range(4 * workers):  # warm-up: every worker imports, loads its market, compiles
            executor.submit(seed, space.suggest(RandomSource(10_000 + seed)))
        while executor.pending():
            executor.next_result()
        started = time.perf_counter()
        for seed in range(trials):
            executor.submit(seed, space.suggest(RandomSource(seed)))
        while executor.pending():
            assert executor.next_result().ok
        loop = time.perf_counter() - started
    finally:
        executor.close()
    return {"loop_s": loop, "rate": trials / loop, "steady": trials / loop, "start_s": start_s}


def search(
    space_path: Path,
    store: str,
    root: Path,
    name: str,
    trials: int,
    *,
    ray: bool,
    workers: int,
    storage: str | None = None,
) -> dict[str, float]:
    config = RunConfig(
        space_path=space_path,
        trials=trials,
        study=name,
        sampler="random",
        seed=0,
        use_ray=ray,
        workers=workers,
        data_root=store,
        studies_root=root,
        storage=storage,
        batch_size=BATCH,
        progress=False,
    )
    summary = run_search(config, echo=lambda _: None)
    study = optuna.load_study(study_name=name, storage=open_storage(storage_url(storage, root)))
    # trials are written to the storage in batches, so their completion times are flush times; their start
    # times are the times each batch was asked, which the driver does as fast as batches come back
    starts = sorted(t.datetime_start for t in study.get_trials() if t.datetime_start is not None)
    warm = 2 * BATCH
    last = starts.index(starts[-1])  # the first trial of the last batch
    steady = (
        (last - warm) / (starts[last] - starts[warm]).total_seconds()
        if last > warm and starts[last] > starts[warm]
        else float("nan")
    )
    loop = summary.timings["loop_s"]
    return {
        "loop_s": loop,
        "rate": trials / loop,
        "steady": steady,
        "start_s": summary.timings["executor_start_s"],
    }


def main() -> None:
    from benchmarks.bench_driver import driver_table, print_projection, print_table  # it imports this module

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=96)
    # 4: three folds of 30 + 1 + 8 sessions plus the default holdout (16 sessions and an embargo) fit
    parser.add_argument("--months", type=int, default=4)
    parser.add_argument(
        "--keep", type=Path, default=None, help="Work folder to keep (default: a temporary one)."
    )
    parser.add_argument("--driver-trials", type=int, default=200, help="Trials timed per driver cell.")
    parser.add_argument("--driver-sizes", default="100,1000,10000", help="Study sizes of the driver table.")
    parser.add_argument("--postgres", default="auto", help="'auto' (a local throw-away server), a URL, or 'none'.")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = dt.date(2024, 1, 2)
    end = start + dt.timedelta(days=30 * args.months)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        generate(work / "flat", tickers=["SPY"], start=start, end=end, seed=5, options=False)
        ingest(work / "flat", work / "store", tickers=["SPY"])
        store = str(work / "store")
        space_path = work / "bench_sma.yaml"
        space_path.write_text(yaml.safe_dump(space_dict(start, end), sort_keys=False))
        sessions = len(Store(store).sessions("SPY", start, end))
        print(
            f"{args.trials} trials of 3 walk-forward folds (6 backtests each) over {sessions} SPY minute sessions, "
            f"random sampler, SQLite, batch {BATCH}"
        )
        rows = {"evaluate only": evaluate_only(space_path, store, args.trials)}
        rows["ray x1 eval"] = ray_evaluate_only(space_path, store, args.trials, 1)
        rows["ray x2 eval"] = ray_evaluate_only(space_path, store, args.trials, 2)
        root = work / "studies"
        search(space_path, store, root, "warmup", BATCH, ray=False, workers=1)  # imports, numba cache
        rows["inline x1"] = search(space_path, store, root, "inline1", args.trials, ray=False, workers=1)
        rows["ray x1"] = search(space_path, store, root, "ray1", args.trials, ray=True, workers=1)
        rows["ray x2"] = search(space_path, store, root, "ray2", args.trials, ray=True, workers=2)
        journal = f"journal:{root / 'farm.log'}"
        rows["inline journal"] = search(
            space_path, store, root, "j1", args.trials, ray=False, workers=1, storage=journal
        )
        rows["ray x2 journal"] = search(
            space_path, store, root, "j2", args.trials, ray=True, workers=2, storage=journal
        )
        # the driver alone (bench_driver's zero-cost loop) on each storage as the study grows
        space, market, folds = _setup(space_path, store)
        outcome = evaluate_params(space, space.suggest(RandomSource(1)), market, folds)
        costs, note = driver_table(
            space_path,
            store,
            work / "driver",
            outcome,
            trials=args.driver_trials,
            sizes=tuple(int(s) for s in args.driver_sizes.split(",")),
            samplers=("tpe",),
            postgres=args.postgres,
        )
    print(f"{'':<14}{'loop s':>9}{'trials/s':>10}{'steady/s':>10}{'ms/trial':>10}{'start s':>9}")
    for name, r in rows.items():
        print(
            f"{name:<14}{r['loop_s']:>9.2f}{r['rate']:>10.1f}{r['steady']:>10.1f}{1000 / r['steady']:>10.1f}"
            f"{r['start_s']:>9.2f}"
        )
    floor = 1000 / rows["evaluate only"]["steady"]
    print(
        f"Ray per trial at 1 worker: {1000 / rows['ray x1 eval']['steady'] - floor:+.1f} ms vs in-process "
        f"evaluation ({floor:.1f} ms); 2 Ray workers evaluate x"
        f"{rows['ray x2 eval']['steady'] / rows['ray x1 eval']['steady']:.2f} as fast as 1.\n"
        f"The driver (ask, record, attrs, tell) costs {1000 / rows['inline x1']['steady'] - floor:.1f} ms per "
        f"trial with SQLite and {1000 / rows['inline journal']['steady'] - floor:.1f} ms with the journal file; "
        f"a search runs at most at the driver's rate, whatever the workers."
    )
    worker_ms = 1000 / rows["ray x1 eval"]["steady"]  # evaluation + Ray's per-task cost, one worker
    print()
    print_table(costs, args.driver_trials)
    if note:
        print(note)
    print_projection(costs, worker_ms, "one Ray worker: evaluation + Ray's per-task cost, measured above")


if __name__ == "__main__":
    main()

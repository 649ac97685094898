"""The search driver's own cost per trial, with a zero-cost objective, as the study grows; what it caps.

    python -m benchmarks.bench_driver [--trials 200] [--sizes 100,1000,10000] [--samplers tpe,nsga2,random]
                                      [--postgres auto|URL|none] [--workers-cost-ms X]

``search run``'s loop (ask on the study mirror, suggest, budget check, batched storage writes, record
file, tell, progress) runs with an executor that answers every trial at once with a canned outcome (one
real walk-forward trial's, so records and attributes have their real size): the loop time per trial is
the driver's cost alone. For each storage (SQLite, PostgreSQL, Optuna's journal file) and each study
size S the study is first filled to S trials, then ``--trials`` more are timed, so the table shows the
per-trial cost at 100, 1,000 and 10,000 trials side by side. Beside it, each sampler alone (ask, suggest
and tell on an in-memory mirror holding as many finished trials as the window shows, no storage): the
part of the driver's cost that is the sampler's own model, which no storage or batching can remove (the
genetic samplers see the whole study, so theirs grows with it; the table above shows by how much). The fill writes S - 8 trials of random
parameters with the same attributes straight through :mod:`search.batch_storage` (a few seconds,
instead of minutes through the loop); the first 8 come from a real ``search run`` that creates the study.

``--postgres auto`` (the default) starts a throw-away local server as tests/services.py does (needs
Debian's postgresql; skipped with a note if it is missing), ``none`` leaves PostgreSQL out.

Then, from the driver cost and the worker cost per trial (one in-process walk-forward trial of the same
space, plus Ray's per-task cost unless given), the throughput the study would reach on 8, 32 and 128
workers: ``min(workers / worker cost, 1 / driver cost)``, and which one caps it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import itertools
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna

import search.run as run_module
from benchmarks.bench_search import _setup, space_dict
from data.ingest import ingest
from data.safe import json_safe
from data.synth import generate
from evaluator.trial import TrialOutcome, evaluate_params
from search.batch_storage import FinishedTrial, NewTrial, create_running, finish
from search.executor import SerialExecutor, TaskResult
from search.mirror import BEST_PER_OBJECTIVE, RECENT, make_mirror
from search.run import RunConfig, run_search
from search.study import make_sampler, open_storage, storage_url
from spec_space.space import RandomSource, SpecSpace

#: Ray's own cost per task measured by bench_search (ray x1 eval minus in-process), used when not measured
RAY_TASK_MS = 4.8
SIZES = (100, 1000, 10000)
FILL_CHUNK = 500


class ZeroCostExecutor(SerialExecutor):
    """Answers every trial at once with a canned outcome carrying the trial's own parameters."""

    kind = "zero-cost"

    def __init__(self, outcome: Any) -> None:
        super().__init__()
        self.outcome = outcome

    def evaluate(self, number: int, values: dict) -> TaskResult:
        return TaskResult(number, outcome=dataclasses.replace(self.outcome, values=values), worker="0@bench")


@contextlib.contextmanager
def zero_cost(outcome: TrialOutcome) -> Iterator[None]:
    original = run_module.make_executor
    run_module.make_executor = lambda *a, **k: ZeroCostExecutor(outcome)
    try:
        yield
    finally:
        run_module.make_executor = original


def random_trials(space: SpecSpace, count: int, seed: int) -> Iterator[optuna.trial.Trial]:
    """``count`` trials of ``space`` with random parameters (asked on a throw-away study)."""
    draw = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed))
    for _ in range(count):
        trial = draw.ask()
        space.suggest(trial)
        yield trial


def fill(url: str, name: str, space: SpecSpace, outcome: TrialOutcome, count: int, seed: int = 0) -> None:
    """Add ``count`` finished trials of random parameters and the canned outcome's attributes."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    rng = random.Random(seed)
    attrs = {
        "is_mean": json_safe(outcome.is_mean),
        "val_mean": json_safe(outcome.val_mean),
        "val_folds": json_safe([dict(f.val_metrics) for f in outcome.folds]),
        "info": json_safe({"record": "trials/none.npz", "feasible": outcome.feasible,
                           "is_folds": [dict(f.is_metrics) for f in outcome.folds], "worker": "0@fill"}),
    }  # fmt: skip
    constraints = {f"constraints:{c.name}": -1.0 for c in space.constraints}
    trials = random_trials(space, count, seed)
    for _chunk in range(0, count, FILL_CHUNK):
        new = [
            NewTrial(dict(trial.params), dict(trial.distributions))
            for trial in itertools.islice(trials, FILL_CHUNK)
        ]
        created = create_running(study._storage, study._study_id, new)
        n_obj = len(study.directions)
        finish(study._storage, [
            FinishedTrial(trial_id, optuna.trial.TrialState.COMPLETE, [rng.gauss(0, 1) for _ in range(n_obj)],
                          attrs, constraints)
            for trial_id, _number in created
        ])  # fmt: skip


def driver_cost(space_path: Path, store: str, root: Path, storage: str | None, trials: int, outcome: Any,
                name: str, sampler: str = "tpe", size: int = 0) -> float:
    """Milliseconds of driver per trial over ``trials`` zero-cost trials, timed once the study holds
    ``size`` trials (at least one warm-up batch)."""
    def config(n: int) -> RunConfig:
        return RunConfig(space_path=space_path, trials=n, study=name, sampler=sampler, seed=0, use_ray=False,
                         data_root=store, studies_root=root, storage=storage, progress=False)

    batch = run_module.BATCH_SIZE
    with zero_cost(outcome):
        run_search(config(batch), echo=lambda _: None)  # creates the study, warms caches
        before = max(size, batch)
        if before > batch:
            from spec_space.loader import load_space

            fill(storage_url(storage, root), name, load_space(space_path), outcome, before - batch)
        started = time.perf_counter()
        summary = run_search(config(before + trials), echo=lambda _: None)
        elapsed = summary.timings.get("loop_s", time.perf_counter() - started)
    if summary.failed:
        # a failed trial skips the record and most of the tell: its time would flatter the driver
        raise SystemExit(
            f"{name}: {summary.failed} of the timed trials failed"
            + (f" ({summary.errors} raised; the first: {summary.first_error})" if summary.errors else "")
            + "; no timing reported"
        )
    return 1000 * elapsed / trials


def sampler_cost(space: SpecSpace, sampler: str, trials: int) -> float:
    """Milliseconds per trial of the sampler alone: ask, suggest and tell on a study mirror holding as many
    finished trials as the window shows (what a windowed sampler sees from a few hundred trials on), in
    the driver's batches, no storage."""
    n_obj = len(space.objectives)
    rng = random.Random(0)
    finished = [
        optuna.trial.create_trial(
            params=trial.params, distributions=trial.distributions, values=[rng.gauss(0, 1) for _ in range(n_obj)],
            system_attrs={f"constraints:{c.name}": rng.choice((-1.0, 1.0)) for c in space.constraints},
        )
        for trial in random_trials(space, BEST_PER_OBJECTIVE * n_obj + RECENT, seed=0)
    ]  # fmt: skip
    directions = [optuna.study.StudyDirection[o.direction.upper()] for o in space.objectives]
    mirror = make_mirror(directions, make_sampler(sampler, seed=0, n_objectives=n_obj), finished, {})
    batch = run_module.BATCH_SIZE
    started = time.perf_counter()
    for _ in range(max(1, trials // batch)):
        asked = []
        for _ in range(batch):
            trial = mirror.ask()
            space.suggest(trial)
            asked.append(trial)
        for trial in asked:
            for constraint in space.constraints:
                trial.set_constraint(constraint.name, -1.0)
            mirror.tell(trial, [rng.gauss(0, 1) for _ in range(n_obj)])
    return 1000 * (time.perf_counter() - started) / (max(1, trials // batch) * batch)


def driver_table(space_path: Path, store: str, work: Path, outcome: Any, *, trials: int, sizes: tuple[int, ...],
                 samplers: tuple[str, ...], postgres: str | None) -> tuple[dict[str, dict[int, float]], str]:
    """``{"<storage> <sampler>": {study size: ms per trial}}`` and a note on what was left out."""
    note = ""
    with contextlib.ExitStack() as stack:
        storages: dict[str, str | None] = {"SQLite": None}
        if postgres == "auto":
            try:
                from tests.services import postgres_server

                storages["PostgreSQL"] = stack.enter_context(postgres_server())
            except Exception as exc:  # noqa: BLE001 - the rest of the table is still worth printing
                note = f"PostgreSQL left out: {type(exc).__name__}: {exc}"
        elif postgres and postgres != "none":
            storages["PostgreSQL"] = postgres
        storages["journal"] = f"journal:{work / 'farm.log'}"
        costs: dict[str, dict[int, float]] = {}
        for label, url in storages.items():
            for sampler in samplers:
                costs[f"{label} {sampler}"] = {
                    size: driver_cost(space_path, store, work / "studies", url, trials, outcome,
                                      f"zero_{label.lower()}_{sampler}_{size}", sampler, size)
                    for size in sizes
                }  # fmt: skip
    return costs, note


def print_table(costs: dict[str, dict[int, float]], trials: int) -> None:
    sizes = sorted({s for row in costs.values() for s in row})
    print(f"driver ms per trial, zero-cost objective, {trials} trials timed once the study holds:")
    print(f"{'storage, sampler':<20}" + "".join(f"{f'{s:,} trials':>15}" for s in sizes))
    for label, row in costs.items():
        print(f"{label:<20}" + "".join(f"{row[s]:>12.2f} ms" for s in sizes))


def print_sampler_table(costs: dict[str, float], trials: int) -> None:
    window = f"{BEST_PER_OBJECTIVE} best per objective + {RECENT} recent"
    print(f"sampler alone, ms per trial ({trials} asks on an in-memory mirror of {window} finished trials):")
    for sampler, ms in costs.items():
        print(f"{sampler:<20}{ms:>12.2f} ms")


def print_projection(costs: dict[str, dict[int, float]], worker_ms: float, source: str) -> None:
    print(f"worker cost per trial: {worker_ms:.1f} ms ({source})")
    print(f"{'projected trials/s':<28}" + "".join(f"{f'{w} workers':>18}" for w in (8, 32, 128)))
    for label, row in costs.items():
        for size, ms in row.items():
            cells = []
            for workers in (8, 32, 128):
                by_workers, by_driver = workers * 1000 / worker_ms, 1000 / ms
                cells.append(f"{min(by_workers, by_driver):>8.0f} ({'driver' if by_driver < by_workers else 'workers':>7})")
            print(f"{f'{label} at {size:,}':<28}" + "".join(f"{c:>18}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200, help="Trials timed at each study size.")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="Study sizes, comma-separated.")
    parser.add_argument("--samplers", default="tpe,nsga2,random",
                        help="Samplers of the timed studies, comma-separated (random shows the driver without a model).")
    parser.add_argument("--postgres", default="auto", help="'auto' (a local throw-away server), a URL, or 'none'.")
    parser.add_argument("--workers-cost-ms", type=float, default=None,
                        help="Worker cost per trial (default: measured in-process + Ray's per-task cost).")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = dt.date(2024, 1, 2)
    end = start + dt.timedelta(days=120)
    with tempfile.TemporaryDirectory() as tmp:
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
        samplers = tuple(args.samplers.split(","))
        costs, note = driver_table(space_path, store, work, outcome, trials=args.trials, sizes=sizes,
                                   samplers=samplers, postgres=args.postgres)  # fmt: skip
        alone = {sampler: sampler_cost(space, sampler, args.trials) for sampler in samplers}
    print_table(costs, args.trials)
    print_sampler_table(alone, args.trials)
    if note:
        print(note)
    source = "given" if args.workers_cost_ms is not None else f"{eval_ms:.1f} ms evaluation + {RAY_TASK_MS} ms Ray task"
    print_projection(costs, worker_ms, f"{source}; 3 folds, 6 backtests")


if __name__ == "__main__":
    main()

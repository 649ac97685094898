"""The driver's loop: ask batches on the study mirror, evaluate, tell in order, write to the storage in batches.

How a trial travels (see :mod:`search.mirror` for why the sampler runs on an in-memory mirror):

1. *ask*: the sampler suggests a batch on the mirror; the batch is created RUNNING in the storage in one
   transaction (:func:`search.batch_storage.create_running`), and this driver's lease lists it, so a
   killed driver's trials are found and re-run. Trials waiting in the storage (re-enqueued by a recovery)
   are claimed first and run with their stored parameters.
2. *evaluate*: the executor runs the batch (inline or on Ray).
3. *tell*, in trial-number order: the record file is written, then the mirror is told at once (the
   sampler sees it) and the finished trial queued for the storage;
4. *flush*: queued trials are written finished in one transaction whenever the driver would otherwise
   wait for a worker (free), else every :data:`~search.mirror.FLUSH_TRIALS` trials or
   :data:`~search.mirror.FLUSH_S` seconds (a driver kept busy, or the inline executor), on a stop and at
   the end. Until then they stay
   RUNNING in the storage and listed in the lease: a crash loses at most these, and the next run
   re-runs them (their record files are removed by the recovery).
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from data.safe import json_safe
from evaluator.trial import TrialOutcome
from search.batch_storage import (
    FinishedTrial,
    NewTrial,
    budget_counts,
    create_running,
    discounted_numbers,
    finish,
    unwrap,
)
from search.executor import Executor, TaskResult
from search.leases import DriverLease, over_budget, withdraw
from search.mirror import FLUSH_S, FLUSH_TRIALS, synced_study_attrs
from search.provenance import trial_provenance
from search.records import write_record
from search.study import recover_interrupted
from spec_space.space import SpecSpace

__all__ = [
    "Asked",
    "SearchSetupError",
    "StopRequest",
    "Teller",
    "drive",
    "feasible",
    "graceful_stop",
    "progress_bar",
]

#: Stored on the study; errors longer than this are cut (the traceback attr keeps the tail).
MAX_MESSAGE = 2000


class SearchSetupError(RuntimeError):
    """The run cannot start or cannot make progress; the message says what to fix."""


def feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def _is_better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


@dataclass
class Asked:
    """A trial in flight: the mirror's trial (the sampler's) and the storage's trial it stands for."""

    mirror: Trial
    trial_id: int  # in the storage
    number: int  # in the storage: records, leases and the executor use this one


# ------------------------------------------------------------------------------------------ telling


class Teller:
    """Writes a finished trial's record, tells the mirror, and queues the trial for the storage."""

    def __init__(
        self,
        study: optuna.Study,
        mirror: optuna.Study,
        space: SpecSpace,
        records_dir: Path,
        session: dict[str, Any] | None,
        finished: Sequence[FrozenTrial],
    ) -> None:
        self.study = study
        self.mirror = mirror
        self.space = space
        self.records_dir = records_dir
        self.session = session  # provenance shared by this session's trials (None: records carry none)
        self.complete = 0
        self.failed = 0
        self.errors = 0
        self.first_error: str | None = None
        self.best: tuple[float, int] | None = None
        self.direction = space.objectives[0].direction
        self.complete_before = 0
        for t in finished:
            if t.state == TrialState.COMPLETE:
                self.complete_before += 1
                self._track(t.values[0], t.number, feasible(t))
        self.pending: list[FinishedTrial] = []
        self.pending_numbers: list[int] = []
        self._last_flush = time.monotonic()
        self._synced = synced_study_attrs(mirror)

    def _track(self, value: float, number: int, is_feasible: bool) -> None:
        if is_feasible and (self.best is None or _is_better(value, self.best[0], self.direction)):
            self.best = (value, number)

    def _queue(
        self, asked: Asked, state: TrialState, values: Sequence[float] | None, attrs: dict[str, Any]
    ) -> None:
        if state == TrialState.COMPLETE:
            self.mirror.tell(asked.mirror, values)
        else:
            self.mirror.tell(asked.mirror, state=state)
        system = dict(self.mirror._storage.get_trial(asked.mirror._trial_id).system_attrs)
        self.pending.append(FinishedTrial(asked.trial_id, state, values, attrs, system))
        self.pending_numbers.append(asked.number)

    def _fail(self, asked: Asked, reason: str, detail: str | None = None, worker: str = "") -> None:
        attrs: dict[str, Any] = {"fail_reason": reason[:MAX_MESSAGE]}
        if detail:
            attrs["traceback"] = detail[-4000:]
        if worker:
            attrs["worker"] = worker
        self._queue(asked, TrialState.FAIL, None, attrs)
        self.failed += 1

    def tell(self, asked: Asked, result: TaskResult) -> None:
        if result.outcome is None:
            self.errors += 1
            if self.first_error is None:
                self.first_error = result.error
            self._fail(asked, result.error or "unknown error", result.traceback, result.worker)
            return
        outcome = result.outcome
        undefined = [
            o.metric
            for o, v in zip(self.space.objectives, outcome.objectives, strict=True)
            if not math.isfinite(v)
        ]
        if undefined:
            self._fail(
                asked,
                f"objective(s) {', '.join(undefined)} undefined on every in-sample fold (e.g. a Sharpe ratio "
                "of flat equity: no trades); the sampler cannot rank this trial",
                worker=result.worker,
            )
            return
        provenance = None
        if self.session is not None:
            # the spec is rebuilt here (0.25 ms) so the record holds the exact JSON the trial ran
            provenance = json_safe(trial_provenance(self.session, self.space.build(outcome.values)))
        path = write_record(self.records_dir, asked.number, outcome, provenance=provenance)
        for constraint, value in zip(self.space.constraints, outcome.constraints, strict=True):
            asked.mirror.set_constraint(constraint.name, value)
        self._queue(
            asked,
            TrialState.COMPLETE,
            list(outcome.objectives),
            self._attrs(outcome, path, result.worker, provenance),
        )
        self.complete += 1
        self._track(outcome.objectives[0], asked.number, outcome.feasible)

    def _attrs(
        self, outcome: TrialOutcome, path: Path, worker: str, provenance: dict[str, Any] | None
    ) -> dict[str, Any]:
        # per-fold IS metrics live in "info" and the record file
        return {
            "is_mean": json_safe(outcome.is_mean),
            "val_mean": json_safe(outcome.val_mean),
            "val_folds": json_safe([dict(f.val_metrics) for f in outcome.folds]),
            "info": json_safe(
                {
                    "record": str(path.relative_to(self.records_dir)),
                    "feasible": outcome.feasible,
                    "is_defined_folds": outcome.is_defined_folds,
                    "is_folds": [dict(f.is_metrics) for f in outcome.folds],
                    "elapsed_s": round(outcome.elapsed, 4),
                    "worker": worker,
                    "spec_hash": (provenance or {}).get("spec_hash"),
                }
            ),
        }

    def maybe_flush(self) -> None:
        if len(self.pending) >= FLUSH_TRIALS or (
            self.pending and time.monotonic() - self._last_flush >= FLUSH_S
        ):
            self.flush()

    def flush(self) -> None:
        """Write the queued finished trials (and the sampler's persistent study state) in one transaction."""
        if self.pending:
            finish(self.study._storage, self.pending)
        attrs = synced_study_attrs(self.mirror)
        for key, value in attrs.items():
            if self._synced.get(key) != value:
                self.study._storage.set_study_system_attr(self.study._study_id, key, value)
        self._synced = attrs
        self.pending, self.pending_numbers = [], []
        self._last_flush = time.monotonic()

    def postfix(self) -> str:
        best = "-" if self.best is None else f"{self.best[0]:.4g} (#{self.best[1]})"
        return f"fail={self.failed} best {self.space.objectives[0].metric}={best}"


# ------------------------------------------------------------------------------------------ stopping


class StopRequest:
    """Set by SIGINT / SIGTERM; the driver stops between trials (nothing is interrupted half-written)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequest]:
    """Ctrl-C / SIGTERM: finish telling what is done, re-enqueue what runs, exit. A second one aborts at once.

    A flag rather than an exception: ``KeyboardInterrupt`` raised inside a numba kernel comes back as a
    ``SystemError`` (and would be recorded as a failed trial), and one raised mid-write leaves a trial
    half-recorded.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop:
            raise KeyboardInterrupt
        stop.signal = signal.Signals(signum).name
        os.write(2, b"\nstopping once the running trials are told; send it again to stop at once\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="trial",
        dynamic_ncols=True,
        disable=not enabled,
        file=sys.stderr,
        smoothing=0.1,
    )


# ------------------------------------------------------------------------------------------ the loop


def drive(
    study: optuna.Study,
    mirror: optuna.Study,
    space: SpecSpace,
    executor: Executor,
    teller: Teller,
    *,
    target: int,
    lease: DriverLease,
    batch_size: int,
    deadline: float | None,
    bar: Any,
    stop: StopRequest,
) -> str:
    """Ask / evaluate / tell until the study holds ``target`` trials (this driver's and any other's), the
    deadline or a stop; returns why it stopped. See :mod:`search.leases` for the shared budget.

    Queued finished trials are left for the caller to :meth:`Teller.flush` (also after an error)."""
    # the storage under Optuna's cache: the cache would re-read every unfinished trial on each listing
    storage, study_id = study._storage, study._study_id
    raw = unwrap(storage)
    asked: dict[int, Asked] = {}
    order: list[int] = []  # asked, not yet told, ascending
    batch_last: set[int] = set()
    held: dict[int, TaskResult] = {}
    full = False  # the study's budget is taken (finished + running everywhere)
    stopped = "budget"
    first_batch: list[int] = []

    def in_flight() -> list[int]:
        return order + teller.pending_numbers

    last_count = -math.inf
    estimate: int | None = None  # free places as of this driver's last batch (see ask_batch)
    known_discounted: list[int] = []  # interrupted / withdrawn trial numbers, as last read

    def room() -> tuple[int, list[FrozenTrial]]:
        """Trials still to ask study-wide, and the waiting ones.

        Counted in full (and stale trials of dead drivers recovered) once a heartbeat, whenever the study
        looks full, and while trials wait to be claimed (they go before fresh ones, as ``study.ask`` takes
        them); in between, the numbers of this driver's last fresh trials tell how many places were taken
        study-wide, every driver's trials included. Counting costs a scan of the study's trials; an
        estimate that is too high only costs withdrawn trials, as the numbers settle the race anyway."""
        nonlocal last_count, estimate
        if estimate is not None and estimate > 0 and time.monotonic() - last_count < lease.heartbeat_s:
            return estimate, []
        estimate = None
        last_count = time.monotonic()
        counts = budget_counts(raw, study_id)
        known_discounted[:] = counts.discounted
        free = target - counts.finished - counts.running
        if counts.running:
            running = raw.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            if recover_interrupted(study, teller.records_dir, own_key=lease.key, trials=running):
                counts = budget_counts(raw, study_id)
                known_discounted[:] = counts.discounted
                free = target - counts.finished - counts.running
        waiting = (
            raw.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
            if counts.waiting
            else []
        )
        if not waiting:
            estimate = free  # refined by the next batch's numbers
        return free, waiting

    def suggest(trial: Trial) -> Any:
        try:
            return space.suggest(trial)
        except Exception as exc:  # noqa: BLE001 - e.g. an enqueued value outside the space's range
            return TaskResult(-1, error=f"{type(exc).__name__}: {exc}")

    def claim(waiting: list[FrozenTrial], count: int) -> list[tuple[Trial, Any, int, int]]:
        """Run trials waiting in the storage first (re-enqueued after a recovery), with their parameters."""
        claimed = []
        for frozen in waiting:
            if len(claimed) == count:
                break
            if not storage.set_trial_state_values(frozen._trial_id, TrialState.RUNNING):
                continue  # another driver took it
            # enqueue_trial keeps the values in the "fixed_params" system attribute until they are suggested
            fixed = {**(frozen.system_attrs.get("fixed_params") or {}), **frozen.params}
            mirror.enqueue_trial(fixed, skip_if_exists=False)
            trial = mirror.ask()
            values = suggest(trial)
            for name, value in trial.params.items():
                if name not in frozen.params:  # a kill between ask and the last suggest left it unset
                    dist = trial.distributions[name]
                    storage.set_trial_param(frozen._trial_id, name, dist.to_internal_repr(value), dist)
            claimed.append((trial, values, frozen._trial_id, frozen.number))
        return claimed

    def ask_batch() -> None:
        nonlocal full, estimate
        free, waiting = room()
        count = min(batch_size, free)
        if count <= 0:
            full = True
            return
        new = claim(waiting, count)
        fresh = []
        for _ in range(count - len(new)):
            trial = mirror.ask()
            fresh.append((trial, suggest(trial)))
        ids = create_running(
            storage, study_id, [NewTrial(dict(t.params), dict(t.distributions)) for t, _ in fresh]
        )
        # waiting trials first, then the fresh ones in asked order (what study.ask() gave before the mirror)
        new += [(t, v, trial_id, number) for (t, v), (trial_id, number) in zip(fresh, ids, strict=True)]
        # another driver may have asked at the same moment: the trial numbers settle who is in budget.
        # Discounted trials only ever grow in number, so ranks from the last known list are upper bounds:
        # when even those are inside the budget, there is nothing to ask the storage
        numbers_new = [number for *_, number in new]
        if max(n - bisect.bisect_left(known_discounted, n) for n in numbers_new) < target:
            discounted, over = known_discounted, set()
        else:
            discounted = known_discounted[:] = discounted_numbers(raw, study_id)
            over = over_budget(numbers_new, discounted, target)
        if fresh and estimate is not None:
            # the newest trial of the study when it was made: trials 0..top that count hold their places
            top = max(number for _id, number in ids)
            estimate = target - (top + 1 - bisect.bisect_right(discounted, top))
        numbers = []
        for trial, _values, trial_id, number in new:
            if number in over:
                withdraw(study, trial_id)
                mirror.tell(trial, state=TrialState.FAIL)  # never sampled from as if running
                full = True
                continue
            asked[number] = Asked(trial, trial_id, number)
            order.append(number)
            numbers.append(number)
        lease.beat(in_flight(), force=True)
        for _trial, values, _trial_id, number in new:
            if number in over:
                continue
            if isinstance(values, TaskResult):
                held[number] = TaskResult(number, error=values.error)
            else:
                executor.submit(number, values)
        if numbers:
            batch_last.add(numbers[-1])
            if not first_batch:
                first_batch.extend(numbers)

    def may_ask() -> bool:
        nonlocal stopped
        if full or stop:
            return False
        if deadline is not None and time.monotonic() >= deadline:
            stopped = "timeout"
            return False
        return True

    def tell(number: int) -> None:
        teller.tell(asked.pop(number), held.pop(number))
        bar.update(1)
        bar.set_postfix_str(teller.postfix(), refresh=False)

    for _ in range(2):
        if may_ask():
            ask_batch()
    try:
        while order:
            while order and order[0] in held:
                number = order.pop(0)
                tell(number)
                if (
                    number == first_batch[-1]
                    and teller.errors == len(first_batch)
                    and teller.complete + teller.complete_before == 0
                ):
                    raise SearchSetupError(
                        f"every trial of the first batch failed; the first error was: {teller.first_error}"
                    )
                if number in batch_last and may_ask():
                    ask_batch()
                teller.maybe_flush()
            if not order and may_ask():
                ask_batch()  # a dead driver's trials came back, or a withdrawn race left room
            if not order:
                break
            lease.beat(in_flight())
            if stop:
                stopped = "interrupted"
                executor.cancel()
                for number in sorted(held):  # finished, so told even out of order; the rest is re-enqueued
                    tell(number)
                break
            result = executor.next_result(timeout=0.0) if teller.pending else None
            if result is None:
                # nothing finished yet: the driver would only wait, so writing the queue now costs no time
                teller.flush()
                result = executor.next_result(timeout=0.5)
            if result is not None:
                held[result.number] = result
            teller.maybe_flush()
    except BaseException:
        # tell what finished (it is not lost), then leave the rest RUNNING for recovery by the caller
        executor.cancel()
        for number in sorted(held):
            if number in asked:
                with contextlib.suppress(Exception):
                    teller.tell(asked.pop(number), held.pop(number))
        raise
    return stopped

"""The driver's in-memory mirror of its study: where the sampler asks and is told, with a bounded view.

Samplers read every trial of the study on every ask (TPE re-reads them per suggest; on SQLite that was a
full query each time). The driver therefore samples on an in-memory Optuna study that mirrors the
persistent one: loaded from the storage's finished trials when the run starts, then told each result
as it comes in. The persistent storage gets the same trials in batches (:mod:`search.batch_storage`):
asked trials are created there RUNNING in one transaction per batch, finished ones written in one
transaction every :data:`FLUSH_TRIALS` trials or :data:`FLUSH_S` seconds and at the end or on a stop.
A driver killed between two flushes loses at most the unflushed finished trials: they are still
RUNNING in the storage, so the next run recovers and re-runs them like any interrupted trial.

Bounded sampler cost: the mirror's storage (:class:`WindowedMemoryStorage`) shows samplers every
RUNNING and WAITING trial, the :data:`BEST_PER_OBJECTIVE` best finished trials by each objective
(feasible ones first) and the :data:`RECENT` most recently finished ones, so an ask costs the same at
10,000 trials as at 300. For one objective TPE loses nothing it ranks by: its "good" group is at most
the best 25 trials, all inside the window; the "bad" group is a recent sample of the rest. Studies
smaller than the window are sampled exactly as before.

The genetic samplers (NSGA-II, NSGA-III: :class:`~optuna.samplers.BaseGASampler`) get the whole study
instead: their generation cache indexes the trial list with trial numbers, so on a window they failed
most trials once it applied. Their cost grows slowly with the study (each ask lists every trial, without
copies: about 0.1 ms more per 1,000 trials, see benchmarks/bench_driver).

Other drivers on the same study: each mirror holds the trials finished when its driver started plus its
own; trials other drivers finish meanwhile are not sampled from (the budget and the leases still see
them). The QMC sampler's sequence counter (a study system attribute) is carried over to the storage.
"""

from __future__ import annotations

import bisect
import collections
import copy
import os
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.samplers import BaseGASampler, BaseSampler
from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "BEST_PER_OBJECTIVE",
    "FLUSH_S",
    "FLUSH_TRIALS",
    "RECENT",
    "SYNCED_STUDY_ATTR_PREFIXES",
    "UNWINDOWED_SAMPLERS",
    "WindowedMemoryStorage",
    "make_mirror",
]

#: Best finished trials per objective every ask sees.
BEST_PER_OBJECTIVE = int(os.environ.get("FARM_SAMPLER_BEST", "64"))
#: Most recently finished trials every ask sees.
RECENT = int(os.environ.get("FARM_SAMPLER_RECENT", "192"))
#: Finished trials written to the storage together (one transaction).
FLUSH_TRIALS = int(os.environ.get("FARM_FLUSH_TRIALS", "64"))
#: Longest time a finished trial waits in memory before it is written.
FLUSH_S = float(os.environ.get("FARM_FLUSH_S", "2"))
#: Study system attributes a sampler keeps state in that must outlive the session (QMC's counter).
SYNCED_STUDY_ATTR_PREFIXES = ("qmc:",)
#: Samplers that look trials up by number in the study's trial list, so they must see all of it.
UNWINDOWED_SAMPLERS: tuple[type[BaseSampler], ...] = (BaseGASampler,)


class WindowedMemoryStorage(InMemoryStorage):
    """An :class:`~optuna.storages.InMemoryStorage` whose trial listing is the bounded window above.

    Lookups by id or number still reach every trial; only :meth:`get_all_trials` (what samplers read)
    is windowed, and only once more trials have finished than the window holds.
    """

    def __init__(self, *, best_per_objective: int = BEST_PER_OBJECTIVE, recent: int = RECENT) -> None:
        super().__init__()
        self.best_per_objective = best_per_objective
        self.recent_size = recent
        self._live: set[int] = set()
        self._recent: collections.deque[int] = collections.deque(maxlen=recent)
        self._best: list[list[tuple[tuple[bool, float], int]]] = []
        self._finished = 0
        self._window_cache: list[int] | None = None

    # -------------------------------------------------------------------------- bookkeeping

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        state = self._get_trial(trial_id).state
        if state.is_finished():
            self._on_finished(study_id, trial_id)
        else:
            self._live.add(trial_id)
        return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and state.is_finished():
            self._live.discard(trial_id)
            self._on_finished(self._trial_id_to_study_id_and_number[trial_id][0], trial_id)
        return changed

    def _on_finished(self, study_id: int, trial_id: int) -> None:
        self._finished += 1
        self._recent.append(trial_id)
        self._window_cache = None
        trial = self._get_trial(trial_id)
        if trial.state != TrialState.COMPLETE or trial.values is None:
            return
        directions = self.get_study_directions(study_id)
        if not self._best:
            self._best = [[] for _ in directions]
        infeasible = any(v > 0.0 for v in trial.constraints.values())
        for best, value, direction in zip(self._best, trial.values, directions, strict=True):
            sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
            bisect.insort(best, ((infeasible, sign * value), trial_id))
            del best[self.best_per_objective :]

    def windowed(self) -> bool:
        """Whether more trials have finished than the window shows."""
        return self._finished > self.recent_size + self.best_per_objective * max(1, len(self._best))

    # -------------------------------------------------------------------------- the view

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if states == (TrialState.WAITING,) or not self.windowed():
            return super().get_all_trials(study_id, deepcopy, states)
        with self._lock:
            if self._window_cache is None:
                ids = set(self._recent)
                for best in self._best:
                    ids.update(trial_id for _key, trial_id in best)
                self._window_cache = sorted(ids)
            ids = sorted({*self._window_cache, *self._live})
            trials = [self._get_trial(i) for i in ids]
            if states is not None:
                trials = [t for t in trials if t.state in states]
            return copy.deepcopy(trials) if deepcopy else trials


def make_mirror(
    directions: Sequence[StudyDirection],
    sampler: BaseSampler,
    finished: Sequence[FrozenTrial],
    study_system_attrs: dict[str, Any],
    *,
    best_per_objective: int = BEST_PER_OBJECTIVE,
    recent: int = RECENT,
) -> optuna.Study:
    """An in-memory study with ``sampler`` holding ``finished`` (the storage's finished trials, in number
    order) and the sampler state kept in the persistent study's system attributes; windowed unless the
    sampler is one of :data:`UNWINDOWED_SAMPLERS`."""
    storage = (
        InMemoryStorage()
        if isinstance(sampler, UNWINDOWED_SAMPLERS)
        else WindowedMemoryStorage(best_per_objective=best_per_objective, recent=recent)
    )
    mirror = optuna.create_study(
        storage=storage, directions=[d.name.lower() for d in directions], sampler=sampler
    )
    for key, value in study_system_attrs.items():
        if key.startswith(SYNCED_STUDY_ATTR_PREFIXES):
            storage.set_study_system_attr(mirror._study_id, key, value)
    for trial in finished:
        if trial.state.is_finished():
            storage.create_new_trial(mirror._study_id, template_trial=trial)
    return mirror


def synced_study_attrs(mirror: optuna.Study) -> dict[str, Any]:
    """The mirror's study system attributes that must be written back to the storage."""
    attrs = mirror._storage.get_study_system_attrs(mirror._study_id)
    return {k: v for k, v in attrs.items() if k.startswith(SYNCED_STUDY_ATTR_PREFIXES)}

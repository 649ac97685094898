"""Batched writes give exactly the trials Optuna's own calls give, on SQLite, the journal file and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from search.batch_storage import FinishedTrial, NewTrial, budget_counts, create_running, finish
from search.leases import over_budget, ranked_over_budget, withdraw
from search.study import count_finished, open_storage, recover_interrupted

DISTRIBUTIONS = {
    "fast": IntDistribution(3, 20),
    "stop": FloatDistribution(0.002, 0.02, log=True),
    "zone": CategoricalDistribution(["10:30", "11:00"]),
    "flag": CategoricalDistribution([True, False]),
}
PARAMS: list[dict[str, Any]] = [
    {"fast": 5, "stop": 0.004, "zone": "11:00", "flag": True},
    {"fast": 17, "stop": 0.0123, "zone": "10:30", "flag": False},
    {"fast": 3, "stop": 0.02, "zone": "10:30", "flag": True},
]
ATTRS = {"is_mean": {"sharpe": 1.5, "n": None}, "info": {"record": "trials/x.npz", "folds": [1, 2]}}
SYSTEM = {"constraints:n_trades >= 5": -2.0, "nsga2:generation": 3}


def _storage_url(kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/b.db"
    if kind == "journal":
        return f"journal:{tmp_path}/b.log"
    return request.getfixturevalue("postgres_url")


KINDS = ["sqlite", "journal", pytest.param("postgres", marks=pytest.mark.slow)]


def _fields(t: FrozenTrial) -> tuple[Any, ...]:
    return (t.number, t.state, t.params, t.distributions, t.user_attrs, t.system_attrs, t.values)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_trials_read_back_as_optunas_own_calls_write_them(kind, tmp_path, request):
    url = _storage_url(kind, tmp_path, request)
    batched = optuna.create_study(study_name=f"batched_{tmp_path.name}", storage=open_storage(url),
                                  directions=["maximize", "minimize"])  # fmt: skip

    created = create_running(batched._storage, batched._study_id, [NewTrial(p, DISTRIBUTIONS) for p in PARAMS])
    assert [number for _id, number in created] == [0, 1, 2]
    running = batched.get_trials(states=(TrialState.RUNNING,))
    assert [t.params for t in running] == PARAMS  # a killed driver's trials are there, parameters and all
    outcomes: list[tuple[TrialState, list[float] | None]] = [
        (TrialState.COMPLETE, [1.25, 0.5]),
        (TrialState.FAIL, None),
        (TrialState.COMPLETE, [-math.inf, 0.0]),
    ]
    skipped = finish(
        batched._storage,
        [
            FinishedTrial(trial_id, state, values, ATTRS, SYSTEM)
            for (trial_id, _n), (state, values) in zip(created, outcomes, strict=True)
        ],
    )
    assert skipped == []

    # the same trials through Optuna's own calls: enqueued values, then one call per attribute, then tell
    own = optuna.create_study(study_name=f"own_{tmp_path.name}", storage=open_storage(url),
                              directions=["maximize", "minimize"])  # fmt: skip
    for params, (state, values) in zip(PARAMS, outcomes, strict=True):
        own.enqueue_trial(params)
        trial = own.ask(DISTRIBUTIONS)
        for key, value in ATTRS.items():
            trial.set_user_attr(key, value)
        for key, value in SYSTEM.items():
            own._storage.set_trial_system_attr(trial._trial_id, key, value)
        own.tell(trial, values, state=state)

    mine = optuna.load_study(study_name=batched.study_name, storage=open_storage(url)).trials
    theirs = optuna.load_study(study_name=own.study_name, storage=open_storage(url)).trials
    for a, b in zip(mine, theirs, strict=True):
        b_system = {k: v for k, v in b.system_attrs.items() if k != "fixed_params"}
        assert _fields(a) == (b.number, b.state, b.params, b.distributions, b.user_attrs, b_system, b.values)
        assert a.datetime_start is not None and a.datetime_complete is not None
        assert abs((a.datetime_complete - b.datetime_complete).total_seconds()) < 60  # same clock and time zone


@pytest.mark.parametrize("kind", KINDS)
def test_numbers_interleave_with_other_writers_and_finished_trials_are_left_alone(kind, tmp_path, request):
    url = _storage_url(kind, tmp_path, request)
    study = optuna.create_study(study_name=f"mix_{tmp_path.name}", storage=open_storage(url))
    first = create_running(study._storage, study._study_id, [NewTrial(PARAMS[0], DISTRIBUTIONS)])
    other = study.ask(DISTRIBUTIONS)  # another driver, through Optuna's own calls
    second = create_running(study._storage, study._study_id, [NewTrial(p, DISTRIBUTIONS) for p in PARAMS])
    assert [n for _i, n in first] == [0] and other.number == 1 and [n for _i, n in second] == [2, 3, 4]
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]

    # another driver took the first trial for a crash leftover and failed it: a late write leaves it alone
    study._storage.set_trial_state_values(first[0][0], TrialState.FAIL)
    skipped = finish(study._storage, [FinishedTrial(i, TrialState.COMPLETE, [1.0]) for i, _n in first + second])
    assert skipped == [first[0][0]]
    states = [t.state for t in optuna.load_study(study_name=study.study_name, storage=open_storage(url)).trials]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.COMPLETE, TrialState.COMPLETE,
                      TrialState.COMPLETE]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_budget_counts_agree_with_the_full_trial_list(kind, tmp_path, request):
    url = _storage_url(kind, tmp_path, request)
    study = optuna.create_study(study_name=f"budget_{tmp_path.name}", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    failed = study.ask(DISTRIBUTIONS)
    study.tell(failed, state=TrialState.FAIL)  # an evaluation error: counts
    lost = study.ask(DISTRIBUTIONS)
    withdraw(study, lost._trial_id)  # lost a budget race: does not count
    dead = study.ask(DISTRIBUTIONS)  # a dead driver's (no lease lists it, no other driver alive)
    recover_interrupted(study, trials=[study.trials[dead.number]])  # interrupted: FAIL + a WAITING copy
    study.ask(DISTRIBUTIONS)  # this driver's own RUNNING trial (it takes the WAITING copy)
    study.enqueue_trial({"x": 0.5})

    trials = study.trials
    counts = budget_counts(study._storage, study._study_id)
    assert counts.finished == count_finished(trials) == 5
    assert counts.running == sum(t.state == TrialState.RUNNING for t in trials) == 1
    assert counts.waiting == 1
    assert counts.discounted == [lost.number, dead.number]
    candidates = [t.number for t in trials]
    for target in range(3, 10):
        assert over_budget(candidates, counts.discounted, target) == ranked_over_budget(trials, candidates, target)

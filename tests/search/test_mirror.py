"""The study mirror: samplers see a bounded window of trials, exact below its size, best and recent above."""

from __future__ import annotations

import importlib.util

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers import TPESampler
from optuna.storages import InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from search.mirror import WindowedMemoryStorage, make_mirror, synced_study_attrs
from search.study import SAMPLERS, make_sampler

SPACE = {"x": FloatDistribution(0, 1), "n": IntDistribution(1, 9)}


def _objective(params: dict) -> float:
    return (params["x"] - 0.3) ** 2 + 0.01 * params["n"]


def _run(storage: optuna.storages.BaseStorage, trials: int, seed: int = 3) -> list[dict]:
    study = optuna.create_study(
        storage=storage, sampler=TPESampler(seed=seed, constant_liar=True, multivariate=True)
    )
    drawn = []
    for _ in range(trials):
        trial = study.ask(SPACE)
        drawn.append(trial.params)
        study.tell(trial, _objective(trial.params))
    return drawn


def test_below_the_window_tpe_draws_exactly_what_it_draws_on_a_plain_study():
    assert _run(WindowedMemoryStorage(best_per_objective=8, recent=40), 40) == _run(InMemoryStorage(), 40)


def test_above_the_window_samplers_see_the_best_the_recent_and_every_running_trial():
    storage = WindowedMemoryStorage(best_per_objective=10, recent=30)
    study = optuna.create_study(
        storage=storage, direction="minimize", sampler=optuna.samplers.RandomSampler(0)
    )
    for _ in range(200):
        trial = study.ask(SPACE)
        study.tell(trial, _objective(trial.params))
    infeasible = study.ask(SPACE)  # the best value of all, but breaks a constraint
    infeasible.set_constraint("n_trades >= 5", 3.0)
    study.tell(infeasible, -1.0)
    running = [study.ask(SPACE) for _ in range(3)]

    everything = InMemoryStorage.get_all_trials(storage, study._study_id, deepcopy=False)
    seen = study.get_trials(deepcopy=False)
    finished = [t for t in everything if t.state == TrialState.COMPLETE]
    best = sorted((t for t in finished if t is not everything[infeasible.number]), key=lambda t: t.value)[:10]
    recent = finished[-30:]
    assert storage.windowed()
    assert {t.number for t in seen} == {t.number for t in best + recent} | {t.number for t in running}
    assert len(seen) <= 10 + 30 + 3
    assert [t.number for t in seen] == sorted(t.number for t in seen)
    # TPE's "good" group (at most the best 25 of one objective) is the same over the window as over all
    assert sorted(t.value for t in seen if t.state == TrialState.COMPLETE)[1:9] == [t.value for t in best[:8]]


def test_each_objective_keeps_its_own_best():
    storage = WindowedMemoryStorage(best_per_objective=5, recent=5)
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    for i in range(100):
        trial = study.ask(SPACE)
        study.tell(trial, [float(i % 37), float(i % 41)])  # best of the first near i = 36, of the second at 0
    seen = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert {36, 73} <= {t.number for t in seen}  # value 36 on the first objective
    assert {0, 41, 82} <= {t.number for t in seen}  # value 0 on the second
    assert len(seen) <= 5 + 5 + 5


def test_a_mirror_loads_finished_trials_and_carries_the_qmc_counter_only():
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(1))
    source.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    source.ask()  # RUNNING: another driver's, not the sampler's to see
    attrs = {"qmc:abc": 7, "nsga2:parent_cache:1": [1, 2]}
    mirror = make_mirror(source.directions, optuna.samplers.QMCSampler(seed=0), source.trials, attrs)
    assert [t.params for t in mirror.trials] == [t.params for t in source.trials[:5]]
    assert all(t.state == TrialState.COMPLETE for t in mirror.trials)
    assert synced_study_attrs(mirror) == {"qmc:abc": 7}  # trial ids of the mirror never leave it


@pytest.mark.parametrize(
    "name", [n for n, info in SAMPLERS.items() if info.needs is None or importlib.util.find_spec(info.needs)]
)
def test_every_sampler_keeps_sampling_once_the_window_applies(name):
    # NSGA-II's generation cache looks trials up by number in the trial list: on a windowed list it
    # raised IndexError on most asks once the study outgrew the window, failing those trials
    n_objectives = 2 if SAMPLERS[name].multi_objective else 1
    sampler = make_sampler(name, seed=0, n_objectives=n_objectives)
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE][:n_objectives]
    mirror = make_mirror(directions, sampler, [], {}, best_per_objective=2, recent=4)
    for _ in range(15):  # batches of 4 asked together, as the driver asks them
        asked = [mirror.ask(SPACE) for _ in range(4)]
        for trial in asked:
            trial.set_constraint("n_trades >= 5", -1.0)
            value = _objective(trial.params)
            mirror.tell(trial, [value, -value][:n_objectives])
    trials = InMemoryStorage.get_all_trials(mirror._storage, mirror._study_id, deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 60
    assert len({(t.params["x"], t.params["n"]) for t in trials}) > 30  # still sampling, not one repeated point

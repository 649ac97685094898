"""The Ray executor groups short trials into one task and sends long ones alone; results are the same."""

from __future__ import annotations

import pytest

from evaluator.walkforward import walk_forward_layout
from search.executor import TASK_TARGET_S, InlineExecutor, RayExecutor, WorkContext
from spec_space.loader import load_space
from spec_space.space import RandomSource

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def context(space_file, sample_store):
    from data.store import Store

    space = load_space(space_file)
    sessions = Store(sample_store).sessions("SPY", space.data.start, space.data.end)
    layout = walk_forward_layout(sessions, space.walk_forward)
    return WorkContext(space, space.content_hash(), sample_store, tuple(layout.folds))


def _drain(executor) -> dict:
    results = {}
    while executor.pending():
        result = executor.next_result(timeout=120)
        assert result is not None
        results[result.number] = result
    return results


def test_grouped_tasks_give_the_inline_results_and_size_themselves_from_trial_time(context):
    trials = [(n, context.space.suggest(RandomSource(n))) for n in range(10)]
    inline = InlineExecutor(context)
    for number, values in trials:
        inline.submit(number, values)
    expected = _drain(inline)

    executor = RayExecutor(context, workers=1, batch_size=8)
    try:
        assert executor.max_per_task == 8 and executor.trials_per_task == 1  # nothing timed yet: one each
        executor.submit(*trials[0])
        first = _drain(executor)
        # these trials take a few ms: a task now groups as many as reach the target, within one per batch
        elapsed = first[0].outcome.elapsed
        assert executor.trials_per_task == max(1, min(8, round(TASK_TARGET_S / elapsed)))
        executor.trials_per_task = 4  # the grouping itself, whatever this machine's speed
        for number, values in trials[1:]:
            executor.submit(number, values)
        assert len(executor._refs) == 2 and len(executor._group) == 1  # 2 full groups sent, 1 trial held
        assert executor.pending() == 9
        got = {**first, **_drain(executor)}  # the held trial goes once the driver waits
    finally:
        executor.close()
    assert sorted(got) == sorted(expected)
    for number, result in expected.items():
        assert got[number].outcome is not None
        assert got[number].outcome.objectives == result.outcome.objectives
        assert got[number].outcome.is_mean == result.outcome.is_mean


def test_cancel_returns_every_trial_not_yet_handed_back(context):
    executor = RayExecutor(context, workers=1, batch_size=8, trials_per_task=3)
    try:
        for number in range(7):
            executor.submit(number, context.space.suggest(RandomSource(number)))
        assert executor.cancel() == list(range(7))
        assert executor.pending() == 0
    finally:
        executor.close()

"""make_folds: window layout, embargo, anchoring, n_folds selection and error messages."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from evaluator.walkforward import Fold, Holdout, make_folds, make_layout, sessions_needed


def _sessions(n: int) -> list[dt.date]:
    return [d.date() for d in pd.bdate_range("2024-01-01", periods=n)]


def _idx(sessions: list[dt.date], day: dt.date) -> int:
    return sessions.index(day)


def test_docstring_example_exact_layout():
    s = _sessions(12)
    folds = make_folds(s, scheme="rolling", train_days=4, test_days=2, embargo_days=1)
    assert folds == [
        Fold(0, s[1], s[4], s[6], s[7]),
        Fold(1, s[3], s[6], s[8], s[9]),
        Fold(2, s[5], s[8], s[10], s[11]),
    ]


@pytest.mark.parametrize("scheme", ["rolling", "anchored"])
@pytest.mark.parametrize("embargo", [0, 1, 5])
def test_test_windows_consecutive_non_overlapping_and_embargo_exact(scheme, embargo):
    s = _sessions(300)
    folds = make_folds(s, scheme=scheme, train_days=60, test_days=20, embargo_days=embargo)
    assert len(folds) == (300 - 60 - embargo) // 20
    assert [f.index for f in folds] == list(range(len(folds)))
    assert folds[-1].test_end == s[-1]  # the most recent data is always tested
    for f in folds:
        assert _idx(s, f.test_end) - _idx(s, f.test_start) + 1 == 20
        # exactly `embargo` sessions between the last training session and the first test session
        assert _idx(s, f.test_start) - _idx(s, f.train_end) - 1 == embargo
        assert f.train_start <= f.train_end < f.test_start <= f.test_end
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test_end < b.test_start
        assert _idx(s, b.test_start) == _idx(s, a.test_end) + 1  # consecutive, no gap


def test_rolling_train_length_fixed_and_slides_by_test_days():
    s = _sessions(200)
    folds = make_folds(s, scheme="rolling", train_days=50, test_days=10, embargo_days=2)
    for f in folds:
        assert _idx(s, f.train_end) - _idx(s, f.train_start) + 1 == 50
    starts = [_idx(s, f.train_start) for f in folds]
    assert all(b - a == 10 for a, b in zip(starts, starts[1:], strict=False))


def test_anchored_train_start_constant_and_growing():
    s = _sessions(200)
    folds = make_folds(s, scheme="anchored", train_days=50, test_days=10, embargo_days=2)
    assert {f.train_start for f in folds} == {s[0]}
    lengths = [_idx(s, f.train_end) + 1 for f in folds]
    assert lengths[0] >= 50
    assert all(b - a == 10 for a, b in zip(lengths, lengths[1:], strict=False))


@pytest.mark.parametrize("scheme", ["rolling", "anchored"])
def test_n_folds_uses_the_most_recent_folds(scheme):
    s = _sessions(200)
    every = make_folds(s, scheme=scheme, train_days=50, test_days=10)
    last3 = make_folds(s, scheme=scheme, train_days=50, test_days=10, n_folds=3)
    assert [f.index for f in last3] == [0, 1, 2]
    strip = [(f.train_start, f.train_end, f.test_start, f.test_end) for f in every[-3:]]
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in last3] == strip


def test_too_few_sessions_error_says_needed_and_available():
    s = _sessions(100)
    assert sessions_needed(train_days=60, test_days=20, embargo_days=2, n_folds=3) == 122
    with pytest.raises(
        ValueError, match=r"3 walk-forward fold\(s\) need 122 sessions .* only 100 are available"
    ):
        make_folds(s, scheme="rolling", train_days=60, test_days=20, embargo_days=2, n_folds=3)
    with pytest.raises(ValueError, match=r"need 80 sessions .* only 70 are available"):
        make_folds(_sessions(70), scheme="anchored", train_days=60, test_days=20)
    with pytest.raises(ValueError, match="only 0 are available"):
        make_folds([], scheme="rolling", train_days=5, test_days=5)


def test_exact_fit_and_timestamps_accepted():
    stamps = list(pd.bdate_range("2024-03-01", periods=30))  # pandas Timestamps are datetimes
    folds = make_folds(stamps, scheme="rolling", train_days=10, test_days=5, n_folds=4)
    assert len(folds) == 4
    assert folds[0].train_start == stamps[0].date()
    assert type(folds[0].train_start) is dt.date


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scheme": "expanding"}, "scheme must be"),
        ({"train_days": 0}, "train_days must be an integer >= 1"),
        ({"test_days": 2.5}, "test_days must be an integer"),
        ({"embargo_days": -1}, "embargo_days must be an integer >= 0"),
        ({"n_folds": 0}, "n_folds must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"scheme": "rolling", "train_days": 10, "test_days": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        make_folds(_sessions(50), **args)


def test_unsorted_sessions_rejected():
    s = _sessions(20)
    s[7], s[8] = s[8], s[7]
    with pytest.raises(ValueError, match=r"strictly increasing: sessions\[8\]"):
        make_folds(s, scheme="rolling", train_days=5, test_days=5)


def test_layout_cuts_the_holdout_and_its_embargo_before_laying_folds():
    # the layout drawn in the module docstring: 14 sessions, 2 rolling folds of 4 / 1 / 2, holdout 3
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(14)]
    layout = make_layout(days, scheme="rolling", train_days=4, test_days=2, embargo_days=1, n_folds=2, holdout_days=3)
    assert layout.holdout == Holdout(days[11], days[13], 3)
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in layout.folds] == [
        (days[1], days[4], days[6], days[7]),
        (days[3], days[6], days[8], days[9]),
    ]
    assert layout.search_end == days[9]  # session 10 is the embargo; nothing after 9 reaches the search


def test_layout_errors_name_the_holdout():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(10)]
    with pytest.raises(ValueError, match="holdout_days must be an integer >= 1"):
        make_layout(days, scheme="rolling", train_days=4, test_days=2, holdout_days=0)
    with pytest.raises(ValueError, match=r"walk_forward.holdout_days 5, embargo_days 1"):
        make_layout(days, scheme="rolling", train_days=4, test_days=2, embargo_days=1, holdout_days=5)
    with pytest.raises(ValueError, match="the holdout needs 12 sessions"):
        make_layout(days, scheme="rolling", train_days=4, test_days=2, holdout_days=12)

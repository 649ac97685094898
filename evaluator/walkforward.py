"""Walk-forward fold windows over a list of trading sessions.

Every length counts trading sessions, not calendar days, so a 20-session test window is four trading
weeks whatever the holidays. Folds are laid out from the *end* of the data: the last test window ends
on the last session, and each earlier test window ends the session before the next one starts. Test
windows therefore never overlap, are consecutive, and use the most recent data; sessions too few to
make another whole fold are left at the start (for an anchored scheme they join the first training
window, which always starts on the first session).

::

    rolling, train_days=4, test_days=2, embargo_days=1 over sessions 0..11:

    session  0 1 2 3 4 5 6 7 8 9 10 11
    fold 0   . T T T T e x x . . .  .      T = train, e = embargo, x = test, . = not used
    fold 1   . . . T T T T e x x .  .
    fold 2   . . . . . T T T T e x  x

A search adds a final **holdout** (lockbox): the last ``holdout_days`` sessions, after an embargo, are
cut off before any fold is laid (:func:`make_layout`). The search's objective, constraints, candidate
ranking and per-fold picks read only the folds; the fold test windows are therefore *validation*
windows (a later fold's training window covers an earlier fold's test window, and the sampler sees
every training window). Only the holdout is out-of-sample: ``search gate`` reads its KPIs there.

::

    rolling, train_days=4, test_days=2, embargo_days=1, 2 folds, holdout_days=3 over sessions 0..13:

    session  0 1 2 3 4 5 6 7 8 9 10 11 12 13
    fold 0   . T T T T e v v . . .  .  .  .     T = train, e = embargo, v = validation
    fold 1   . . . T T T T e v v .  .  .  .
    holdout  . . . . . . . . . . e  H  H  H     H = holdout (out-of-sample), never seen by the search
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict, Unpack

if TYPE_CHECKING:
    from spec_space.space import WalkForward

Scheme = Literal["rolling", "anchored"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold; all four dates are trading sessions and both windows are inclusive."""

    index: int
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date


@dataclass
class FoldWindow:
    """One window of a fold: the fold's index (-1: the holdout), which window (``in_sample``,
    ``validation`` or ``holdout``) and its first and last session."""

    fold: int
    window: str
    start: dt.date
    end: dt.date


def _as_date(value: dt.date) -> dt.date:
    # pandas Timestamps and datetimes are date subclasses; comparing them with plain dates raises.
    return value.date() if isinstance(value, dt.datetime) else value


@dataclass(frozen=True)
class Holdout:
    """The final out-of-sample window: trading sessions ``start``..``end`` inclusive, ``days`` of them."""

    start: dt.date
    end: dt.date
    days: int


@dataclass(frozen=True)
class Layout:
    """Walk-forward folds (train + validation) and the holdout after them."""

    folds: list[Fold]
    holdout: Holdout

    @property
    def search_end(self) -> dt.date:
        """The last session any fold reads: nothing after it may influence the search."""
        return self.folds[-1].test_end


class FoldSettings(TypedDict):
    """The keyword arguments of :func:`make_folds` after the sessions (documented there), which
    :func:`make_layout` hands on as they are."""

    scheme: Scheme
    train_days: int
    test_days: int
    embargo_days: NotRequired[int]
    n_folds: NotRequired[int | None]


def sessions_needed(*, train_days: int, test_days: int, embargo_days: int = 0, n_folds: int = 1) -> int:
    """Sessions required for ``n_folds`` folds: one training window, one embargo, ``n_folds`` test windows."""
    return train_days + embargo_days + n_folds * test_days


def make_folds(
    sessions: Sequence[dt.date],
    *,
    scheme: Scheme,
    train_days: int,
    test_days: int,
    embargo_days: int = 0,
    n_folds: int | None = None,
) -> list[Fold]:
    """Walk-forward folds in time order (see the module docstring for the layout).

    Args:
        sessions: trading sessions, strictly increasing.
        scheme: ``"rolling"`` keeps the training window ``train_days`` long and slides it by ``test_days``;
            ``"anchored"`` starts every training window on the first session, so it grows fold by fold.
        train_days: training sessions of a rolling fold, and of the shortest anchored one.
        test_days: sessions per test window.
        embargo_days: sessions skipped between the end of training and the start of the test, so that
            positions or features spanning the boundary cannot leak test information into training.
        n_folds: use the last ``n_folds`` possible folds; ``None`` uses as many as the sessions hold.

    Raises:
        ValueError: bad arguments, sessions not strictly increasing, or too few sessions for the folds
            (the message says how many are needed and how many there are).
    """
    if scheme not in ("rolling", "anchored"):
        raise ValueError(f"scheme must be 'rolling' or 'anchored', got {scheme!r}")
    for name, value, minimum in (
        ("train_days", train_days, 1),
        ("test_days", test_days, 1),
        ("embargo_days", embargo_days, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if n_folds is not None and (isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 1):
        raise ValueError(f"n_folds must be a positive integer or None, got {n_folds!r}")

    days = [_as_date(s) for s in sessions]
    for i in range(1, len(days)):
        if days[i] <= days[i - 1]:
            raise ValueError(
                f"sessions must be strictly increasing: sessions[{i}] = {days[i]} follows "
                f"sessions[{i - 1}] = {days[i - 1]}"
            )

    n = len(days)
    possible = (n - train_days - embargo_days) // test_days if n >= train_days + embargo_days else 0
    wanted = possible if n_folds is None else n_folds
    if possible < max(wanted, 1):
        need = sessions_needed(
            train_days=train_days, test_days=test_days, embargo_days=embargo_days, n_folds=max(wanted, 1)
        )
        span = f" ({days[0]} to {days[-1]})" if days else ""
        raise ValueError(
            f"{max(wanted, 1)} walk-forward fold(s) need {need} sessions (train {train_days} + embargo "
            f"{embargo_days} + {max(wanted, 1)} x test {test_days}) but only {n} are available{span}; "
            f"{possible} fold(s) fit. Use more data, fewer folds or shorter windows."
        )

    folds: list[Fold] = []
    first_test = n - wanted * test_days
    for k in range(wanted):
        test_start = first_test + k * test_days
        train_end = test_start - embargo_days - 1
        train_start = 0 if scheme == "anchored" else train_end - train_days + 1
        folds.append(
            Fold(
                index=k,
                train_start=days[train_start],
                train_end=days[train_end],
                test_start=days[test_start],
                test_end=days[test_start + test_days - 1],
            )
        )
    return folds


def make_layout(
    sessions: Sequence[dt.date], *, holdout_days: int, **fold_settings: Unpack[FoldSettings]
) -> Layout:
    """The holdout (the last ``holdout_days`` sessions) and, before it and an embargo, the folds
    :func:`make_folds` lays with ``fold_settings``.

    Raises:
        ValueError: as :func:`make_folds`, or ``holdout_days`` < 1, or too few sessions for the holdout
            (the message counts what the holdout and the folds need).
    """
    if isinstance(holdout_days, bool) or not isinstance(holdout_days, int) or holdout_days < 1:
        raise ValueError(f"holdout_days must be an integer >= 1, got {holdout_days!r}")
    embargo_days = fold_settings.get("embargo_days", 0)
    days = [_as_date(s) for s in sessions]
    cut = len(days) - holdout_days - embargo_days
    if cut <= 0:
        raise ValueError(
            f"the holdout needs {holdout_days} sessions plus an embargo of {embargo_days}, but only {len(days)} "
            "are available; use more data or a shorter holdout (walk_forward.holdout_days)"
        )
    try:
        folds = make_folds(days[:cut], **fold_settings)
    except ValueError as exc:
        raise ValueError(
            f"{exc} (the last {holdout_days + embargo_days} of the {len(days)} sessions are the holdout "
            f"and its embargo: walk_forward.holdout_days {holdout_days}, embargo_days {embargo_days})"
        ) from None
    return Layout(folds, Holdout(days[-holdout_days], days[-1], holdout_days))


def walk_forward_layout(sessions: Sequence[dt.date], walk_forward: WalkForward) -> Layout:
    """:func:`make_layout` with a space's ``walk_forward`` settings: the one place they become a layout."""
    return make_layout(
        sessions,
        scheme=walk_forward.scheme,
        train_days=walk_forward.train_days,
        test_days=walk_forward.test_days,
        embargo_days=walk_forward.embargo_days,
        n_folds=walk_forward.folds,
        holdout_days=walk_forward.holdout_sessions,
    )

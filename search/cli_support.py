"""What the ``search`` commands share: exit statuses, how a setup error is reported, common options.

Exit status of ``search gate``, ``confirm``, ``reproduce`` and ``promote`` (and ``run`` / ``report`` for
their errors):

* 0 (:data:`EXIT_OK`): the command did its work and the verdict is positive (or there is none to give);
* 1 (:data:`EXIT_NEGATIVE`): a negative verdict: not confirmed, not reproduced, no candidate passed;
* 2 (:data:`EXIT_SETUP`): a usage or setup error (a bad option, no such study, trial or record, a data
  store or credentials missing): one line ``error: ...`` on stderr that says what to fix.

An exception nobody expected is not caught: Python prints its traceback (and exits 1). ``search --debug``
shows the traceback of the setup errors too.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from search.paths import DATA_ROOT_ENV, STUDIES_ROOT_ENV

__all__ = [
    "EXIT_NEGATIVE",
    "EXIT_OK",
    "EXIT_SETUP",
    "data_option",
    "debug_enabled",
    "engine_option",
    "int_option",
    "options_as",
    "setup_errors",
    "storage_option",
    "study_option",
    "trial_option",
]

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_SETUP = 2

#: ``click.Context.meta`` key of ``search --debug``.
DEBUG_KEY = "search.debug"

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


def debug_enabled() -> bool:
    """True under ``search --debug``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(DEBUG_KEY))


@contextmanager
def setup_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Report the expected errors ``kinds`` as ``error: <message>`` and exit 2 (with ``--debug``: re-raise)."""
    try:
        yield
    except kinds as exc:
        if debug_enabled():
            raise
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.echo(f"error: {message}", err=True)
        sys.exit(EXIT_SETUP)


def study_option(help_text: str = "Study name (see `search studies`).") -> Callable[[F], F]:
    return click.option("--study", "study_name", required=True, help=help_text)


def trial_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--trial", "trial_number", type=click.IntRange(min=0), required=True, help=f"Trial number to {what}."
    )


STORAGE_HELP = (
    "Optuna storage: a database URL (sqlite:///..., postgresql://...) or journal:PATH "
    f"(default: sqlite at <studies root>/farm.db; studies root = ${STUDIES_ROOT_ENV} or ./studies)."
)


def storage_option(help_text: str = STORAGE_HELP) -> Callable[[F], F]:
    return click.option("--storage", default=None, help=help_text)


def data_option(purpose: str = "Parquet store") -> Callable[[F], F]:
    return click.option(
        "--data",
        "data_root",
        default=None,
        help=f"{purpose} (default: the store the study recorded; ${DATA_ROOT_ENV} is not used).",
    )


def engine_option(help_text: str, *, default: str | None = None) -> Callable[[F], F]:
    """``--engine`` with the names of the engine registry (:data:`evaluator.engines.ENGINES`)."""
    from evaluator.engines import ENGINES

    return click.option(
        "--engine",
        type=click.Choice(sorted(ENGINES)),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def int_option(*decls: str, default: int, help: str, low: int = 1, high: int | None = None) -> Callable[[F], F]:  # noqa: A002
    """A whole-number option in ``[low, high]`` that shows its default."""
    return click.option(
        *decls, type=click.IntRange(min=low, max=high), default=default, show_default=True, help=help
    )


#: Option names that differ from the config field they fill: ``--study`` and ``--trial`` are ``study_name``
#: and ``trial_number`` in every command (:func:`study_option`, :func:`trial_option`), ``study`` and
#: ``trial`` in every config.
_FIELD_OF_OPTION = {"study_name": "study", "trial_number": "trial"}


def options_as(config_type: type[C], *, own: Collection[str] = (), **values: Any) -> C:
    """The running command's options as a ``config_type`` dataclass (``GateRunConfig``, ``RunConfig``, ...).

    Each option fills the field of its name, so a command's options and its config cannot drift apart one
    keyword at a time; ``values`` fill or override fields (an option parsed first, a derived value), and
    ``own`` names the options the command uses itself (display, flags turned into ``values``).

    Raises:
        TypeError: an option names no field and is not in ``own``: a programming error, caught by the
            command's first test rather than an option that silently does nothing.
    """
    fields = {f.name for f in dataclasses.fields(config_type)}  # type: ignore[arg-type]
    taken: dict[str, Any] = {}
    for option, value in click.get_current_context().params.items():
        name = _FIELD_OF_OPTION.get(option, option)
        if option in own or name in values:
            continue
        if name not in fields:
            raise TypeError(f"option {option!r} fills no field of {config_type.__name__} and is not in own")
        taken[name] = value
    return config_type(**taken, **values)

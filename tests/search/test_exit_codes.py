"""Exit status of ``search gate``, ``confirm``, ``reproduce`` and ``promote``: 0 success, 1 a negative
verdict, 2 a usage or setup error; an unexpected error keeps its traceback; ``--debug`` shows the
traceback of setup errors too.

The commands' domain functions are replaced by stubs: what is tested is the command layer, the same body
for every command (the domain functions have their own end-to-end tests).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from search.cli import main
from search.study_access import StudySetupError


def _gate_summary(passed: bool) -> Any:
    verdict = SimpleNamespace(passed=passed, results=[], rejected_at_stage=None if passed else "kpi",
                              summary=lambda: "ok" if passed else "rejected")  # fmt: skip
    candidate = SimpleNamespace(rank=1, number=0, objectives={"sharpe": 1.0}, verdict=verdict)
    stats = SimpleNamespace(n_trials_raw=3, n_trials_eff=2.0, pbo=None, pbo_info={})
    return SimpleNamespace(study_name="s", objective="sharpe", direction="maximize", candidates=[candidate],
                           config=SimpleNamespace(gates=[]), sources=["defaults"], stats=stats, notes=[],
                           folder=Path("gates"))  # fmt: skip


def _trial_result(passed: bool) -> Any:
    return SimpleNamespace(passed=passed, trial=0, engine="fast", seconds=0.1, summary="why", path="p", windows=[])


def _promote_result(nothing_passed: bool) -> Any:
    from search.promote import PromoteResult

    return PromoteResult(planned=[] if nothing_passed else ["would deploy"], nothing_passed=nothing_passed)


#: command -> (module and function its command calls, the stub's result for a verdict, extra arguments)
COMMANDS: dict[str, tuple[str, str, Any, list[str]]] = {
    "gate": ("search.gate", "run_gates", _gate_summary, []),
    "confirm": ("search.confirm", "confirm_trial", _trial_result, ["--trial", "0"]),
    "reproduce": ("search.reproduce", "reproduce_trial", _trial_result, ["--trial", "0"]),
    "promote": ("search.promote", "promote_candidates", lambda ok: _promote_result(not ok), ["--dry-run"]),
}


def _invoke(command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, behaviour: Any, *, debug: bool = False):
    import importlib

    module, name, _, extra = COMMANDS[command]
    monkeypatch.setattr(importlib.import_module(module), name, behaviour)
    monkeypatch.setenv("FARM_STUDIES", str(tmp_path))
    args = ["--debug"] if debug else []
    args += [command, "--study", "s", *extra]
    if command == "promote":
        args += ["--studies-root", str(tmp_path)]
    return CliRunner().invoke(main, args)


def _raise(exc: BaseException):
    def stub(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return stub


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_success_is_0_and_a_negative_verdict_is_1(command, monkeypatch, tmp_path) -> None:
    make = COMMANDS[command][2]
    ok = _invoke(command, monkeypatch, tmp_path, lambda *a, **k: make(True))
    assert ok.exit_code == 0, ok.output
    negative = _invoke(command, monkeypatch, tmp_path, lambda *a, **k: make(False))
    assert negative.exit_code == 1, negative.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_setup_error_is_one_line_and_2(command, monkeypatch, tmp_path) -> None:
    result = _invoke(command, monkeypatch, tmp_path, _raise(StudySetupError("no study 's' in sqlite:///x")))
    assert result.exit_code == 2
    assert "error: no study 's'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_usage_error_is_2(command) -> None:
    result = CliRunner().invoke(main, [command, "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_debug_shows_the_setup_error_with_its_traceback(command, monkeypatch, tmp_path) -> None:
    error = StudySetupError("no study 's'")
    result = _invoke(command, monkeypatch, tmp_path, _raise(error), debug=True)
    assert result.exception is error  # raised through: Python prints the traceback


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unexpected_error_is_not_turned_into_one_line(command, monkeypatch, tmp_path) -> None:
    error = ZeroDivisionError("a bug")
    result = _invoke(command, monkeypatch, tmp_path, _raise(error))
    assert result.exception is error and "error: a bug" not in result.output

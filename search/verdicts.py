"""The verdicts of ``search gate``, ``search confirm`` and ``search reproduce`` on a study, and how they
are read back (``search promote``).

Optuna 5 refuses user attributes on finished trials, so each command keeps its verdicts in one study user
attribute: ``{"candidates": [{"trial": n, "passed": bool, "summary": ..., ...}], "folder": ...}``.
``search gate`` replaces its attribute whole (a gate run ranks every candidate again); ``confirm`` and
``reproduce`` update or insert the entry of one trial. A trial-level user attribute of the same name
(``{"passed": bool, "summary": ...}`` or a bool) is read first, for studies written by other tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from data.safe import json_safe

__all__ = [
    "CONFIRM_ATTR",
    "GATE_ATTR",
    "REPRODUCE_ATTR",
    "VERDICT_ATTRS",
    "read_verdict",
    "upsert_verdict",
    "write_verdicts",
]

#: The study user attribute ``search gate`` writes.
GATE_ATTR = "gate"
#: The study user attribute ``search confirm`` (the Lumibot re-run of a candidate) writes.
CONFIRM_ATTR = "confirm"
#: The study user attribute ``search reproduce`` writes.
REPRODUCE_ATTR = "reproduce"
VERDICT_ATTRS = (GATE_ATTR, CONFIRM_ATTR, REPRODUCE_ATTR)


def _trials(value: Any) -> set[int]:
    entries = value.get("candidates") or [] if isinstance(value, Mapping) else []
    return {int(c["trial"]) for c in entries if isinstance(c, Mapping) and "trial" in c}


def write_verdicts(study: optuna.Study, key: str, value: Mapping[str, Any]) -> set[int]:
    """Replace the attribute ``key`` with ``value``; returns the trials the replaced one held."""
    before = _trials(study.user_attrs.get(key))
    study.set_user_attr(key, json_safe(dict(value)))
    return before


def upsert_verdict(study: optuna.Study, key: str, entry: Mapping[str, Any], *, folder: str) -> None:
    """Put the verdict ``entry`` (with its ``trial``) into attribute ``key``, replacing that trial's earlier one."""
    current = study.user_attrs.get(key)
    candidates = list(current.get("candidates") or []) if isinstance(current, Mapping) else []
    trial = int(entry["trial"])
    candidates = [c for c in candidates if int(c.get("trial", -1)) != trial] + [dict(entry)]
    candidates.sort(key=lambda c: int(c["trial"]))
    study.set_user_attr(key, json_safe({"candidates": candidates, "folder": folder}))


def _passed(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        passed = value.get("passed")
        if isinstance(passed, bool):
            return passed
        text = str(value.get("verdict", "")).lower()
        if text in ("pass", "passed"):
            return True
        if text in ("fail", "failed", "rejected"):
            return False
    return None


def read_verdict(study: optuna.Study, trial: FrozenTrial, key: str) -> tuple[bool | None, str, dict[str, Any]]:
    """(passed, summary, entry) of verdict ``key`` for ``trial``; passed is None when there is none."""
    own = trial.user_attrs.get(key)
    if own is not None:
        entry = dict(own) if isinstance(own, Mapping) else {"passed": own}
        return _passed(own), str(entry.get("summary", "")), entry
    study_attr = study.user_attrs.get(key)
    if isinstance(study_attr, Mapping):
        for entry in study_attr.get("candidates") or []:
            if isinstance(entry, Mapping) and int(entry.get("trial", -1)) == trial.number:
                return _passed(entry), str(entry.get("summary", "")), dict(entry)
    return None, f"no {key} verdict", {}

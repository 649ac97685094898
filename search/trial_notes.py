"""The gate verdict as a note on the candidate trial's page in optuna-dashboard.

Optuna 5 refuses user attributes on finished trials; optuna-dashboard keeps trial notes in study system
attributes, which stay writable, so the note is the per-trial record of a verdict.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from search.gate_artifacts import result_status

if TYPE_CHECKING:
    from search.gate import CandidateResult

__all__ = ["NOTE_BEGIN", "NOTE_END", "note_markdown", "set_trial_note"]

NOTE_BEGIN = "#### search gate verdict"
NOTE_END = "_end of search gate verdict_"


def note_markdown(c: CandidateResult, total: int, folder: str, stamp: str) -> str:
    v = c.verdict
    head = "PASSED all gates" if v.passed else f"REJECTED at the {v.rejected_at_stage} stage"
    lines = [
        NOTE_BEGIN,
        f"**{head}** (candidate {c.rank} of {total}, `search gate` {stamp})",
        "",
        "| stage | gate | value | result |",
        "|---|---|---|---|",
    ]
    for r in v.results:
        value = "-" if r.value is None or not r.evaluated else f"{r.value:.4g}"
        result = r.reason if not r.evaluated else f"{result_status(r)}: {r.reason}"
        lines.append(f"| {r.stage} | {r.name} {r.op} {r.threshold:g} | {value} | {result} |")
    lines += ["", f"artifacts: `{folder}`", NOTE_END]
    return "\n".join(lines)


_NOTE_RE = re.compile(re.escape(NOTE_BEGIN) + r".*?" + re.escape(NOTE_END), re.S)


def set_trial_note(study: optuna.Study, trial: FrozenTrial, section: str | None) -> None:
    """Put ``section`` into the trial's dashboard note (replacing an earlier verdict, keeping user text).

    optuna-dashboard keeps trial notes in study system attributes, which stay writable after the trial
    finished; ``section=None`` removes an earlier verdict.
    """
    from optuna_dashboard import _note as note  # the dashboard's own note format and versioning

    storage = study._storage
    study_id = study._study_id
    current = note.get_note_from_system_attrs(storage.get_study_system_attrs(study_id), trial._trial_id)
    body = str(current["body"])
    if _NOTE_RE.search(body):
        body = _NOTE_RE.sub(lambda _m: section or "", body).strip()
    elif section is not None:
        body = f"{body.rstrip()}\n\n{section}".strip()
    else:
        return
    note.save_note_with_version(storage, study_id, trial._trial_id, int(current["version"]) + 1, body)

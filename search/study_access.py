"""A study ``search run`` made, read back: the study by name, its space, its records folder, its data
store and its candidates.

``search gate``, ``confirm``, ``reproduce``, ``report`` and ``promote`` all start here, so a missing study,
space or data store reads the same from every command (:class:`StudySetupError`, exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from data.safe import mask_url
from data.store import Store
from search.records import study_dir
from search.study import directions_of, open_storage, storage_url
from spec_space.space import SpecSpace

__all__ = [
    "StudySetupError",
    "TrialRef",
    "complete_trial",
    "find_study",
    "load_study_space",
    "open_study",
    "records_folder",
    "select_candidates",
    "store_for",
]


class StudySetupError(RuntimeError):
    """A command cannot run on this study as asked; the message says what to fix."""


def open_study(url: str, name: str) -> optuna.Study:
    """The study ``name`` in the storage at ``url``; an unknown name lists the studies there."""
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise StudySetupError(
            f"no study {name!r} in {mask_url(url)}; studies: {', '.join(names) or 'none'} "
            "(pass --storage if it lives elsewhere)"
        ) from None


def find_study(
    name: str, *, storage: str | None = None, studies_root: str | Path | None = None
) -> tuple[optuna.Study, Path, str]:
    """The study ``name`` with the studies root and the storage URL it was found with (defaults: the
    studies root of ``search run`` and the SQLite file in it)."""
    from search.paths import studies_root as default_root

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(studies_root) if studies_root is not None else default_root()
    url = storage_url(storage, root)
    return open_study(url, name), root, url


@dataclass(frozen=True)
class TrialRef:
    """Trial ``trial`` of study ``study`` and where they are: ``storage`` (default: the SQLite file in the
    studies root), ``studies_root`` (default: ``search run``'s) and the data store ``data_root`` (default:
    the one the study recorded). What ``search confirm`` and ``search reproduce`` are given."""

    study: str
    trial: int
    storage: str | None = None
    data_root: str | None = None
    studies_root: Path | None = None

    def open(self, *, why: str = "") -> tuple[optuna.Study, FrozenTrial, Path, str]:
        """(the study, the trial, which must be COMPLETE (``why`` says what needs it finished), the studies
        root, the storage URL)."""
        study, root, url = find_study(self.study, storage=self.storage, studies_root=self.studies_root)
        return study, complete_trial(study, self.trial, why=why), root, url


def complete_trial(study: optuna.Study, number: int, *, why: str = "") -> FrozenTrial:
    """Trial ``number`` of ``study``, which must be COMPLETE (``why`` says what needs it finished)."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    trial = trials.get(number)
    if trial is None:
        raise StudySetupError(
            f"study {study.study_name!r} has no trial {number}; it holds trials "
            f"{min(trials, default=0)}..{max(trials, default=-1)}"
        )
    if trial.state != TrialState.COMPLETE:
        raise StudySetupError(
            f"trial {number} of {study.study_name!r} is {trial.state.name}, not COMPLETE{why}"
        )
    return trial


def store_for(study: optuna.Study, data_root: str | None) -> Store:
    """The data store: ``data_root`` if given, else the one the study recorded."""
    root = data_root or study.user_attrs.get("data_root")
    if not root:
        raise StudySetupError(
            f"study {study.study_name!r} does not record its data store; pass --data with the store root"
        )
    if "***" in root:
        raise StudySetupError(
            f"the study's data store {root} was recorded with its credentials masked; pass --data with the "
            "full store URL (credentials from the environment)"
        )
    return Store(root)


def load_study_space(study: optuna.Study) -> SpecSpace:
    """The space the study searched, from the YAML text its provenance holds."""
    text = study.user_attrs.get("space_text")
    if not text:
        raise StudySetupError(
            f"study {study.study_name!r} has no 'space_text' attribute: it was not created by `search run`, "
            "so its space (and the specs of its trials) is unknown"
        )
    try:
        return SpecSpace.model_validate(yaml.safe_load(text))
    except Exception as exc:  # noqa: BLE001 - any parse/validation failure means the same thing here
        raise StudySetupError(
            f"study {study.study_name!r}: its stored space no longer validates with this code ({exc}); "
            "gate it with the code version that ran it"
        ) from None


def records_folder(study: optuna.Study, studies_root: Path) -> Path:
    """The folder of the study's trial records (the study's ``records_dir`` when it exists)."""
    stored = study.user_attrs.get("records_dir")
    if stored and Path(stored).is_dir():
        return Path(stored)
    return study_dir(studies_root, study.study_name)


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def select_candidates(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best feasible COMPLETE trials by the study's first objective (ties: lower number)."""
    sign = 1.0 if directions_of(study)[0] == "maximize" else -1.0
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
    return sorted(complete, key=lambda t: (-sign * t.values[0], t.number))[:k]

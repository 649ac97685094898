"""Load spec and spec-space YAML files with errors that name the file, the line and the field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from spec_space.expressions import ExpressionError
from spec_space.models import StrategySpec
from spec_space.space import SpecSpace, check_space

_HINTS = {
    "extra_forbidden": "remove it or check its spelling against the catalogue (spec_space/catalogue.md)",
    "missing": "add it",
}


class SpecError(ValueError):
    """A spec or space file that cannot be used, with every problem located."""

    def __init__(self, path: str, problems: list[tuple[int | None, str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [
            f"{path}:{line if line is not None else '?'}: {field or '(top level)'}: {message}"
            for line, field, message in problems
        ]
        super().__init__("\n".join(lines))


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path (strings; list indexes as digits) to its 1-based line in the YAML text."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                walk(value, (*path, str(index)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _locate(lines: Mapping[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str, ...]:
    # pydantic puts union member names ("IntParam", "function-after[...]") into locations
    return tuple(
        str(p)
        for p in loc
        if not (isinstance(p, str) and (p[:1].isupper() or p.startswith(("function-", "tagged-union"))))
    )


def _problems(
    exc: ValidationError, lines: Mapping[tuple[str, ...], int], prefix: tuple[str, ...] = ()
) -> list:
    problems = []
    seen = set()
    for err in exc.errors():
        loc = (*prefix, *_clean_loc(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], (dict, list)):
            message += f" (got {err['input']!r})"
        hint = _HINTS.get(err["type"])
        if hint:
            message += f"; {hint}"
        key = (loc, message)
        if key in seen:
            continue
        seen.add(key)
        problems.append((_locate(lines, loc), ".".join(loc), message))
    return problems


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line, what is wrong) of a YAML syntax error, without PyYAML's ``in "<unicode string>"``
    (the caller knows the file)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return line, f"{problem} ({context})" if context else problem


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``; a missing file or a syntax error is a :class:`SpecError` naming the file
    and the line."""
    return _read(path, mapping=False)[1]


def _read(path: str | Path, *, mapping: bool = True) -> tuple[str, Any, dict[tuple[str, ...], int]]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(str(path), [(None, "", "file not found; check the path")]) from None
    try:
        raw = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise SpecError(str(path), [(line, "", f"not valid YAML: {problem}")]) from None
    if mapping and not isinstance(raw, dict):
        raise SpecError(str(path), [(1, "", "expected a mapping of fields at the top level")])
    return text, raw, lines


def is_space_file(path: str | Path) -> bool:
    _, raw, _ = _read(path)
    return "params" in raw or "spec" in raw


def load_space(path: str | Path, *, check: bool = True) -> SpecSpace:
    """Load a spec space; with ``check``, also build a few sampled specs so bad combinations fail now."""
    _, raw, lines = _read(path)
    try:
        space = SpecSpace.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(str(path), _problems(exc, lines)) from None
    if check:
        try:
            check_space(space)
        except ValidationError as exc:
            raise SpecError(str(path), _problems(exc, lines, ("spec",))) from None
        except (ValueError, ExpressionError) as exc:
            raise SpecError(str(path), [(lines.get(("spec",)), "spec", str(exc))]) from None
    return space


def load_spec(path: str | Path) -> StrategySpec:
    _, raw, lines = _read(path)
    try:
        return StrategySpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(str(path), _problems(exc, lines)) from None


def spec_json_schema() -> dict[str, Any]:
    """JSON schema of a SpecSpace (what the LLM architect is given)."""
    return SpecSpace.model_json_schema()


def strategy_json_schema() -> dict[str, Any]:
    return StrategySpec.model_json_schema()


def dump_spec(spec: StrategySpec) -> str:
    return yaml.safe_dump(json.loads(spec.model_dump_json(exclude_defaults=False)), sort_keys=False)

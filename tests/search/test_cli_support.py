"""options_as: a command's options become its config dataclass, field by name, and an option that fills
no field is an error rather than an option that silently does nothing."""

from __future__ import annotations

from dataclasses import dataclass

import click
from click.testing import CliRunner

from search.cli_support import options_as, study_option, trial_option


@dataclass
class _Config:
    study: str
    trial: int = -1
    top: int = 5
    timeout: float | None = None
    use_ray: bool = True


def _run(command: click.Command, *args: str) -> click.testing.Result:
    return CliRunner().invoke(command, list(args))


def test_options_fill_the_fields_of_their_name_and_values_override_them() -> None:
    built: list[_Config] = []

    @click.command()
    @study_option()
    @trial_option("check")
    @click.option("--top", type=int, default=5)
    @click.option("--timeout", default=None)
    @click.option("--no-ray", is_flag=True)
    def command(study_name: str, trial_number: int, top: int, timeout: str | None, no_ray: bool) -> None:
        seconds = float(timeout[:-1]) if timeout else None
        built.append(options_as(_Config, own={"no_ray"}, timeout=seconds, use_ray=not no_ray))

    result = _run(command, "--study", "s1", "--trial", "7", "--top", "3", "--timeout", "90s", "--no-ray")
    assert result.exit_code == 0, result.output
    assert built == [_Config(study="s1", trial=7, top=3, timeout=90.0, use_ray=False)]


def test_an_option_that_fills_no_field_is_an_error_naming_it() -> None:
    @click.command()
    @study_option()
    @click.option("--top", type=int, default=5)
    @click.option("--verbose", is_flag=True)
    def command(study_name: str, top: int, verbose: bool) -> None:
        options_as(_Config)

    result = _run(command, "--study", "s1")
    assert isinstance(result.exception, TypeError)
    assert "'verbose'" in str(result.exception) and "_Config" in str(result.exception)


def test_a_value_overrides_an_option_whose_name_differs_from_its_field() -> None:
    # --study is parsed as study_name but fills the field study: a value for study replaces it
    built: list[_Config] = []

    @click.command()
    @study_option()
    def command(study_name: str) -> None:
        built.append(options_as(_Config, study=study_name.upper()))

    result = _run(command, "--study", "s1")
    assert result.exit_code == 0, result.output
    assert built == [_Config(study="S1")]

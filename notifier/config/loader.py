"""``load_config``: read the YAML, interpolate the environment, validate, report every problem.

This is the only place that opens the config file or sees the environment (STYLE rule 5): the
CLI passes ``os.environ`` in, everything below receives a frozen :class:`Config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from notifier.config.interpolate import interpolate
from notifier.config.models import Config
from notifier.config.problems import InvalidConfigError, Problem, from_validation_error, render_path


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Load and validate one config file; raise InvalidConfigError listing every problem."""
    document = _read_yaml(path)
    result = interpolate(document, env)
    if result.problems:
        problems = [Problem(render_path(loc), message) for loc, message in result.problems]
        raise InvalidConfigError(path, problems)
    try:
        config = Config.model_validate(result.value)
    except ValidationError as exc:
        # `from None`: the chained ValidationError would print inputs, secrets among them.
        problems = from_validation_error(exc, result.value, result.from_env)
        raise InvalidConfigError(path, problems) from None
    return _resolve_state_path(config, path)


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidConfigError(path, [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfigError(path, [Problem("", f"cannot read: {exc}")]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfigError(path, [_yaml_problem(exc)]) from None
    if document is None:
        raise InvalidConfigError(
            path, [Problem("", "empty file — see docs/configuration.md for an example")]
        )
    if not isinstance(document, dict):
        raise InvalidConfigError(
            path,
            [Problem("", "the top level must be a mapping of sections (state, organizers, ...)")],
        )
    return document


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    # Only the position and the parser's words: PyYAML's own str() quotes the offending line,
    # which may hold a secret written inline.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return Problem(
            "",
            f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: "
            f"{exc.problem or exc.context or 'invalid YAML'}",
        )
    return Problem("", "YAML syntax error")


def _resolve_state_path(config: Config, config_file: Path) -> Config:
    # Relative to the config file, not to wherever the service happened to be started.
    state_path = config.state.path.expanduser()
    if not state_path.is_absolute():
        state_path = config_file.absolute().parent / state_path
    return config.model_copy(update={"state": config.state.model_copy(update={"path": state_path})})

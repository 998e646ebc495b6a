"""``${VAR}`` and ``${VAR:-default}`` in every string value of the parsed YAML.

Values stay text: pydantic coerces ``organizer_id: ${ORG}`` to an int later. ``$${X}`` is a
literal ``${X}``. The caller gets back which paths were interpolated so that no error message
ever repeats a value that came from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

Location = tuple[str | int, ...]

# Order matters: the escape first, then a complete reference, then a dangling `${`.
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME_AND_DEFAULT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.S)


@dataclass
class Interpolation:
    """The result of interpolating one document."""

    value: object
    problems: list[tuple[Location, str]] = field(default_factory=list)
    from_env: set[Location] = field(default_factory=set)


def interpolate(document: object, env: Mapping[str, str]) -> Interpolation:
    """Replace every reference in every string of ``document`` (keys are left alone)."""
    result = Interpolation(value=None)
    result.value = _walk(document, (), env, result)
    return result


def _walk(node: object, loc: Location, env: Mapping[str, str], out: Interpolation) -> object:
    if isinstance(node, str):
        return _substitute(node, loc, env, out)
    if isinstance(node, Mapping):
        return {key: _walk(value, (*loc, key), env, out) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(item, (*loc, index), env, out) for index, item in enumerate(node)]
    return node


def _substitute(text: str, loc: Location, env: Mapping[str, str], out: Interpolation) -> str:
    def replace(match: re.Match[str]) -> str:
        if match[0] == "$${":
            return "${"
        out.from_env.add(loc)
        return _resolve(match[1], loc, env, out)

    return _REFERENCE.sub(replace, text)


def _resolve(body: str | None, loc: Location, env: Mapping[str, str], out: Interpolation) -> str:
    parsed = _NAME_AND_DEFAULT.fullmatch(body) if body is not None else None
    if parsed is None:
        out.problems.append(
            (
                loc,
                "malformed variable reference — write ${NAME} or ${NAME:-default}, "
                "or $${ for a literal ${",
            )
        )
        return ""
    name, default = parsed["name"], parsed["default"]
    value = env.get(name)
    # Shell semantics: `:-` also replaces a variable that is set but empty.
    if default is not None and not value:
        return default
    if value is None:
        out.problems.append((loc, f"environment variable {name} is not set — export it"))
        return ""
    return value

"""Recipe files: a command's options as one TOML file (``dfkd distill --config recipe.toml``).

A recipe maps option names (as on the command line, ``-`` or ``_`` alike: ``num-graphs = 128``) to values of
the option's type. Flags given on the command line win over the file; unknown keys and values of the wrong type
are refused in one line naming the key and the file. Every distillation writes its fully resolved recipe beside
the student (``student.recipe.toml``) and into the student checkpoint's provenance, so
``dfkd distill --config student.recipe.toml`` runs it again (same seed: the same student on CPU).

TOML is read with the standard library (:mod:`tomllib`) and written by :func:`dump_recipe` (flat tables of
strings, numbers, booleans and lists are all a recipe holds).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tomllib
from typing import Any, Dict, Iterable

# Options that steer one invocation rather than describe the run: never read from, nor written to, a recipe.
NOT_IN_RECIPES = frozenset({"config", "print_config", "resume", "debug", "help", "func", "command", "version",
                            "parser"})


class RecipeError(ValueError):
    """A recipe file that cannot be used (one line: the file, the key, what to do)."""


def recipe_path(out: str) -> str:
    """Where the resolved recipe of a run writing ``out`` goes: ``student.pt`` → ``student.recipe.toml``."""
    return os.path.splitext(out)[0] + ".recipe.toml"


def load_recipe(path: str, parser: argparse.ArgumentParser) -> Dict[str, Any]:
    """The recipe in ``path`` as ``{dest: value}`` for ``parser``'s options, checked key by key."""
    if not os.path.isfile(path):
        raise RecipeError(f"recipe {path} does not exist: write one (dfkd distill ... --print-config > {path})")
    if not path.endswith(".toml"):
        raise RecipeError(f"recipe {path}: recipes are TOML files (.toml)")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path} is not valid TOML: {exc}") from None
    actions = {a.dest: a for a in parser._actions if a.dest not in NOT_IN_RECIPES}
    values = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in actions:
            raise RecipeError(f"recipe {path}: unknown key {key!r}: choose from {sorted(actions)}")
        values[dest] = _checked(value, actions[dest], key, path)
    return values


def _checked(value: Any, action: argparse.Action, key: str, path: str) -> Any:
    """``value`` if it suits ``action`` (its type, choices, flag or list form), else a :class:`RecipeError`."""
    def refuse(expected: str) -> RecipeError:
        return RecipeError(f"recipe {path}: key {key!r} must be {expected}, got {value!r}")

    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if isinstance(action, argparse._AppendAction):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise refuse("a list of strings")
        return value
    kind = action.type if action.type in (int, float) else str
    ok = (isinstance(value, kind) and not isinstance(value, bool)) or (kind is float and isinstance(value, int)
                                                                       and not isinstance(value, bool))
    if not ok:
        raise refuse({int: "an integer", float: "a number", str: "a string"}[kind])
    if action.choices is not None and value not in action.choices:
        raise refuse(f"one of {sorted(action.choices)}")
    return float(value) if kind is float else value


def resolved_recipe(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Dict[str, Any]:
    """Every option of ``parser`` as this run resolved it (``None`` left out: the option's default applies)."""
    dests = [a.dest for a in parser._actions if a.dest not in NOT_IN_RECIPES]
    return {dest: getattr(args, dest) for dest in dests if getattr(args, dest, None) is not None}


def write_recipe(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (a crash leaves the old file whole)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def dump_recipe(recipe: Dict[str, Any], header: Iterable[str] = ()) -> str:
    """TOML text of a flat recipe (keys with ``-`` as on the command line), with ``header`` comment lines."""
    lines = [f"# {line}" for line in header]
    for dest in sorted(recipe):
        lines.append(f"{dest.replace('_', '-')} = {_toml_value(recipe[dest])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string: JSON's escapes are TOML's

"""Config as every `lvd` command resolves it: a preset, then a file, then overrides.

Every config in lvd is a plain dataclass (nested dataclasses for sections) whose fields
carry an attribute docstring and whose `__post_init__` validates values, raising
ValueError with a message that starts with the field name. This module reads YAML or
TOML files and `key=value` overrides into such objects through the one converter
(model/config_dict.py), and lists every key for --help-config (torchtitan's JobConfig
and nanoGPT's configurator are the models).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import tomllib
import yaml

from model.config_dict import (
    ConfigError,
    coerce_value,
    from_dict,
    suggest_key,
    to_dict,
    type_name,
)

__all__ = [
    "ConfigError",
    "apply_overrides",
    "build",
    "describe",
    "from_dict",
    "merge_file",
    "to_dict",
]

T = TypeVar("T")


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Return a copy of `cfg` with `a.b=value` strings applied, each checked by type."""
    data = dataclasses.asdict(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not key=value")
        hint = _field_type(type(cfg), key)
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = _parse_string(raw.strip(), hint, key)
    return from_dict(type(cfg), data)


def merge_file(cfg: T, path: str | Path) -> T:
    """Return a copy of `cfg` updated by the keys a YAML or TOML file sets."""
    data = read_file(path)
    merged = _deep_merge(dataclasses.asdict(cfg), data)
    return from_dict(type(cfg), merged)


def read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(p.read_text())
        elif p.suffix in (".yaml", ".yml", ".json"):
            data = yaml.safe_load(p.read_text()) or {}
        else:
            raise ConfigError(f"config file must be .yaml, .yml, .toml or .json: {p}")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot parse {p}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a table of keys")
    return data


def build(
    presets: Mapping[str, Callable[[], T]],
    preset: str,
    file: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> T:
    """Preset, then file, then overrides: the order every `lvd` command resolves config."""
    if preset not in presets:
        raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(presets)})")
    cfg = presets[preset]()
    if file is not None:
        cfg = merge_file(cfg, file)
    return apply_overrides(cfg, overrides)


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per leaf field: dotted key, type, default and its docstring."""
    lines = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            lines += describe(hint, f"{prefix}{f.name}.")
            continue
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "required"
            )
        )
        lines.append(
            f"{prefix}{f.name} ({type_name(hint)}, default {default!r}): {docs.get(f.name, '')}"
        )
    return lines


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings: the string literal right below each field in the class body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


# -- type checking ---------------------------------------------------------------------


def _field_type(cls: type, dotted: str) -> Any:
    node: Any = cls
    walked = []
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node):
            raise ConfigError(f"unknown key '{dotted}': '{'.'.join(walked)}' is not a section")
        hints = typing.get_type_hints(node)
        names = [f.name for f in dataclasses.fields(node) if f.init]
        if part not in names:
            raise ConfigError(f"unknown key '{dotted}'{suggest_key(part, names)}")
        node = hints[part]
        walked.append(part)
    if dataclasses.is_dataclass(node):
        raise ConfigError(f"'{dotted}' is a section; set one of its keys ({dotted}.KEY=VALUE)")
    return node


def _parse_string(raw: str, hint: Any, key: str) -> Any:
    """Parse a command-line string for a field: YAML scalars and lists (`[a, b]`, `a,b`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str or (origin is Literal and all(isinstance(a, str) for a in args)):
        return raw
    if origin in (Union, types.UnionType) and str in args and raw.lower() not in ("null", "none"):
        return raw
    if raw.lower() in ("none", "null", "~"):
        value: Any = None
    elif hint in (int, float) and _is_number(raw):
        value = float(raw) if hint is float else _int_or_raw(raw)
    else:
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    is_list = origin in (list, tuple, Sequence) or hint in (list, tuple)
    if is_list and isinstance(value, str):
        value = [yaml.safe_load(v.strip()) for v in value.split(",") if v.strip()]
        if args and args[0] is str:
            value = [str(v) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return coerce_value(value, hint, key)


def _is_number(raw: str) -> bool:
    try:
        float(raw)  # YAML 1.1 would read '1e30' as a string
    except ValueError:
        return False
    return True


def _int_or_raw(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        return raw  # '2.5' for an int field: _coerce names the key and the value


def _deep_merge(base: dict, update: Mapping) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out

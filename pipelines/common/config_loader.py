"""Typed configuration: dataclasses in, dataclasses out.

Every config in lvd is a plain dataclass (nested dataclasses for sections) whose fields
carry an attribute docstring and whose `__post_init__` validates values, raising
ValueError with a message that starts with the field name. This module turns files
(YAML or TOML), presets and `key=value` overrides into such objects, checks every value
against its field's type, and names the full dotted key in every error
(torchtitan's JobConfig and nanoGPT's configurator are the models).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import tomllib
import yaml

from pipelines.common.errors import UsageError

T = TypeVar("T")


class ConfigError(UsageError, ValueError):
    """A bad config: unknown key, wrong type, invalid value or unreadable file."""


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build `cls` from a (nested) mapping; unknown keys and wrong types are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown key '{prefix}{key}'{_suggest(key, fields)}")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{prefix}{e}") from None
    except TypeError as e:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists) of a config, for run.json and checkpoints."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


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
            f"{prefix}{f.name} ({_type_name(hint)}, default {default!r}): {docs.get(f.name, '')}"
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
            raise ConfigError(f"unknown key '{dotted}'{_suggest(part, names)}")
        node = hints[part]
        walked.append(part)
    if dataclasses.is_dataclass(node):
        raise ConfigError(f"'{dotted}' is a section; set one of its keys ({dotted}.KEY=VALUE)")
    return node


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a value read from a file (already typed) against a field's type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_dict(hint, value, prefix=f"{key}.")
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: expected {_type_name(hint)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise ConfigError(f"{key}: expected {_type_name(hint)}, got {value!r}")


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
    return _coerce(value, hint, key)


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


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _suggest(key: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""

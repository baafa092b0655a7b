"""Config dataclasses to and from plain dicts (JSON, YAML, TOML), checked by type.

The one converter for every config in lvd: model configs read back from a model
folder's config.json, and curation and training configs built from presets, files and
overrides (pipelines/common/config_loader.py). Unknown keys and wrong types are errors
that name the full dotted key; a dataclass's own checks (`__post_init__`, raising
ValueError that starts with the field name) are reported under the key's section.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
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
            raise ConfigError(f"unknown key '{prefix}{key}'{suggest_key(key, fields)}")
        kwargs[key] = coerce_value(value, hints[key], f"{prefix}{key}")
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


def coerce_value(value: Any, hint: Any, key: str) -> Any:
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
                return coerce_value(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: expected {type_name(hint)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [coerce_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): coerce_value(v, vt, f"{key}.{k}") for k, v in value.items()}
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
    raise ConfigError(f"{key}: expected {type_name(hint)}, got {value!r}")


def type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def suggest_key(key: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""

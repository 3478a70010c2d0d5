"""Strict loading of nested dataclasses from plain dicts (YAML, checkpoints): an unknown key
lists the valid ones, a value of the wrong type names its dotted key. The errors are
ValueErrors too, so the tools report them as bad input."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any


class ConfigKeyError(KeyError, ValueError):
    """An unknown config key (a ValueError too: tools report it as bad input)."""

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0])


class ConfigTypeError(TypeError, ValueError):
    """A config value of the wrong type (a ValueError too: tools report it as bad input)."""


class ConfigValueError(ValueError):
    """A config value of the right type outside what makes sense (a negative lr, say)."""


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _check_type(value, option, where)
            except (TypeError, ValueError):
                continue
        raise ConfigTypeError(f"{where}: {value!r} is not a {_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigTypeError(f"{where}: {value!r} is not None")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigTypeError(f"{where}: {value!r} is not a list")
        (item,) = typing.get_args(tp)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigTypeError(f"{where}: {value!r} is not a mapping")
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    if tp is bool and not isinstance(value, bool):
        raise ConfigTypeError(f"{where}: {value!r} is not true/false")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigTypeError(f"{where}: {value!r} is not an integer")
    if not isinstance(value, tp):
        raise ConfigTypeError(f"{where}: {value!r} is not a {_name(tp)}")
    return value


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigTypeError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        place = f" in '{where}'" if where else ""
        raise ConfigKeyError(
            f"unknown config key(s) {unknown}{place}; valid keys: {', '.join(names)}"
        )
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = from_dict(tp, value, key)
        else:
            values[name] = _check_type(value, tp, key)
    return cls(**values)

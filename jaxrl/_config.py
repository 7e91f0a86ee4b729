"""Config dataclasses: static fields fix shapes, the other fields are traced leaves.

Every algorithm's ``Config`` is declared with :func:`config` and :func:`static`::

    @config
    class Config:
        num_envs: int = static(16, "environments stepped as one batch")
        learning_rate: float = 2.5e-4

        def validate(self):
            require(self, "num_envs", positive_int)
            require(self, "learning_rate", positive)

The class is a frozen dataclass registered as a JAX pytree: static fields are
metadata (changing one means a new compiled program), every other field is a
leaf, so ``jax.vmap`` can sweep learning rates, γ, clip ε ... in one program.
``validate`` runs when a Config is built from Python values; it skips values
that are arrays or tracers (JAX rebuilds the dataclass while tracing), so the
checks cost nothing inside ``jit``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import typing
from collections.abc import Callable, Mapping
from typing import Any

import jax

__all__ = [
    "ConfigError",
    "config",
    "config_from_overrides",
    "config_to_dict",
    "in_range",
    "non_negative",
    "one_of",
    "parse_value",
    "positive",
    "positive_int",
    "positive_ints",
    "probability",
    "replace_default",
    "require",
    "static",
    "static_fields",
    "traced",
    "traced_fields",
]


class ConfigError(ValueError):
    """A Config field holds a value it does not allow."""


def static(default: Any, doc: str = "") -> Any:
    """A field that fixes shapes or program structure: part of the pytree's metadata."""
    return dataclasses.field(default=default, metadata={"static": True, "doc": doc})


def traced(default: Any, doc: str) -> Any:
    """A numeric field with its help text: a leaf of the pytree (``vmap`` can sweep it)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def replace_default(base: type, name: str, default: Any) -> Any:
    """Field ``name`` of the dataclass ``base`` with another default (same help text and
    static-ness): how a Config that extends ``base`` keeps a shared field but starts elsewhere."""
    return dataclasses.field(default=default, metadata=base.__dataclass_fields__[name].metadata)


def config(cls):
    """Makes ``cls`` a frozen dataclass and a pytree whose non-static fields are leaves."""
    user_post_init = getattr(cls, "__post_init__", None)
    # A Config extending another: wrap the user's hook, not the base's wrapper (one validate).
    user_post_init = getattr(user_post_init, "__wrapped_post_init__", user_post_init)

    def __post_init__(self):
        if user_post_init is not None:
            user_post_init(self)
        if hasattr(self, "validate"):
            self.validate()

    __post_init__.__wrapped_post_init__ = user_post_init
    # Set before dataclass() runs: the generated __init__ only calls a __post_init__ it sees.
    cls.__post_init__ = __post_init__
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)
    meta = [f.name for f in fields if f.metadata.get("static", False)]
    data = [f.name for f in fields if not f.metadata.get("static", False)]
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    return cls


def static_fields(cfg) -> list[str]:
    return [f.name for f in dataclasses.fields(cfg) if f.metadata.get("static", False)]


def traced_fields(cfg) -> list[str]:
    return [f.name for f in dataclasses.fields(cfg) if not f.metadata.get("static", False)]


def _concrete(value) -> bool:
    """Whether a value is a plain Python value (checked) rather than an array or tracer."""
    if isinstance(value, bool | str | tuple | list | type(None)):
        return True
    return isinstance(value, numbers.Number) and not isinstance(value, jax.Array)


# Checks return None when the value is allowed, or a phrase saying what is allowed.
Check = Callable[[Any], "str | None"]


def positive(v) -> str | None:
    return None if isinstance(v, numbers.Real) and math.isfinite(v) and v > 0 else "a number > 0"


def non_negative(v) -> str | None:
    ok = isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0
    return None if ok else "a number >= 0"


def positive_int(v) -> str | None:
    ok = isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
    return None if ok else "an integer > 0"


def positive_ints(v) -> str | None:
    ok = (
        isinstance(v, tuple | list)
        and len(v) > 0
        and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and x > 0 for x in v)
    )
    return None if ok else "a non-empty list of integers > 0, e.g. 64,64"


def probability(v) -> str | None:
    ok = isinstance(v, numbers.Real) and math.isfinite(v) and 0 <= v <= 1
    return None if ok else "a number in [0, 1]"


def in_range(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    def check(v):
        if not (isinstance(v, numbers.Real) and math.isfinite(v)):
            return f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if ok:
            return None
        return f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"

    return check


def one_of(*choices) -> Check:
    def check(v):
        return None if v in choices else "one of " + ", ".join(repr(c) for c in choices)

    return check


def require(cfg, name: str, *checks: Check) -> None:
    """Raises ``ConfigError`` naming the field, its value and what is allowed."""
    value = getattr(cfg, name)
    if not _concrete(value):
        return
    for check in checks:
        allowed = check(value)
        if allowed is not None:
            raise ConfigError(
                f"{type(cfg).__name__}.{name} = {value!r} is not allowed: use {allowed}"
            )


def config_to_dict(cfg) -> dict[str, Any]:
    """A JSON-ready dict of the fields (tuples become lists, arrays become lists)."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, jax.Array) or hasattr(v, "tolist"):
            v = v.tolist()
        out[f.name] = list(v) if isinstance(v, tuple) else v
    json.dumps(out)  # fail here, not halfway through writing a run directory
    return out


def _field_type(cls, name: str):
    hints = typing.get_type_hints(cls)
    return hints[name]


def parse_value(cls, name: str, text: str) -> Any:
    """Parses ``text`` as the value of field ``name`` of ``cls`` (for ``--set name=value``)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown field {name!r} for {cls.__module__}.{cls.__name__}{hint}; "
            f"fields: {', '.join(sorted(fields))}"
        )
    tp = _field_type(cls, name)
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            as_float = float(text)
            if not as_float.is_integer():
                raise ValueError
            return int(as_float)
        if tp is float:
            return float(text)
        if tp is str:
            return text
        if origin is tuple:
            inner = typing.get_args(tp)[0]
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            return tuple(inner(p.strip()) for p in parts)
    except (ValueError, TypeError, OverflowError):
        pass
    else:
        return text
    kind = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{cls.__name__}.{name}: cannot read {text!r} as {kind}")


def config_from_overrides(cls, overrides: Mapping[str, Any], base=None):
    """Builds a Config from ``base`` (or the defaults) with fields replaced by ``overrides``.

    String values are parsed with :func:`parse_value`; everything is then
    validated by the Config itself.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for name, value in overrides.items():
        if name not in known or isinstance(value, str):
            value = parse_value(cls, name, str(value))  # also raises the unknown-field error
        values[name] = value
    if base is None:
        return cls(**values)
    return dataclasses.replace(base, **values)

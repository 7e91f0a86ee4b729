"""Environments by id: every gymnax id, jaxrl's probe environments, and users' own.

``make(env_id, **kwargs)`` returns ``(env, env_params)``. Keyword arguments that
name a field of the environment's ``EnvParams`` (``max_steps_in_episode``,
``gravity`` …) replace that field; the others go to the environment's
constructor (``use_minimal_action_set`` for MinAtar, ``continuous`` for probes).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnax
import numpy as np
from gymnax.environments import spaces

from jaxrl.envs.probes import PROBE_CLASSES

__all__ = ["ActionInfo", "action_info", "env_kind", "make", "register", "registered_envs"]

EnvFactory = Callable[..., tuple[Any, Any]]

# jaxrl's own ids (and users' registrations). gymnax ids are looked up in gymnax
# at call time, so environments registered with ``gymnax.register`` are found too.
_REGISTRY: dict[str, EnvFactory] = {}


def _constructor_args(constructor: Callable[..., Any]) -> set[str] | None:
    """Keyword names a constructor accepts, or None if it takes ``**kwargs``."""
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(p.name)
    names.discard("self")
    return names


def _build(env_id: str, constructor: Callable[..., Any], kwargs: dict[str, Any]):
    """Constructs ``constructor(**ctor_kwargs)`` and applies the EnvParams overrides."""
    ctor_names = _constructor_args(constructor)
    if ctor_names is None:
        ctor_kwargs, rest = dict(kwargs), {}
    else:
        ctor_kwargs = {k: v for k, v in kwargs.items() if k in ctor_names}
        rest = {k: v for k, v in kwargs.items() if k not in ctor_names}
    env = constructor(**ctor_kwargs)
    params = env.default_params
    fields = {f.name for f in dataclasses.fields(params)}
    unknown = sorted(set(rest) - fields)
    if unknown:
        raise ValueError(
            f"make({env_id!r}): unknown keyword argument(s) {unknown}; allowed are the "
            f"EnvParams fields {sorted(fields)} and the constructor arguments "
            f"{sorted(ctor_names or [])}"
        )
    return env, params.replace(**rest)


def _gymnax_constructor(env_id: str) -> Callable[..., Any]:
    """The class (or factory) gymnax builds ``env_id`` with."""
    table = getattr(gymnax.registration, "_registry", {})
    if env_id in table:
        return table[env_id]
    return lambda **kw: gymnax.make(env_id, **kw)[0]


def _make_gymnax(env_id: str, **kwargs):
    return _build(env_id, _gymnax_constructor(env_id), kwargs)


def _probe_factory(cls, continuous: bool) -> EnvFactory:
    def factory(**kwargs):
        kwargs = {"continuous": continuous, **kwargs}
        return _build(cls.__name__, cls, kwargs)

    factory.__doc__ = f"Builds {cls.__name__} (continuous={continuous})."
    return factory


def registered_envs() -> list[str]:
    """Sorted ids that ``make`` accepts: gymnax's, jaxrl's probes and users' own."""
    return sorted(set(_REGISTRY) | set(gymnax.registered_envs))


def env_kind(env_id: str) -> str | None:
    """Which agents an id is for: ``"deep"``, ``"tabular"`` or None (unknown id).

    ``"deep"``: an id of :func:`make` (gymnax, probes, users' registrations, and the
    ``gymnasium:``/``brax:`` prefixes); the deep agents take it as ``Config.env_id``.
    ``"tabular"``: a finite MDP of ``jaxrl.tabular.TABULAR_ENVS``; the tabular agents
    take it as ``Config.env``.
    """
    from jaxrl.tabular.envs import TABULAR_ENVS

    if not isinstance(env_id, str):
        return None
    if env_id in TABULAR_ENVS:
        return "tabular"
    if env_id in _REGISTRY or env_id in gymnax.registered_envs:
        return "deep"
    if env_id.startswith(("gymnasium:", "brax:")) and env_id.split(":", 1)[1]:
        return "deep"
    return None


def register(env_id: str, factory: EnvFactory, overwrite: bool = False) -> None:
    """Registers ``factory`` under ``env_id`` for ``make``.

    Args:
      env_id: a new id (a gymnax or jaxrl id may be replaced only with ``overwrite``).
      factory: ``factory(**kwargs) -> (env, env_params)``; it receives the keyword
        arguments given to ``make`` unchanged.
      overwrite: allow replacing an existing id.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"register: env_id must be a non-empty string, got {env_id!r}")
    if not callable(factory):
        raise ValueError(f"register: factory for {env_id!r} must be callable, got {factory!r}")
    if not overwrite and env_id in registered_envs():
        raise ValueError(
            f"register: env_id {env_id!r} is already registered; pass overwrite=True to replace it"
        )
    _REGISTRY[env_id] = factory


def make(env_id: str, **kwargs: Any) -> tuple[Any, Any]:
    """Builds an environment by id.

    Args:
      env_id: one of ``registered_envs()``, e.g. ``"CartPole-v1"``, ``"Breakout-MinAtar"``,
        ``"Probe3-v0"``, ``"Probe4Continuous-v0"``, ``"ProbeTruncation-v0"``.
      **kwargs: fields of the environment's ``EnvParams`` to override (e.g.
        ``max_steps_in_episode=100``) and/or constructor arguments.

    Returns:
      ``(env, env_params)``: a gymnax-style environment (``reset(key, params)``,
      ``step(key, state, action, params)`` with auto-reset and
      ``info["final_observation"]``) and its parameters.

    Raises:
      ValueError: unknown id (the message lists the known ids and close matches) or
        an unknown keyword argument.
    """
    if str(env_id).startswith("gymnasium:"):  # host-stepped Gymnasium ids: envs/gymnasium.py
        from jaxrl.envs.gymnasium import make_gymnasium

        return make_gymnasium(env_id.split(":", 1)[1], **kwargs)
    if str(env_id).startswith("brax:"):  # Brax environments, compiled: envs/brax.py
        from jaxrl.envs.brax import make_brax

        return make_brax(env_id.split(":", 1)[1], **kwargs)
    if env_id in _REGISTRY:
        return _REGISTRY[env_id](**kwargs)
    if env_id in gymnax.registered_envs:
        return _make_gymnax(env_id, **kwargs)
    known = registered_envs()
    close = difflib.get_close_matches(str(env_id), known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown env_id {env_id!r}.{hint} Known ids: {', '.join(known)}")


class ActionInfo(NamedTuple):
    """What an agent needs to build its policy head.

    Discrete spaces fill ``num_actions``; continuous (Box) spaces fill
    ``action_dim``, ``low`` and ``high``.
    """

    discrete: bool
    num_actions: int | None  # number of actions (discrete only)
    action_dim: int | None  # flattened action size (continuous only)
    shape: tuple[int, ...]  # shape of one action: () discrete, e.g. (1,) for Pendulum
    low: np.ndarray | None  # [*shape] lower bounds (continuous only)
    high: np.ndarray | None  # [*shape] upper bounds (continuous only)

    @property
    def size(self) -> int:
        """``num_actions`` for discrete spaces, ``action_dim`` for continuous ones."""
        return self.num_actions if self.discrete else self.action_dim


def action_info(env: Any, params: Any = None) -> ActionInfo:
    """Describes ``env.action_space(params)`` as an ``ActionInfo``.

    Raises ValueError for spaces other than ``Discrete`` and ``Box``.
    """
    if params is None:
        params = env.default_params
    space = env.action_space(params)
    if isinstance(space, spaces.Discrete):
        return ActionInfo(True, int(space.n), None, (), None, None)
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape).copy()
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape).copy()
        return ActionInfo(False, None, int(np.prod(shape, dtype=int)), shape, low, high)
    raise ValueError(
        f"action_info: action space {space!r} of {getattr(env, 'name', env)!r} is not "
        "supported; allowed are gymnax Discrete and Box"
    )


for _stem, _cls in PROBE_CLASSES.items():
    _REGISTRY[f"{_stem}-v0"] = _probe_factory(_cls, continuous=False)
    _REGISTRY[f"{_stem}Continuous-v0"] = _probe_factory(_cls, continuous=True)

"""Deep-RL algorithms, one module each, each a ``Config`` and ``make_train`` (see ``base``).

``ALGORITHMS`` maps the command-line names to modules; :func:`get_algorithm`
imports one lazily and answers an unknown name with the known ones.
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from jaxrl.agents.base import Agent, make_train_fn

if TYPE_CHECKING:
    from jaxrl.tabular.agents import TabularAgent

__all__ = ["ALGORITHMS", "Agent", "get_algorithm", "make_train_fn"]

ALGORITHMS: dict[str, str] = {
    "a2c": "jaxrl.agents.a2c",
    "ddpg": "jaxrl.agents.ddpg",
    "dqn": "jaxrl.agents.dqn",
    "ppo": "jaxrl.agents.ppo",
    "pqn": "jaxrl.agents.pqn",
    "reinforce": "jaxrl.agents.reinforce",
    "sac": "jaxrl.agents.sac",
    "td3": "jaxrl.agents.td3",
    "trpo": "jaxrl.agents.trpo",
}


def get_algorithm(name: str) -> ModuleType | TabularAgent:
    """The module of algorithm ``name`` (with ``Config``, ``make_agent``, ``make_train``).

    Deep-RL names come from ``ALGORITHMS``; tabular ones (``q-learning``, ``sarsa``,
    ``expected-sarsa``, ``double-q``, ``n-step-sarsa``) from ``jaxrl.tabular``.
    """
    from jaxrl.tabular.agents import ALGORITHMS as TABULAR
    from jaxrl.tabular.agents import algorithm_entry

    if name in TABULAR:
        return algorithm_entry(name)  # a registry entry that reads like a module
    if name not in ALGORITHMS:
        known = sorted(ALGORITHMS) + list(TABULAR)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown algorithm {name!r}{hint}; known: {', '.join(known)}")
    return importlib.import_module(ALGORITHMS[name])

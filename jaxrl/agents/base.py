"""The algorithm contract every agent keeps.

An algorithm module exposes a ``Config`` (see :mod:`jaxrl._config`),
``make_agent(config) -> Agent`` and ``make_train(config) -> train``. The
``Agent`` splits a run into ``init`` and ``update`` so that :mod:`jaxrl.run`
can execute the updates in chunks (progress bar, checkpoints) while
``make_train`` gives the whole run as one pure function::

    train = make_train(config)
    state, metrics = jax.jit(train)(key)                  # one seed
    state, metrics = jax.jit(jax.vmap(train))(keys)       # many seeds in one program

``config`` is passed to ``init`` and ``update`` as an argument (a pytree whose
numeric hyperparameters are leaves), so one compiled program can also be
vmapped over hyperparameters: ``jax.vmap(agent.update)(states, configs)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["Agent", "make_train_fn"]

Metrics = dict[str, jax.Array]


class Agent(NamedTuple):
    """What :mod:`jaxrl.run` needs to run an algorithm in chunks."""

    init: Callable[[jax.Array, Any], Any]  # (key, config) -> state
    update: Callable[[Any, Any], tuple[Any, Metrics]]  # (state, config) -> (state, metrics)
    num_updates: int  # updates in a whole run
    steps_per_update: int  # environment steps per update (over all environments)


def make_train_fn(agent: Agent, config: Any) -> Callable[[jax.Array], tuple[Any, Metrics]]:
    """``train(key) -> (state, metrics)``: ``init`` then ``num_updates`` updates under one scan.

    Every array in ``metrics`` has the update index as its leading axis.
    """

    def train(key: jax.Array):
        state = agent.init(key, config)

        def step(state, _):
            return agent.update(state, config)

        return jax.lax.scan(step, state, None, length=agent.num_updates)

    return train

"""How a trained agent acts, per family, apart from its training state.

:func:`policy_parts` gives the pure ``act(params, obs, key, deterministic)`` of an
algorithm under its Config and how to take its parameters out of an agent state;
:func:`policy_fn` applies that to a state. The families: the actor-critic agents
(PPO, A2C), the policy/value agents (REINFORCE, TRPO), DQN and PQN, SAC, TD3/DDPG and
the tabular agents. Every policy acts in the environment's own action space
(off-policy actors' [−1, 1] actions are mapped to the bounds, as the training wrapper
``RescaleAction`` does) and on raw observations (the training statistics of
``normalize_obs`` travel with the parameters).

Shapes: ``R`` runs, ``N`` observations in a batch, ``*O`` one observation, ``*A`` one action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["OFF_POLICY", "ON_POLICY", "Policy", "PolicyParts", "policy_fn", "policy_parts"]

ON_POLICY = ("ppo", "a2c", "reinforce", "trpo")
OFF_POLICY = ("dqn", "ddpg", "td3", "sac", "pqn")  # pqn: ε-greedy on Q, as dqn


@dataclasses.dataclass(frozen=True)
class Policy:
    """How a trained agent acts, apart from its training state.

    ``act(params, obs [N, *O], key, deterministic) -> actions [N, *A]`` is pure (jit it,
    vmap it over runs); ``deterministic`` is a Python bool. ``params`` holds one set of
    parameters per run (leaves ``[R, ...]``).
    """

    act: Callable[[Any, Any, Any, bool], Any]
    params: Any  # leaves [R, ...]
    env: Any  # the single evaluation environment (gymnax interface)
    env_params: Any
    obs_shape: tuple[int, ...]  # *O
    discrete: bool


def _obs_stats(env_state):
    from jaxrl.envs import get_obs_stats

    try:
        return get_obs_stats(env_state)
    except ValueError:
        return None


def _to_env_bounds(a, info, rescale: bool):
    """Clip (and, for off-policy actors on [−1, 1], rescale) actions to the env's bounds."""
    import jax.numpy as jnp

    low, high = jnp.asarray(info.low), jnp.asarray(info.high)
    if rescale:
        a = jnp.clip(a, -1.0, 1.0)
        return low + (a + 1.0) * (high - low) / 2.0
    return jnp.clip(a, low, high)


def policy_fn(algo: str, config, state) -> Policy:
    """The policy of agent ``algo`` (its Config ``config``) held in ``state`` (leaves ``[R, ...]``).

    Args:
      algo: an algorithm name (``jaxrl.agents.ALGORITHMS`` or a tabular one).
      config: the run's Config (static fields select the networks).
      state: the agent's state after training, with a leading run axis.

    Returns:
      A :class:`Policy`.
    """
    parts = policy_parts(algo, config)
    return Policy(
        parts.act,
        parts.params_of(state),
        parts.env,
        parts.env_params,
        parts.obs_shape,
        parts.discrete,
    )


class PolicyParts(NamedTuple):
    """A policy's fixed parts: ``act`` as in :class:`Policy`, and ``params_of(state)``, which
    takes the parameters ``act`` needs out of an agent state (any leading axes kept)."""

    act: Callable[[Any, Any, Any, bool], Any]
    params_of: Callable[[Any], Any]
    env: Any
    env_params: Any
    obs_shape: tuple[int, ...]
    discrete: bool


def policy_parts(algo: str, config) -> PolicyParts:
    """How agent ``algo`` acts under ``config``, apart from any state (see :func:`policy_fn`)."""
    import jax
    import jax.numpy as jnp

    from jaxrl import envs
    from jaxrl.agents import get_algorithm
    from jaxrl.core.normalize import normalize

    module = get_algorithm(algo)
    if algo not in ON_POLICY + OFF_POLICY:
        return _tabular_parts(config)
    env, env_params = envs.make(config.env_id)
    info = envs.action_info(env, env_params)
    obs_shape = tuple(
        jax.eval_shape(lambda k: env.reset(k, env_params)[0], jax.random.key(0)).shape
    )

    if algo in ON_POLICY:
        net = module.make_network(config, info)
        normalized = getattr(config, "normalize_obs", False)

        def params_of(state):
            stats = _obs_stats(state.env_state) if normalized else None
            return {"net": state.params, "obs_stats": stats}

        def dist(p, obs):
            if p["obs_stats"] is not None:
                obs = normalize(p["obs_stats"], obs, 1e-8, 10.0)
            if algo in ("ppo", "a2c"):
                return net.apply(p["net"], obs)[0]
            return net.distribution(p["net"], obs)

        def act(p, obs, key, deterministic):
            d = dist(p, obs)
            a = d.mode() if deterministic else d.sample(seed=key)
            return a if info.discrete else _to_env_bounds(a, info, rescale=False)

    elif algo in ("dqn", "pqn"):
        from jaxrl.core.exploration import epsilon_greedy

        net = module.make_network(config, info)

        def params_of(state):
            return {"net": state.learner.params if algo == "dqn" else state.params}

        def act(p, obs, key, deterministic):
            q = net.apply(p["net"], obs)
            eps = 0.0 if deterministic else config.eps_end
            return (
                jnp.argmax(q, -1).astype(jnp.int32)
                if deterministic
                else epsilon_greedy(key, q, eps)
            )

    elif algo == "sac":
        from jaxrl.nets.off_policy import squashed_mode

        actor, _ = module.make_networks(config, _unit_box(info))

        def act(p, obs, key, deterministic):
            d = actor.apply(p["net"], obs)
            if info.discrete:
                return d.mode() if deterministic else d.sample(seed=key)
            a = squashed_mode(d) if deterministic else d.sample(seed=key)
            return _to_env_bounds(a, info, rescale=True)

    else:  # td3, ddpg
        from jaxrl.core.exploration import gaussian_noise

        actor, _ = module.make_networks(config, _unit_box(info))

        def act(p, obs, key, deterministic):
            a = actor.apply(p["net"], obs)
            if not deterministic:
                a = gaussian_noise(key, a, config.exploration_noise, -1.0, 1.0)
            return _to_env_bounds(a, info, rescale=True)

    if algo in ("sac", "td3", "ddpg"):

        def params_of(state):
            return {"net": state.learner.actor_params}

    return PolicyParts(act, params_of, env, env_params, obs_shape, info.discrete)


def _unit_box(info):
    """The action info of off-policy actors: [−1, 1] (as ``off_policy.make_env`` gives)."""
    if info.discrete:
        return info
    unit = np.ones(info.shape, np.float32)
    return info._replace(low=-unit, high=unit)


def _tabular_parts(config) -> PolicyParts:
    import jax
    import jax.numpy as jnp

    from jaxrl.tabular.agents import q_estimate
    from jaxrl.tabular.envs import make_task
    from jaxrl.tabular.updates import policy_probs

    task = make_task(config.env)
    env_params = task.env_params
    if config.max_steps_per_episode:
        env_params = env_params.replace(max_steps_in_episode=config.max_steps_per_episode)
    mask = jnp.asarray(task.mdp.action_mask | task.mdp.terminal[:, None])

    def params_of(state):
        return {"q": q_estimate(state.tables, config.algorithm)}

    eps = getattr(config, "epsilon_end" if config.schedule == "linear" else "epsilon")
    temp = getattr(config, "temperature_end" if config.schedule == "linear" else "temperature")

    def act(p, obs, key, deterministic):
        s = jnp.asarray(obs, jnp.int32)
        q, m = p["q"][s], mask[s]
        if deterministic:
            return jnp.argmax(jnp.where(m, q, -jnp.inf), -1).astype(jnp.int32)
        probs = policy_probs(q, m, config.exploration, eps, temp)
        return jax.random.categorical(key, jnp.log(probs)).astype(jnp.int32)

    return PolicyParts(act, params_of, task.env, env_params, (), True)

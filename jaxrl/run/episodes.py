"""The compiled evaluation program: ``E`` episodes per run, every run in one program.

Shapes: ``R`` runs, ``E`` evaluation episodes per run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxrl.run.policies import Policy, policy_parts

__all__ = ["make_evaluator", "run_episodes"]


def _max_steps(env_params) -> int:
    return int(getattr(env_params, "max_steps_in_episode", 10_000))


def run_episodes(policy: Policy, keys, episodes: int, deterministic: bool = True):
    """``episodes`` episodes per run, all runs in one compiled program.

    Each of the ``E`` environments runs until its first episode ends (at most the env's
    time limit), with the policy of its run.

    Args:
      policy: a :class:`Policy` (``params`` leaves ``[R, ...]``).
      keys: ``[R]`` PRNG keys.
      episodes: ``E``.
      deterministic: the mode of the policy (else samples from it).

    Returns:
      ``(returns [R, E], lengths [R, E])`` as NumPy arrays.
    """
    run = _episodes_program(policy.act, policy.env, policy.env_params, episodes, deterministic)
    rets, lens = run(policy.params, keys)
    return np.asarray(rets), np.asarray(lens)


def _episodes_program(act, env, env_params, episodes: int, deterministic: bool):
    """``jit(vmap(one_run))(params [R], keys [R]) -> (returns [R, E], lengths [R, E])``."""
    import jax
    import jax.numpy as jnp

    from jaxrl.envs import EpisodeStatistics, VecEnv

    env = EpisodeStatistics(VecEnv(env, episodes))
    limit = _max_steps(env_params)

    def one_run(params, key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)
        zeros = jnp.zeros((episodes,), jnp.float32)
        carry = (state, obs, key, zeros, zeros, jnp.zeros((episodes,), bool), jnp.int32(0))

        def cond(c):
            return jnp.logical_and(~jnp.all(c[5]), c[6] < limit)

        def body(c):
            state, obs, key, rets, lens, finished, t = c
            key, act_key, env_key = jax.random.split(key, 3)
            actions = act(params, obs, act_key, deterministic)
            obs, state, _, _, _, info = env.step(env_key, state, actions, env_params)
            new = jnp.logical_and(info["returned_episode"], ~finished)
            rets = jnp.where(new, info["episode_return"], rets)
            lens = jnp.where(new, info["episode_length"], lens)
            return state, obs, key, rets, lens, finished | new, t + 1

        _, _, _, rets, lens, finished, _ = jax.lax.while_loop(cond, body, carry)
        return jnp.where(finished, rets, jnp.nan), jnp.where(finished, lens, jnp.nan)

    return jax.jit(jax.vmap(one_run))


_EVALUATORS: dict[tuple, Callable] = {}


def _cached_evaluator(algo, config, episodes, deterministic, seed):
    """One compiled evaluation program per (algorithm, Config, episodes, mode, seed)."""
    from jaxrl._config import config_to_dict

    key = (algo, json.dumps(config_to_dict(config)), episodes, deterministic, seed)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = make_evaluator(algo, config, episodes, deterministic, seed)
    return _EVALUATORS[key]


def make_evaluator(
    algo: str, config, episodes: int = 10, deterministic: bool = True, seed: int = 0
) -> Callable[[Any, Any], tuple[np.ndarray, np.ndarray]]:
    """``evaluate_state(state, seeds) -> (returns [R, E], lengths [R, E])``, compiled once.

    For evaluation during training: call it on the runner's state (leaves ``[R, ...]``)
    between chunks; every call reuses the same program. ``seeds`` (one per run) and
    ``seed`` pick the evaluation episodes, as :func:`evaluate` does.
    """
    parts = policy_parts(algo, config)
    run = _episodes_program(parts.act, parts.env, parts.env_params, episodes, deterministic)

    def evaluate_state(state, seeds):
        rets, lens = run(parts.params_of(state), _eval_keys(seeds, seed))
        return np.asarray(rets), np.asarray(lens)

    return evaluate_state


def _eval_keys(seeds, eval_seed: int):
    import jax
    import jax.numpy as jnp

    base = jax.random.PRNGKey(eval_seed)
    return jnp.stack([jax.random.fold_in(base, 1_000_003 + int(s)) for s in seeds])

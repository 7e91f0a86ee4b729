"""Train PPO with a different advantage estimator, passed in as a function.

    python examples/custom_advantage.py

PPO's update calls `advantage_fn(rollout, next_values, gamma, lambda_)` and
expects `(advantages, value_targets)`, each [T, B]. Here three estimators are
compared on CartPole-v1 without copying the PPO module: GAE (the default),
λ-returns minus values (the same numbers when values are consistent, computed
another way), and on-policy V-trace (importance ratios of 1).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.agents import ppo
from jaxrl.agents.on_policy import Rollout, gae_advantages
from jaxrl.core import lambda_returns, vtrace

# JAXRL_QUICK=1 (tests/test_docs.py): tiny budgets, and output under runs/examples-quick.
QUICK = os.environ.get("JAXRL_QUICK") == "1"


def lambda_return_advantages(rollout: Rollout, next_values, gamma, lambda_):
    targets = lambda_returns(
        rollout.rewards, next_values, rollout.terminated, rollout.done, gamma, lambda_
    )
    return targets - rollout.values, targets


def vtrace_advantages(rollout: Rollout, next_values, gamma, lambda_):
    # On-policy data: log π − log μ = 0. With stale data, pass the real log-ratios.
    out = vtrace(
        rollout.values,
        next_values,
        rollout.rewards,
        rollout.terminated,
        rollout.done,
        jnp.zeros_like(rollout.rewards),
        gamma,
        lambda_,
    )
    return out.pg_advantages, out.vs


def main(total_steps: int = 200_000, seeds: int = 4):
    config = ppo.Config(env_id="CartPole-v1", total_timesteps=total_steps)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    for name, fn in [
        ("GAE", gae_advantages),
        ("lambda-returns - V", lambda_return_advantages),
        ("V-trace", vtrace_advantages),
    ]:
        _, metrics = jax.jit(jax.vmap(ppo.make_train(config, advantage_fn=fn)))(keys)
        final = np.nanmean(np.asarray(metrics["episode_return"])[:, -10:], axis=1)
        print(f"{name:>20}: final return per seed {np.round(final, 1)}  mean {final.mean():.1f}")


if __name__ == "__main__":
    main(total_steps=1_024, seeds=2) if QUICK else main()

"""Deep Deterministic Policy Gradient (DDPG).

Lillicrap et al., Continuous control with deep reinforcement learning (2015):
https://arxiv.org/abs/1509.02971, with Gaussian exploration noise instead of the
Ornstein–Uhlenbeck process (as Fujimoto et al. found it performs as well).

One learning step on a sample (s, a, r, s', terminated), actions in [−1, 1]:

    y = r + γ·(1 − terminated)·Q'(s', μ'(s'))
    critic: minimise ½(Q(s, a) − y)²
    actor:  minimise −Q(s, μ(s))
    θ' ← τθ + (1 − τ)θ' for actor and critic

It is TD3's learner (:mod:`jaxrl.agents.td3`) with one critic, no target policy
smoothing and no actor delay.
"""

from __future__ import annotations

from jaxrl._config import config
from jaxrl.agents import td3
from jaxrl.agents.base import Agent, make_train_fn

__all__ = ["Config", "make_agent", "make_networks", "make_train"]


@config
class Config(td3.DeterministicConfig):
    """DDPG settings: the loop's, two learning rates and the exploration noise. Static fields
    fix shapes; the numeric ones can be swept under vmap."""


def make_networks(config: Config, action_info=None):
    """``(actor, critic)``: a DeterministicActor on [−1, 1] and one ContinuousQ."""
    return td3.make_networks(config, action_info, twin_critics=False)


def make_agent(config: Config) -> Agent:
    """Builds DDPG's ``init`` and ``update`` (see :mod:`jaxrl.agents.base`)."""
    return td3.build_agent(config, td3.Variant(twin_critics=False, smoothing=False, policy_delay=1))


def make_train(config: Config):
    """``train(key) -> (OffPolicyState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)``."""
    return make_train_fn(make_agent(config), config)

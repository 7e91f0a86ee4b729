"""Deep Q-Networks, with Double, Dueling, n-step and prioritised-replay options.

The defaults are Double DQN with a hard target update every 500 environment steps
(``double=False`` gives the original target); on CartPole-v1 (500k steps, 8 seeds)
Double DQN ended with IQM 494 and no seed below 482, the original target with IQM 443-498
and single seeds down to 338 (benchmarks/offpolicy_learning.py).

Mnih et al., Human-level control through deep reinforcement learning (2015):
https://www.nature.com/articles/nature14236. Options: Double DQN (van Hasselt et
al.: https://arxiv.org/abs/1509.06461), a dueling head (Wang et al.:
https://arxiv.org/abs/1511.06581), n-step targets and prioritised replay (as in
Rainbow, Hessel et al.: https://arxiv.org/abs/1710.02298).

The TD target of a sampled transition (s, a, r, s', terminated) is

    y = r + γ·(1 − terminated)·Q_target(s', a*),
    a* = argmaxₐ Q_target(s', a)     (DQN)
    a* = argmaxₐ Q_online(s', a)     (Double DQN)

where s' is the real next state (the final observation when the episode ended),
so a truncated step bootstraps and a terminated one does not.

n-step targets come from windows of n consecutive transitions of one
environment in the replay buffer (the buffer keeps each environment's
transitions in time order, see :mod:`jaxrl.buffers`):

    y = Σ_{k<m} γᵏ rₖ + γᵐ (1 − terminated_{m−1}) Q_target(s'_{m−1}, a*)

with m = n, or fewer where the window reaches an episode end (a truncated end
bootstraps, a terminated end does not). The bootstrap is evaluated only at the
last step used, so an n-step sample costs one Q evaluation of s', as a one-step
one does. As usual for n-step DQN the intermediate actions are taken as they
were (no off-policy correction).

The loop (collect ``train_frequency`` steps of ``num_envs`` environments, then
``gradient_steps`` updates on fresh samples) is :mod:`jaxrl.agents.off_policy`'s.
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxrl import buffers, envs, nets
from jaxrl._config import (
    config,
    non_negative,
    one_of,
    positive,
    positive_int,
    probability,
    require,
    static,
)
from jaxrl.agents import off_policy
from jaxrl.agents.base import Agent, make_train_fn
from jaxrl.core import (
    double_q_learning,
    epsilon_greedy,
    huber_loss,
    linear_schedule,
    n_step_q_target,
    q_learning,
    squared_loss,
)

__all__ = [
    "Config",
    "DQNLearner",
    "dqn_loss",
    "epsilon_at",
    "make_agent",
    "make_network",
    "make_train",
    "td_errors",
]


@config
class Config(off_policy.LoopConfig):
    """DQN settings. Static fields fix shapes and options; numeric ones can be swept by vmap.
    The loop's fields have DQN's defaults (CleanRL's for CartPole)."""

    env_id: str = static("CartPole-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(500_000, "environment steps over all environments")
    buffer_size: int = static(10_000, "replay capacity in transitions")
    batch_size: int = static(128, "transitions (or n-step windows) per gradient step")
    train_frequency: int = static(10, "vector-env steps between rounds of gradient steps")
    hidden_sizes: tuple[int, ...] = static((120, 84), "MLP layer widths")
    torso: str = static("mlp", "mlp or cnn (MinAtar)")
    dueling: bool = static(False, "dueling head: Q = V + A − mean A")
    double: bool = static(True, "Double DQN: the online net selects a*, the target evaluates")
    n_step: int = static(1, "n of the n-step target")
    prioritized: bool = static(False, "prioritised replay (priority ∝ (|δ| + ε)^α)")
    loss: str = static("squared", "squared or huber")
    target_update_interval: int = static(50, "gradient steps between target updates")
    learning_starts: int = 10_000
    learning_rate: float = 2.5e-4
    tau: float = 1.0
    eps_start: float = 1.0
    eps_end: float = 0.05
    exploration_fraction: float = 0.5
    max_grad_norm: float = 10.0  # math.inf: no clipping
    priority_alpha: float = 0.6
    priority_beta: float = 0.4
    priority_eps: float = 1e-6

    def validate(self):
        super().validate()
        for name in ("n_step", "target_update_interval"):
            require(self, name, positive_int)
        require(self, "torso", one_of("mlp", "cnn"))
        require(self, "loss", one_of("squared", "huber"))
        for name in ("learning_rate", "exploration_fraction"):
            require(self, name, positive)
        require(self, "max_grad_norm", off_policy.positive_or_inf)
        for name in ("eps_start", "eps_end", "priority_alpha", "priority_beta"):
            require(self, name, probability)
        require(self, "priority_eps", non_negative)
        rows = self.buffer_size // self.num_envs
        if rows < self.n_step:
            raise ValueError(
                f"buffer_size // num_envs ({rows}) must be at least n_step ({self.n_step})"
            )


@flax.struct.dataclass
class DQNLearner:
    """DQN's learning state."""

    params: Any
    target_params: Any
    opt_state: Any


def make_network(config: Config, action_info=None) -> nets.QNetwork:
    """The Q-network of ``config`` (``action_info`` is looked up from the env if not given)."""
    if action_info is None:
        env, env_params = envs.make(config.env_id)
        action_info = envs.action_info(env, env_params)
    if not action_info.discrete:
        raise ValueError(
            f"DQN needs a discrete action space; {config.env_id!r} has a continuous one "
            "(use ddpg, td3 or sac)"
        )
    return nets.QNetwork(
        num_actions=action_info.num_actions,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        dueling=config.dueling,
        torso=config.torso,
    )


def epsilon_at(env_steps, cfg: Config) -> jax.Array:
    """ε after ``env_steps`` steps: linear from eps_start to eps_end over a fraction of the run."""
    duration = cfg.exploration_fraction * cfg.total_timesteps
    return linear_schedule(cfg.eps_start, cfg.eps_end, duration)(env_steps)


def _bootstrap_q(apply_fn, params, target_params, next_obs, double: bool) -> jax.Array:
    """Q_target(s', a*) with a* from the target (DQN) or the online network (Double DQN)."""
    q_target = apply_fn(target_params, next_obs)
    q_select = apply_fn(params, next_obs) if double else q_target
    a_star = jnp.argmax(q_select, axis=-1)
    return jnp.take_along_axis(q_target, a_star[..., None], axis=-1)[..., 0]


def td_errors(
    params, target_params, apply_fn, transitions: buffers.Transition, cfg: Config
) -> tuple[jax.Array, jax.Array]:
    """TD errors δ = y − Q(s, a) of a replay sample (see the module docstring for y).

    Args:
      params: online network parameters.
      target_params: target network parameters.
      apply_fn: ``(params, obs [N, *O]) -> Q [N, A]``.
      transitions: leaves ``[N, *]`` (``cfg.n_step == 1``) or ``[N, n, *]`` windows.
      cfg: the DQN Config (``gamma``, ``double``, ``n_step``).

    Returns:
      ``(td_errors [N], q_taken [N])``; no gradient flows into the target.
    """
    if cfg.n_step == 1:
        t = transitions
        discount = off_policy.discount(t, cfg.gamma)
        if cfg.double:
            # A separate pass for s': one pass over [s; s'] would backpropagate through both.
            q = apply_fn(params, t.obs)
            q_next_online = apply_fn(jax.lax.stop_gradient(params), t.next_obs)
            q_next_target = apply_fn(target_params, t.next_obs)
            td = double_q_learning(q, t.action, t.reward, discount, q_next_target, q_next_online)
        else:
            q = apply_fn(params, t.obs)
            q_next_target = apply_fn(target_params, t.next_obs)
            td = q_learning(q, t.action, t.reward, discount, q_next_target)
        q_taken = jnp.take_along_axis(q, t.action[:, None].astype(jnp.int32), axis=-1)[:, 0]
        return td, q_taken

    t = transitions  # [N, n, ...]
    n = t.reward.shape[1]
    done = jnp.logical_or(t.terminated, t.truncated)
    # The last step used: the first one that ends the episode, else the window's end.
    ends = jnp.concatenate([done[:, :-1], jnp.ones_like(done[:, :1])], axis=1)
    last = jnp.argmax(ends, axis=1)
    rows = jnp.arange(t.reward.shape[0])
    boot_obs = t.next_obs[rows, last]
    v = _bootstrap_q(apply_fn, params, target_params, boot_obs, cfg.double)
    # n_step_q_target reads the bootstrap only at the last step used: broadcast it over n.
    target = n_step_q_target(
        t.reward.T,
        jnp.broadcast_to(v, (n, v.shape[0])),
        t.terminated.T,
        done.T,
        cfg.gamma,
    )
    q = apply_fn(params, t.obs[:, 0])
    q_taken = jnp.take_along_axis(q, t.action[:, 0, None].astype(jnp.int32), axis=-1)[:, 0]
    return target - q_taken, q_taken


def dqn_loss(params, target_params, apply_fn, sample: buffers.ReplaySample, cfg: Config):
    """mean(w · L(δ)) with L squared or Huber and w the importance weights (1 if uniform).

    Returns:
      ``(loss, (td_errors [N], q_taken [N]))``.
    """
    td, q_taken = td_errors(params, target_params, apply_fn, sample.transitions, cfg)
    per_sample = huber_loss(td) if cfg.loss == "huber" else squared_loss(td)
    if cfg.prioritized:
        per_sample = sample.weights * per_sample
    return jnp.mean(per_sample), (td, q_taken)


def _optimizer(cfg: Config):
    return off_policy.adam(cfg.learning_rate, off_policy.clip_norm(cfg.max_grad_norm))


def _act(learner: DQNLearner, obs, key, env_steps, cfg: Config, *, apply_fn):
    eps = epsilon_at(env_steps, cfg)
    actions = epsilon_greedy(key, apply_fn(learner.params, obs), eps)
    return actions, {"epsilon": eps}


def _learn(learner: DQNLearner, sample, key, grad_steps, cfg: Config, *, apply_fn):
    del key
    tx = _optimizer(cfg)
    grads, (td, q_taken) = jax.grad(dqn_loss, has_aux=True)(
        learner.params, learner.target_params, apply_fn, sample, cfg
    )
    params, opt_state = off_policy.apply_updates(learner.params, grads, learner.opt_state, tx)
    target = off_policy.target_update(
        learner.target_params, params, grad_steps, cfg.tau, cfg.target_update_interval
    )
    per_sample = huber_loss(td) if cfg.loss == "huber" else squared_loss(td)
    metrics = {"td_loss": jnp.mean(per_sample), "q_mean": jnp.mean(q_taken)}
    learner = DQNLearner(params=params, target_params=target, opt_state=opt_state)
    return off_policy.LearnOutput(learner, metrics, td if cfg.prioritized else None)


def make_agent(config: Config) -> Agent:
    """Builds DQN's ``init`` and ``update`` (see :mod:`jaxrl.agents.base`)."""
    env = off_policy.make_env(config.env_id, config.num_envs)
    network = make_network(config, env.action_info)
    apply_fn = network.apply
    buffer = buffers.make_replay_buffer(
        config.buffer_size,
        config.num_envs,
        config.batch_size,
        sequence_length=config.n_step,
        prioritized=config.prioritized,
    )

    def init_learner(key, cfg: Config, example):
        net_key, key = jax.random.split(key)
        params = network.init(net_key, example.obs[None])
        learner = DQNLearner(
            params=params, target_params=params, opt_state=_optimizer(cfg).init(params)
        )
        return learner, key

    act_fn = functools.partial(_act, apply_fn=apply_fn)
    learn_fn = functools.partial(_learn, apply_fn=apply_fn)
    return off_policy.build_agent(config, env, buffer, init_learner, act_fn, learn_fn)


def make_train(config: Config):
    """``train(key) -> (OffPolicyState, metrics)``, pure: ``jax.jit(jax.vmap(train))(keys)``."""
    return make_train_fn(make_agent(config), config)

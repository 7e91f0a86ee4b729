"""The Config fields of the collect-then-learn loop, shared by DQN, DDPG, TD3 and SAC.

Each off-policy algorithm's ``Config`` extends :class:`LoopConfig` with its own fields
(learning rates, noise, temperature); DQN declares its own defaults for the loop fields.
"""

from __future__ import annotations

from jaxrl import nets
from jaxrl._config import config, non_negative, one_of, positive_int, probability, require, static

__all__ = ["LoopConfig", "validate_loop"]


@config
class LoopConfig:
    """Replay-loop settings; the defaults are the continuous-control ones (SB3's for Pendulum)."""

    env_id: str = static("Pendulum-v1", "environment id (jaxrl.envs.make)")
    total_timesteps: int = static(20_000, "environment steps over all environments")
    num_envs: int = static(1, "environments stepped as one batch")
    buffer_size: int = static(100_000, "replay capacity in transitions")
    batch_size: int = static(256, "transitions per gradient step")
    train_frequency: int = static(1, "vector-env steps between rounds of gradient steps")
    gradient_steps: int = static(1, "gradient steps per round")
    steps_per_update: int = static(1_000, "env steps per update (one metrics row)")
    hidden_sizes: tuple[int, ...] = static((256, 256), "MLP layer widths of every network")
    activation: str = static("relu", "a name in jaxrl.nets.ACTIVATIONS (relu, tanh, silu ...)")
    learning_starts: int = 1_000
    gamma: float = 0.99
    tau: float = 0.005

    def validate(self):
        validate_loop(self)
        require(self, "activation", one_of(*nets.ACTIVATIONS))
        for name in ("gamma", "tau"):
            require(self, name, probability)


def validate_loop(cfg) -> None:
    """Checks the loop fields every off-policy Config has; raises ValueError naming them."""
    for name in (
        "total_timesteps",
        "num_envs",
        "buffer_size",
        "batch_size",
        "train_frequency",
        "gradient_steps",
        "steps_per_update",
    ):
        require(cfg, name, positive_int)
    per_iteration = cfg.num_envs * cfg.train_frequency
    if cfg.steps_per_update % per_iteration:
        raise ValueError(
            f"steps_per_update ({cfg.steps_per_update}) must be a multiple of num_envs * "
            f"train_frequency ({per_iteration})"
        )
    if cfg.total_timesteps < cfg.steps_per_update:
        raise ValueError(
            f"total_timesteps ({cfg.total_timesteps}) must be at least steps_per_update "
            f"({cfg.steps_per_update}), the steps of one update"
        )
    if cfg.buffer_size % cfg.num_envs or cfg.buffer_size < 2 * cfg.num_envs:
        raise ValueError(
            f"buffer_size ({cfg.buffer_size}) must be a multiple of num_envs ({cfg.num_envs}) "
            "holding at least 2 transitions per environment"
        )
    require(cfg, "learning_starts", non_negative)

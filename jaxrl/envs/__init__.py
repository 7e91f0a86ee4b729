"""Environment access: gymnax by id, jaxrl's probe environments, batching and wrappers.

All environments follow the gymnax 1.0 interface with auto-reset::

    env, params = make("CartPole-v1")
    env = EpisodeStatistics(VecEnv(env, num_envs=8))
    obs, state = env.reset(key, params)                     # obs [B, *O]
    obs, state, reward, terminated, truncated, info = env.step(key, state, actions, params)

``terminated`` marks a true terminal (do not bootstrap); ``truncated`` a time
limit (bootstrap from the value of ``info["final_observation"]``).
"""

from jaxrl.envs import probes, registry, vector, wrappers
from jaxrl.envs.probes import *
from jaxrl.envs.registry import *
from jaxrl.envs.vector import *
from jaxrl.envs.wrappers import *

__all__ = [*registry.__all__, *vector.__all__, *wrappers.__all__, *probes.__all__]

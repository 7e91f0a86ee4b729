"""Tabular RL: finite MDPs as arrays, dynamic programming, and tabular TD agents.

- ``mdp``: ``FiniteMDP`` (P[s, a, s'], R[s, a, s'], γ, μ₀, terminal states, action
  sets), validated on construction; ``random_mdp``.
- ``dp``: Bellman backups and residuals, exact / iterative / finite-horizon policy
  evaluation, value iteration, policy iteration.
- ``gridworlds`` and ``envs``: Cliff Walking, FrozenLake (as gymnax
  ``FrozenLake-misc``), windy gridworld, the maximization-bias MDP, random MDPs;
  each a ``TabularTask`` whose ``TabularEnv`` steps it with the gymnax 1.0 API.
  ``TABULAR_ENVS`` names them.
- ``updates`` and ``agents``: Q-learning, SARSA, Expected SARSA, Double Q-learning
  and n-step SARSA built on the TD errors of ``jaxrl.core.value``, each a
  ``Config`` + ``make_train``; ``TABULAR_AGENTS`` names them.
- ``render`` and ``solver``: text grids, heatmaps, and ``solve(method, env_name)``.
"""

from jaxrl.tabular import agents, dp, envs, gridworlds, mdp, render, solver, updates
from jaxrl.tabular.agents import *
from jaxrl.tabular.dp import *
from jaxrl.tabular.envs import *
from jaxrl.tabular.gridworlds import *
from jaxrl.tabular.mdp import *
from jaxrl.tabular.render import *
from jaxrl.tabular.solver import *
from jaxrl.tabular.updates import *

__all__ = [
    *mdp.__all__,
    *dp.__all__,
    *gridworlds.__all__,
    *envs.__all__,
    *updates.__all__,
    *agents.__all__,
    *render.__all__,
    *solver.__all__,
]

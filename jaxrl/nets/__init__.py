"""flax.linen networks for deep RL: torsos, policy heads, value and Q heads.

Shapes: ``*N`` any leading batch axes, ``D`` an observation vector's size,
``H×W×C`` an image observation, ``A`` the number of discrete actions or the
action dimension.

Parameters are plain pytrees: ``params = net.init(key, obs)`` and
``net.apply(params, obs)`` is a pure function, so ``jax.vmap`` runs a batch of
parameter sets (seeds, hyperparameters) at once.

Initialisation follows common PPO practice: orthogonal weights with gain √2 for
hidden layers, 0.01 for policy heads (a near-uniform / near-zero-mean initial
policy) and 1.0 for value and Q heads; zero biases. See Andrychowicz et al. 2021,
What Matters in On-Policy Reinforcement Learning?: https://arxiv.org/abs/2006.05990
and Huang et al. 2022, The 37 Implementation Details of PPO:
https://iclr-blog-track.github.io/2022/03/25/ppo-implementation-details/

The orthogonal initialiser (``initializers.orthogonal``) equals jax's but decomposes
one matrix after another under ``vmap``: a batched LAPACK QR can hang jaxlib's CPU
thread pool on a 2-core machine, and ``jax.vmap(make_train(config))`` runs ``init``
once per seed inside the vmap.
"""

from jaxrl.nets import actor_critic, distributions, initializers, off_policy, torsos
from jaxrl.nets.actor_critic import *
from jaxrl.nets.distributions import *
from jaxrl.nets.initializers import *
from jaxrl.nets.off_policy import *
from jaxrl.nets.torsos import *

__all__ = [
    *torsos.__all__,
    *distributions.__all__,
    *initializers.__all__,
    *actor_critic.__all__,
    *off_policy.__all__,
]

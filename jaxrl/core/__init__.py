"""Pure math on arrays: returns, advantages, TD errors, policy losses, trust regions.

Every function here is pure, takes float32 arrays (time-major ``[T, *B]`` for
estimators that scan over time) and returns float32 arrays. Nothing here knows
about networks, environments or optimiser state.
"""

from jaxrl.core import (
    dpg,
    exploration,
    kl,
    minibatch,
    policy,
    preference,
    returns,
    sac,
    sequence,
    trust_region,
    value,
)
from jaxrl.core.dpg import *
from jaxrl.core.exploration import *
from jaxrl.core.kl import *
from jaxrl.core.minibatch import *
from jaxrl.core.normalize import *
from jaxrl.core.normalize import __all__ as _normalize_all  # the function shadows the module name
from jaxrl.core.policy import *
from jaxrl.core.preference import *
from jaxrl.core.returns import *
from jaxrl.core.sac import *
from jaxrl.core.sequence import *
from jaxrl.core.trust_region import *
from jaxrl.core.value import *

__all__ = [
    *returns.__all__,
    *exploration.__all__,
    *trust_region.__all__,
    *_normalize_all,
    *value.__all__,
    *policy.__all__,
    *sac.__all__,
    *dpg.__all__,
    *minibatch.__all__,
    *sequence.__all__,
    *kl.__all__,
    *preference.__all__,
]

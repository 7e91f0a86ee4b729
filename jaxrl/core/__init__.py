"""Pure math on arrays: returns, advantages, TD errors, policy losses, trust regions.

Every function here is pure, takes float32 arrays (time-major ``[T, *B]`` for
estimators that scan over time) and returns float32 arrays. Nothing here knows
about networks, environments or optimiser state.
"""

from jaxrl.core import returns
from jaxrl.core.returns import *

__all__ = [*returns.__all__]

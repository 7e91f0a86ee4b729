"""jaxrl: reinforcement-learning algorithms as pure JAX functions.

Layers (each imports only from those above it): ``core`` (math on arrays),
``tabular`` (finite MDPs), ``envs``, ``nets``, ``buffers``, ``agents``,
``llm`` and ``run``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

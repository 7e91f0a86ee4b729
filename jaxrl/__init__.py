"""jaxrl: reinforcement-learning algorithms as pure JAX functions.

Layers (each imports only from those above it): ``core`` (math on arrays),
``tabular`` (finite MDPs), ``envs``, ``nets``, ``buffers``, ``agents``,
``llm`` and ``run``.
"""

from jaxrl import _deferred_plotting

__version__ = "0.1.0"
__all__ = ["__version__", "load"]

_deferred_plotting.install()  # gymnax's seaborn/pyplot imported when rendering, not at start-up


def load(run_dir, seed=None):
    """The trained policy of a run directory, to act with: ``jaxrl.load(RUN).act(obs)``.

    A thin wrapper (``import jaxrl`` stays free of jax) around
    :func:`jaxrl.run.evaluate.load`; ``seed`` picks the run (default: the first seed).
    """
    from jaxrl.run.evaluate import load as _load

    return _load(run_dir, seed)

"""Run directories read back: the record, the newest checkpoint of every run, the policies.

:func:`restore_run` rebuilds every compiled group of a run directory (its Config, the
abstract state of its runs) and restores the newest readable checkpoint; :func:`load`
returns one run's :class:`LoadedPolicy`, whose ``act(obs)`` needs none of the training
state.

Shapes: ``R`` runs in a run directory (seeds × configurations), ``*O`` one observation.
"""

from __future__ import annotations

import json
import typing
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxrl.run.policies import Policy, policy_fn

__all__ = ["LoadedPolicy", "RestoredRun", "load", "read_record", "restore_run"]


class RestoredRun(NamedTuple):
    """A run directory read back: its record and the final state of every run."""

    algo: str
    config: Any  # the base Config
    seeds: list[int]  # the seed of each run, in run order
    labels: list[dict]  # the swept values of each run's configuration
    states: list[Any]  # one state per compiled group, leaves [R_group, ...]
    updates_done: list[int]  # the checkpoint's update count, per group
    policies: list[Policy]  # one per group
    group_configs: list[Any]  # the Config of each group (its first configuration)


def read_record(run_dir: str | Path) -> tuple[dict, Any, Any]:
    """``(record, module, config)`` from a run directory's config.json; ValueError if not a run."""
    from jaxrl._config import config_from_overrides
    from jaxrl.agents import get_algorithm

    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: no such directory")
    if not path.exists():
        raise ValueError(
            f"{run_dir} is not a run directory (no config.json; made by `jaxrl train`)"
        )
    try:
        record = json.loads(path.read_text())
        algo = record["algo"]
        values = record["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path}: not a training run's config.json ({type(e).__name__}: {e})"
        ) from e
    module = get_algorithm(algo)
    hints = typing.get_type_hints(module.Config)
    values = {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
    }
    return record, module, config_from_overrides(module.Config, values)


def _env_of(config) -> str:
    return str(getattr(config, "env_id", None) or getattr(config, "env", ""))


def _groups(configs) -> list[list[int]]:
    from jaxrl.run.train import _groups

    return _groups(configs)


def restore_run(run_dir: str | Path) -> RestoredRun:
    """Reads a run directory and the newest readable checkpoint of every run in it.

    Raises:
      ValueError: not a run directory, no checkpoints, or none of them readable (naming them).
    """
    import jax

    from jaxrl.run.checkpoint import Checkpointer
    from jaxrl.run.experiment import seed_keys, stack_configs
    from jaxrl.run.train import expand_grid

    run_dir = Path(run_dir)
    record, module, config = read_record(run_dir)
    seeds = [int(s) for s in record.get("seeds", [0])]
    grid = record.get("grid") or {}
    configs, labels = expand_grid(config, grid)
    groups = _groups(configs)
    states, done, policies, run_labels, group_configs = [], [], [], [], []
    for g, idx in enumerate(groups):
        sub = run_dir / ("checkpoints" if len(groups) == 1 else f"checkpoints/group-{g}")
        if not sub.is_dir() or not any(p.name.isdigit() for p in sub.iterdir()):
            raise ValueError(
                f"{run_dir}: no checkpoints in {sub} (was it trained with --no-checkpoint?)"
            )
        group_cfgs = [configs[i] for i in idx]
        agent = module.make_agent(group_cfgs[0])
        runs = [c for c in group_cfgs for _ in seeds]
        batched = stack_configs(runs) if grid else group_cfgs[0]
        axis = 0 if grid else None
        keys = seed_keys(seeds * len(group_cfgs))
        padded = _padded(len(runs))
        if padded != len(runs):
            keys = jax.numpy.concatenate([keys, jax.numpy.repeat(keys[:1], padded - len(runs), 0)])
            if grid:
                batched = jax.tree.map(
                    lambda x: jax.numpy.concatenate(
                        [x, jax.numpy.repeat(x[:1], padded - len(runs), 0)]
                    ),
                    batched,
                )
        if axis is None:
            init = lambda k, c: jax.lax.map(lambda kk: agent.init(kk, c), k)  # noqa: E731
        else:
            init = lambda k, c: jax.lax.map(lambda kc: agent.init(*kc), (k, c))  # noqa: E731
        abstract = jax.eval_shape(init, keys, batched)
        _, metric_shapes = jax.eval_shape(
            jax.vmap(agent.update, in_axes=(0, axis)), abstract, batched
        )
        ckpt = Checkpointer(sub, keep=10_000, asynchronous=False)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                restored = ckpt.restore(abstract, {k: v.dtype for k, v in metric_shapes.items()})
            steps = ckpt.steps()
        finally:
            ckpt.close()
        if restored is None:
            why = "; ".join(str(w.message) for w in caught)[:400]
            raise ValueError(f"{run_dir}: no readable checkpoint among {steps} in {sub} ({why})")
        state = jax.tree.map(lambda x: x[: len(runs)], restored.state)
        states.append(state)
        done.append(int(restored.updates_done))
        policies.append(policy_fn(record["algo"], group_cfgs[0], state))
        group_configs.append(group_cfgs[0])
        run_labels.extend(labels[i] for i in idx for _ in seeds)
    run_seeds = [s for idx in groups for _ in idx for s in seeds]
    return RestoredRun(
        record["algo"], config, run_seeds, run_labels, states, done, policies, group_configs
    )


def _padded(num_runs: int) -> int:
    import math

    import jax

    n = len(jax.devices())
    return num_runs if n < 2 else math.ceil(num_runs / n) * n


def _leading(state) -> list:
    import jax

    return range(jax.tree.leaves(state)[0].shape[0])


class LoadedPolicy:
    """A trained policy to act with: ``act(obs, key=None, deterministic=True)``.

    ``obs`` is one observation ``[*O]`` or a batch ``[N, *O]`` (NumPy, JAX, a Gymnasium
    observation, a Python number for a tabular state); the actions come back as NumPy
    arrays in the environment's action space, ``[*A]`` or ``[N, *A]``.
    """

    def __init__(self, policy: Policy, params: Any, algo: str, env_id: str, seed: int):
        import jax

        self.policy = policy
        self.params = params
        self.algo, self.env_id, self.seed = algo, env_id, seed
        self._act = jax.jit(policy.act, static_argnums=3)
        self._key = jax.random.PRNGKey(seed)

    def act(self, obs, key=None, deterministic: bool = True) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(np.asarray(obs))
        if jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.float32)
        rank = len(self.policy.obs_shape)
        if x.ndim not in (rank, rank + 1) or tuple(x.shape[x.ndim - rank :]) != tuple(
            self.policy.obs_shape
        ):
            raise ValueError(
                f"act: obs has shape {tuple(x.shape)}; expected {self.policy.obs_shape} or "
                f"[N, *{self.policy.obs_shape}] for {self.env_id}"
            )
        single = x.ndim == rank
        if key is None:
            self._key, key = jax.random.split(self._key)
        out = self._act(self.params, x[None] if single else x, key, bool(deterministic))
        out = np.asarray(out)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"LoadedPolicy({self.algo} on {self.env_id}, seed {self.seed})"


def load(run_dir: str | Path, seed: int | None = None) -> LoadedPolicy:
    """The policy of one run of a run directory (``seed``, default: the first one).

    Example::

        policy = jaxrl.load("runs/quick")
        action = policy.act(obs)            # deterministic: argmax / mean action
    """
    import jax

    restored = restore_run(run_dir)
    seed = restored.seeds[0] if seed is None else int(seed)
    if seed not in restored.seeds:
        raise ValueError(f"load: {run_dir} has no run with seed {seed}; seeds: {restored.seeds}")
    r = restored.seeds.index(seed)
    offset = 0
    for g, policy in enumerate(restored.policies):
        n = len(_leading(restored.states[g]))
        if r < offset + n:
            params = jax.tree.map(lambda x: x[r - offset], policy.params)
            return LoadedPolicy(policy, params, restored.algo, _env_of(restored.config), seed)
        offset += n
    raise AssertionError("unreachable")

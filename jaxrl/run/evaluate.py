"""Evaluation of trained runs: restore a run directory, act, and measure returns.

``evaluate(RUN)`` loads the newest checkpoint of every run (seed × configuration)
in a run directory, runs ``episodes`` episodes per run of the deterministic
policy (argmax for discrete actions, the mean for continuous ones) or of the
stochastic one, all runs in one compiled program, and writes ``eval.json``: per
run and over runs, the mean, the IQM and 95% bootstrap intervals
(:mod:`jaxrl.run.stats`). ``load(RUN)`` returns a :class:`LoadedPolicy` whose
``act(obs)`` needs none of the training state.

A policy is taken out of an agent's state per family (:func:`policy_fn`): the
actor-critic agents (PPO, A2C), the policy/value agents (REINFORCE, TRPO), DQN,
SAC, TD3/DDPG and the tabular agents. Every policy acts in the environment's own
action space (off-policy actors' [−1, 1] actions are mapped to the bounds, as the
training wrapper ``RescaleAction`` does) and on raw observations (the training
statistics of ``normalize_obs`` travel with the parameters).

Shapes: ``R`` runs in a run directory, ``E`` evaluation episodes per run, ``N``
observations in a batch, ``*O`` one observation.
"""

from __future__ import annotations

import dataclasses
import json
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "LoadedPolicy",
    "Policy",
    "RestoredRun",
    "TrainingEvaluation",
    "cmd_eval",
    "evaluate",
    "load",
    "make_evaluator",
    "policy_fn",
    "policy_parts",
    "restore_run",
    "run_episodes",
]

ON_POLICY = ("ppo", "a2c", "reinforce", "trpo")
OFF_POLICY = ("dqn", "ddpg", "td3", "sac", "pqn")  # pqn: ε-greedy on Q, as dqn


@dataclasses.dataclass(frozen=True)
class Policy:
    """How a trained agent acts, apart from its training state.

    ``act(params, obs [N, *O], key, deterministic) -> actions [N, *A]`` is pure (jit it,
    vmap it over runs); ``deterministic`` is a Python bool. ``params`` holds one set of
    parameters per run (leaves ``[R, ...]``).
    """

    act: Callable[[Any, Any, Any, bool], Any]
    params: Any  # leaves [R, ...]
    env: Any  # the single evaluation environment (gymnax interface)
    env_params: Any
    obs_shape: tuple[int, ...]  # *O
    discrete: bool


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


def _usage(message: str) -> ValueError:
    return ValueError(message)


def read_record(run_dir: str | Path) -> tuple[dict, Any, Any]:
    """``(record, module, config)`` from a run directory's config.json; ValueError if not a run."""
    from jaxrl._config import config_from_overrides
    from jaxrl.agents import get_algorithm

    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise _usage(f"{run_dir}: no such directory")
    if not path.exists():
        raise _usage(f"{run_dir} is not a run directory (no config.json; made by `jaxrl train`)")
    try:
        record = json.loads(path.read_text())
        algo = record["algo"]
        values = record["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise _usage(f"{path}: not a training run's config.json ({type(e).__name__}: {e})") from e
    module = get_algorithm(algo)
    hints = typing.get_type_hints(module.Config)
    values = {
        k: tuple(v) if isinstance(v, list) and typing.get_origin(hints.get(k)) is tuple else v
        for k, v in values.items()
    }
    return record, module, config_from_overrides(module.Config, values)


def _env_of(config) -> str:
    return str(getattr(config, "env_id", None) or getattr(config, "env", ""))


def _obs_stats(env_state):
    from jaxrl.envs import get_obs_stats

    try:
        return get_obs_stats(env_state)
    except ValueError:
        return None


def _to_env_bounds(a, info, rescale: bool):
    """Clip (and, for off-policy actors on [−1, 1], rescale) actions to the env's bounds."""
    import jax.numpy as jnp

    low, high = jnp.asarray(info.low), jnp.asarray(info.high)
    if rescale:
        a = jnp.clip(a, -1.0, 1.0)
        return low + (a + 1.0) * (high - low) / 2.0
    return jnp.clip(a, low, high)


def policy_fn(algo: str, config, state) -> Policy:
    """The policy of agent ``algo`` (its Config ``config``) held in ``state`` (leaves ``[R, ...]``).

    Args:
      algo: an algorithm name (``jaxrl.agents.ALGORITHMS`` or a tabular one).
      config: the run's Config (static fields select the networks).
      state: the agent's state after training, with a leading run axis.

    Returns:
      A :class:`Policy`.
    """
    parts = policy_parts(algo, config)
    return Policy(
        parts.act,
        parts.params_of(state),
        parts.env,
        parts.env_params,
        parts.obs_shape,
        parts.discrete,
    )


class PolicyParts(NamedTuple):
    """A policy's fixed parts: ``act`` as in :class:`Policy`, and ``params_of(state)``, which
    takes the parameters ``act`` needs out of an agent state (any leading axes kept)."""

    act: Callable[[Any, Any, Any, bool], Any]
    params_of: Callable[[Any], Any]
    env: Any
    env_params: Any
    obs_shape: tuple[int, ...]
    discrete: bool


def policy_parts(algo: str, config) -> PolicyParts:
    """How agent ``algo`` acts under ``config``, apart from any state (see :func:`policy_fn`)."""
    import jax
    import jax.numpy as jnp

    from jaxrl import envs
    from jaxrl.agents import get_algorithm
    from jaxrl.core.normalize import normalize

    module = get_algorithm(algo)
    if algo not in ON_POLICY + OFF_POLICY:
        return _tabular_parts(config)
    env, env_params = envs.make(config.env_id)
    info = envs.action_info(env, env_params)
    obs_shape = tuple(
        jax.eval_shape(lambda k: env.reset(k, env_params)[0], jax.random.key(0)).shape
    )

    if algo in ON_POLICY:
        net = module.make_network(config, info)
        normalized = getattr(config, "normalize_obs", False)

        def params_of(state):
            stats = _obs_stats(state.env_state) if normalized else None
            return {"net": state.params, "obs_stats": stats}

        def dist(p, obs):
            if p["obs_stats"] is not None:
                obs = normalize(p["obs_stats"], obs, 1e-8, 10.0)
            if algo in ("ppo", "a2c"):
                return net.apply(p["net"], obs)[0]
            return net.distribution(p["net"], obs)

        def act(p, obs, key, deterministic):
            d = dist(p, obs)
            a = d.mode() if deterministic else d.sample(seed=key)
            return a if info.discrete else _to_env_bounds(a, info, rescale=False)

    elif algo in ("dqn", "pqn"):
        from jaxrl.core.exploration import epsilon_greedy

        net = module.make_network(config, info)

        def params_of(state):
            return {"net": state.learner.params if algo == "dqn" else state.params}

        def act(p, obs, key, deterministic):
            q = net.apply(p["net"], obs)
            eps = 0.0 if deterministic else config.eps_end
            return (
                jnp.argmax(q, -1).astype(jnp.int32)
                if deterministic
                else epsilon_greedy(key, q, eps)
            )

    elif algo == "sac":
        from jaxrl.nets.off_policy import squashed_mode

        actor, _ = module.make_networks(config, _unit_box(info))

        def act(p, obs, key, deterministic):
            d = actor.apply(p["net"], obs)
            if info.discrete:
                return d.mode() if deterministic else d.sample(seed=key)
            a = squashed_mode(d) if deterministic else d.sample(seed=key)
            return _to_env_bounds(a, info, rescale=True)

    else:  # td3, ddpg
        from jaxrl.core.exploration import gaussian_noise

        actor, _ = module.make_networks(config, _unit_box(info))

        def act(p, obs, key, deterministic):
            a = actor.apply(p["net"], obs)
            if not deterministic:
                a = gaussian_noise(key, a, config.exploration_noise, -1.0, 1.0)
            return _to_env_bounds(a, info, rescale=True)

    if algo in ("sac", "td3", "ddpg"):

        def params_of(state):
            return {"net": state.learner.actor_params}

    return PolicyParts(act, params_of, env, env_params, obs_shape, info.discrete)


def _unit_box(info):
    """The action info of off-policy actors: [−1, 1] (as ``off_policy.make_env`` gives)."""
    if info.discrete:
        return info
    unit = np.ones(info.shape, np.float32)
    return info._replace(low=-unit, high=unit)


def _tabular_parts(config) -> PolicyParts:
    import jax
    import jax.numpy as jnp

    from jaxrl.tabular.agents import q_estimate
    from jaxrl.tabular.envs import make_task
    from jaxrl.tabular.updates import policy_probs

    task = make_task(config.env)
    env_params = task.env_params
    if config.max_steps_per_episode:
        env_params = env_params.replace(max_steps_in_episode=config.max_steps_per_episode)
    mask = jnp.asarray(task.mdp.action_mask | task.mdp.terminal[:, None])

    def params_of(state):
        return {"q": q_estimate(state.tables, config.algorithm)}

    eps = getattr(config, "epsilon_end" if config.schedule == "linear" else "epsilon")
    temp = getattr(config, "temperature_end" if config.schedule == "linear" else "temperature")

    def act(p, obs, key, deterministic):
        s = jnp.asarray(obs, jnp.int32)
        q, m = p["q"][s], mask[s]
        if deterministic:
            return jnp.argmax(jnp.where(m, q, -jnp.inf), -1).astype(jnp.int32)
        probs = policy_probs(q, m, config.exploration, eps, temp)
        return jax.random.categorical(key, jnp.log(probs)).astype(jnp.int32)

    return PolicyParts(act, params_of, task.env, env_params, (), True)


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
            raise _usage(
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
            raise _usage(f"{run_dir}: no readable checkpoint among {steps} in {sub} ({why})")
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


def _max_steps(env_params) -> int:
    return int(getattr(env_params, "max_steps_in_episode", 10_000))


def run_episodes(policy: Policy, keys, episodes: int, deterministic: bool = True):
    """``episodes`` episodes per run, all runs in one compiled program.

    Each of the ``E`` environments runs until its first episode ends (at most the env's
    time limit), with the policy of its run.

    Args:
      policy: a :class:`Policy` (``params`` leaves ``[R, ...]``).
      keys: ``[R]`` PRNG keys.
      episodes: ``E``.
      deterministic: the mode of the policy (else samples from it).

    Returns:
      ``(returns [R, E], lengths [R, E])`` as NumPy arrays.
    """
    run = _episodes_program(policy.act, policy.env, policy.env_params, episodes, deterministic)
    rets, lens = run(policy.params, keys)
    return np.asarray(rets), np.asarray(lens)


def _episodes_program(act, env, env_params, episodes: int, deterministic: bool):
    """``jit(vmap(one_run))(params [R], keys [R]) -> (returns [R, E], lengths [R, E])``."""
    import jax
    import jax.numpy as jnp

    from jaxrl.envs import EpisodeStatistics, VecEnv

    env = EpisodeStatistics(VecEnv(env, episodes))
    limit = _max_steps(env_params)

    def one_run(params, key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)
        zeros = jnp.zeros((episodes,), jnp.float32)
        carry = (state, obs, key, zeros, zeros, jnp.zeros((episodes,), bool), jnp.int32(0))

        def cond(c):
            return jnp.logical_and(~jnp.all(c[5]), c[6] < limit)

        def body(c):
            state, obs, key, rets, lens, finished, t = c
            key, act_key, env_key = jax.random.split(key, 3)
            actions = act(params, obs, act_key, deterministic)
            obs, state, _, _, _, info = env.step(env_key, state, actions, env_params)
            new = jnp.logical_and(info["returned_episode"], ~finished)
            rets = jnp.where(new, info["episode_return"], rets)
            lens = jnp.where(new, info["episode_length"], lens)
            return state, obs, key, rets, lens, finished | new, t + 1

        _, _, _, rets, lens, finished, _ = jax.lax.while_loop(cond, body, carry)
        return jnp.where(finished, rets, jnp.nan), jnp.where(finished, lens, jnp.nan)

    return jax.jit(jax.vmap(one_run))


_EVALUATORS: dict[tuple, Callable] = {}


def _cached_evaluator(algo, config, episodes, deterministic, seed):
    """One compiled evaluation program per (algorithm, Config, episodes, mode, seed)."""
    from jaxrl._config import config_to_dict

    key = (algo, json.dumps(config_to_dict(config)), episodes, deterministic, seed)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = make_evaluator(algo, config, episodes, deterministic, seed)
    return _EVALUATORS[key]


def make_evaluator(
    algo: str, config, episodes: int = 10, deterministic: bool = True, seed: int = 0
) -> Callable[[Any, Any], tuple[np.ndarray, np.ndarray]]:
    """``evaluate_state(state, seeds) -> (returns [R, E], lengths [R, E])``, compiled once.

    For evaluation during training: call it on the runner's state (leaves ``[R, ...]``)
    between chunks; every call reuses the same program. ``seeds`` (one per run) and
    ``seed`` pick the evaluation episodes, as :func:`evaluate` does.
    """
    parts = policy_parts(algo, config)
    run = _episodes_program(parts.act, parts.env, parts.env_params, episodes, deterministic)

    def evaluate_state(state, seeds):
        rets, lens = run(parts.params_of(state), _eval_keys(seeds, seed))
        return np.asarray(rets), np.asarray(lens)

    return evaluate_state


class TrainingEvaluation:
    """``--eval-every K``: the deterministic policy of every run, evaluated between chunks.

    Call it after every chunk with ``(updates_done, state)``; each time the updates pass a
    multiple of ``every`` (and after the last update) it plays ``episodes`` episodes per
    run in one compiled program (:func:`make_evaluator`), appends one row per run to
    ``DIR/evals.csv`` (run, seed, update, env_steps, eval_return, eval_length) and redraws
    ``DIR/eval_curves.png`` (mean over runs, with the range of the runs).

    Args:
      out_dir: the run directory (None: keep the rows in ``self.rows`` only).
      algo, config: the algorithm and the Config of the compiled group.
      run_ids: the sweep's row index of each run of the group; seeds: their seeds.
      every: K, in updates; episodes: per run and evaluation.
      steps_per_update, num_updates: the agent's.
    """

    def __init__(
        self, out_dir, algo, config, run_ids, seeds, every, episodes, steps_per_update, num_updates
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise _usage(f"--eval-every must be an integer >= 1 (updates), got {every!r}")
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise _usage(f"--eval-episodes must be an integer >= 1, got {episodes!r}")
        self.out = None if out_dir is None else Path(out_dir)
        self.run_ids, self.seeds = [int(r) for r in run_ids], [int(s) for s in seeds]
        self.every, self.spu, self.total = every, steps_per_update, num_updates
        self.evaluate_state = _cached_evaluator(algo, config, episodes, True, 0)
        self.rows: list[dict] = []
        self.last = 0

    def __call__(self, done: int, state) -> None:
        import jax

        if done // self.every == self.last // self.every and done != self.total:
            return
        self.last = done
        n = len(self.seeds)
        state = jax.tree.map(lambda x: x[:n], state)  # drop the runs padded for devices
        rets, lens = self.evaluate_state(state, self.seeds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a run with no finished episode
            means, mean_lens = np.nanmean(rets, 1), np.nanmean(lens, 1)
        for r in range(n):
            self.rows.append(
                {
                    "run": self.run_ids[r],
                    "seed": self.seeds[r],
                    "update": done,
                    "env_steps": done * self.spu,
                    "eval_return": float(means[r]),
                    "eval_length": float(mean_lens[r]),
                }
            )
        if self.out is not None:
            self._write()

    def _write(self) -> None:
        import csv

        path = self.out / "evals.csv"
        keep = []
        if path.exists():  # rows of other groups, or of the run before a resume
            with open(path, newline="") as f:
                mine = {(r["run"], r["update"]) for r in self.rows}
                keep = [
                    r for r in csv.DictReader(f) if (int(r["run"]), int(r["update"])) not in mine
                ]
        rows = keep + self.rows
        rows.sort(key=lambda r: (int(r["run"]), int(r["update"])))
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            w.writeheader()
            w.writerows(rows)
        _plot_evals(self.out / "eval_curves.png", rows)


def _plot_evals(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted({int(r["env_steps"]) for r in rows})
    by_step = {
        s: [float(r["eval_return"]) for r in rows if int(r["env_steps"]) == s] for s in steps
    }
    mean = [np.nanmean(by_step[s]) for s in steps]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, mean, marker="o", label="mean over runs")
    ax.fill_between(
        steps, [np.nanmin(by_step[s]) for s in steps], [np.nanmax(by_step[s]) for s in steps],
        alpha=0.25, label="range of the runs",
    )  # fmt: skip
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic policy)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _eval_keys(seeds, eval_seed: int):
    import jax
    import jax.numpy as jnp

    base = jax.random.PRNGKey(eval_seed)
    return jnp.stack([jax.random.fold_in(base, 1_000_003 + int(s)) for s in seeds])


def evaluate(
    run_dir: str | Path,
    episodes: int = 10,
    deterministic: bool = True,
    seed: int = 0,
    write: bool = True,
    restored: RestoredRun | None = None,
) -> dict:
    """Evaluates every run of a run directory and writes ``eval.json`` there.

    Args:
      run_dir: a directory written by ``jaxrl train`` (config.json + checkpoints/).
      episodes: episodes per run (``E``).
      deterministic: act with the policy's mode (argmax / mean), else sample.
      seed: seed of the evaluation episodes.
      write: write ``RUN/eval.json``.
      restored: a :func:`restore_run` result to reuse.

    Returns:
      The content of eval.json: ``runs`` (per run: seed, configuration, returns, mean, IQM,
      CI) and ``over_runs`` (statistics of the per-run means over runs).
    """
    from jaxrl.run import rundir
    from jaxrl.run.stats import summarize

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise _usage(f"--episodes must be an integer >= 1, got {episodes!r}")
    restored = restored or restore_run(run_dir)
    runs, offset = [], 0
    for g, state in enumerate(restored.states):
        n = len(_leading(state))
        seeds = restored.seeds[offset : offset + n]
        evaluate_state = _cached_evaluator(
            restored.algo, restored.group_configs[g], episodes, deterministic, seed
        )
        rets, lens = evaluate_state(state, seeds)
        for r in range(n):
            stats = summarize(rets[r])
            runs.append(
                {
                    "seed": seeds[r],
                    "config": restored.labels[offset + r],
                    "checkpoint_updates": restored.updates_done[g],
                    "returns": [None if not np.isfinite(x) else float(x) for x in rets[r]],
                    "mean_length": float(np.nanmean(lens[r]))
                    if np.isfinite(lens[r]).any()
                    else None,
                    **{k: stats[k] for k in ("mean", "std", "iqm", "iqm_ci95", "mean_ci95")},
                }
            )
        offset += n
    means = [r["mean"] for r in runs if r["mean"] is not None]
    result = {
        "algo": restored.algo,
        "env": _env_of(restored.config),
        "episodes_per_run": episodes,
        "policy": "deterministic" if deterministic else "stochastic",
        "eval_seed": seed,
        "runs": runs,
        "over_runs": summarize(means),
        "over_runs_definition": "statistics over runs of each run's mean evaluation return",
        "machine": rundir.machine_info(),
    }
    if write:
        rundir.write_json(Path(run_dir) / "eval.json", result)
    return result


def _leading(state) -> list:
    import jax

    return range(jax.tree.leaves(state)[0].shape[0])


def format_table(result: dict) -> str:
    """A text table of an ``evaluate`` result: one row per run, then the aggregate."""
    lines = [
        f"{result['algo']} on {result['env']}: {result['episodes_per_run']} {result['policy']} "
        "episodes per run",
        f"{'seed':>6} {'config':<24} {'mean':>10} {'IQM':>10} {'min':>10} {'max':>10} "
        f"{'length':>8}",
    ]
    for r in result["runs"]:
        rets = np.array([np.nan if x is None else x for x in r["returns"]], float)
        cfg = ", ".join(f"{k}={v}" for k, v in r["config"].items()) or "-"

        def f(v):
            return "-" if v is None or not np.isfinite(v) else f"{v:.2f}"

        lo = np.nanmin(rets) if np.isfinite(rets).any() else None
        hi = np.nanmax(rets) if np.isfinite(rets).any() else None
        ml = r["mean_length"]
        lines.append(
            f"{r['seed']:>6} {cfg[:24]:<24} {f(r['mean']):>10} {f(r['iqm']):>10} {f(lo):>10} "
            f"{f(hi):>10} {'-' if ml is None else f'{ml:.1f}':>8}"
        )
    o = result["over_runs"]
    if o["n"]:
        ci = o["iqm_ci95"]
        lines.append(
            f"over {o['n']} runs: IQM {o['iqm']:.2f} (95% CI {ci[0]:.2f} to {ci[1]:.2f}), "
            f"mean {o['mean']:.2f} ± {o['std']:.2f}"
        )
    else:
        lines.append("no evaluation episode finished")
    return "\n".join(lines)


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
        raise _usage(f"load: {run_dir} has no run with seed {seed}; seeds: {restored.seeds}")
    r = restored.seeds.index(seed)
    offset = 0
    for g, policy in enumerate(restored.policies):
        n = len(_leading(restored.states[g]))
        if r < offset + n:
            params = jax.tree.map(lambda x: x[r - offset], policy.params)
            return LoadedPolicy(policy, params, restored.algo, _env_of(restored.config), seed)
        offset += n
    raise AssertionError("unreachable")


def cmd_eval(args) -> int:
    """``jaxrl eval``: evaluates, writes RUN/eval.json, prints a table (and a video)."""
    from jaxrl.cli import UsageError

    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.video is not None and args.video.suffix.lower() not in (".gif", ".mp4"):
        raise UsageError(f"--video {args.video}: the name must end in .gif or .mp4")
    try:
        restored = restore_run(args.run)
        result = evaluate(args.run, args.episodes, not args.stochastic, args.seed, True, restored)
        print(format_table(result))
        print(f"wrote {Path(args.run) / 'eval.json'}")
        if args.video is not None:
            from jaxrl.run.video import record_video

            rec = record_video(restored, args.video, not args.stochastic, args.seed)
            print(f"wrote {rec.path} ({rec.frames} frames)")
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    return 0

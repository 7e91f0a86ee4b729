"""The ``speed`` suite: steps per second of every algorithm, beside rejax 0.1.3 where it has one.

Three kinds of row, each measured in a fresh process so compile caches and
allocations never carry over from one measurement to the next:

* ``algo``: every jaxrl algorithm at fixed settings (below), one seed; PPO also 8
  seeds under one vmap. PPO, DQN, SAC and TD3 are measured beside rejax 0.1.3 (in
  benchmarks/.venv-rejax with gymnax 0.0.9, made by ``benchmarks/ppo_speed.py`` on
  first use) at the same settings, jaxrl and rejax alternating within each round, so
  the ratio comes from one session. rejax's periodic evaluation is replaced by a
  no-op so both sides time training only.
* ``env_limit``: the environment alone (random actions inside one ``lax.scan``) at
  the same environment and environment count: the ceiling for that part.
* ``vmap``: 1, 8 and 32 seeds of PPO, DQN and SAC under one ``vmap``.
* ``cli``: what a user gets: ``jaxrl train ALGO --env ENV --total-steps N`` at the CLI's
  defaults (every Config default, e.g. SAC/TD3/DDPG at 256-256 networks, and the default
  4 seeds, devices and chunks), beside the same 4 seeds run one after another
  (``--seeds 1 --seed-offset i``); steps/s from each run directory's summary.json (run
  time, compile excluded), summed over the seeds.

Compile time (``jit(...).lower(...).compile()``) and run time (the compiled call,
until the outputs are on the host) are measured apart; steps/s = seeds × steps / run s.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any, NamedTuple

from benchmarks.harness.common import REPO_DIR, row_provenance, select_names

__all__ = ["SpeedSpec", "SPECS", "env_throughput", "measure_cli", "measure_jaxrl", "run_suite"]


class SpeedSpec(NamedTuple):
    """An algorithm at fixed settings, and rejax's equivalent where it has one."""

    algo: str
    env_id: str
    config: dict[str, Any]  # jaxrl Config fields besides env_id (total_timesteps included)
    quick_steps: int  # total_timesteps under --quick
    rejax: dict[str, Any] | None  # rejax create() kwargs besides env/total_timesteps
    env_num_envs: int  # environments stepped in parallel (for the env_limit row)


def _offpolicy(name: str) -> dict[str, Any]:
    """Fields of the off-policy helper's rejax-default configs (benchmarks/offpolicy_speed.py)."""
    import dataclasses

    from benchmarks import offpolicy_speed

    cfg = {"dqn": offpolicy_speed.DQN_REJAX, "sac": offpolicy_speed.SAC_REJAX}[name]
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "env_id"}


def _specs() -> list[SpeedSpec]:
    from benchmarks.ppo_speed import SETTINGS as PPO  # the lead's PPO settings (TARGETS.md)

    mlp = {"hidden_sizes": (64, 64), "activation": "tanh"}
    on_policy = {"num_envs": 16, "total_timesteps": 500_000, **mlp}
    # TD3 at rejax 0.1.3's defaults: 1 env, replay 131072, batch 256, 2048 warm-up
    # steps, Polyak τ = 0.01, exploration noise 0.3, policy delay 2, MLP 64-64 swish,
    # Adam 3e-4; DDPG the same without delay and target smoothing.
    td3 = dict(
        total_timesteps=20_000, num_envs=1, buffer_size=131_072, batch_size=256,
        learning_starts=2_048, hidden_sizes=(64, 64), activation="silu", actor_lr=3e-4,
        critic_lr=3e-4, tau=0.01, exploration_noise=0.3, train_frequency=1, gradient_steps=1,
    )  # fmt: skip
    ddpg = {k: v for k, v in td3.items()}
    rejax_ppo = dict(
        num_envs=PPO["num_envs"], num_steps=PPO["num_steps"], num_epochs=PPO["num_epochs"],
        num_minibatches=PPO["num_minibatches"],
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": [64, 64]},
    )  # fmt: skip
    return [
        SpeedSpec("ppo", "CartPole-v1", {**PPO, **mlp}, 32_768, rejax_ppo, 16),
        SpeedSpec("a2c", "CartPole-v1", {**on_policy, "num_steps": 5}, 20_000, None, 16),
        SpeedSpec("trpo", "CartPole-v1", {**on_policy, "num_steps": 128}, 32_768, None, 16),
        SpeedSpec("reinforce", "CartPole-v1", {**on_policy, "num_steps": 128}, 32_768, None, 16),
        SpeedSpec("dqn", "CartPole-v1", _offpolicy("dqn"), 5_000, {}, 1),
        SpeedSpec("sac", "Pendulum-v1", _offpolicy("sac"), 3_000, {}, 1),
        SpeedSpec("td3", "Pendulum-v1", {**td3, "policy_delay": 2}, 3_000, {}, 1),
        SpeedSpec("ddpg", "Pendulum-v1", ddpg, 3_000, None, 1),
    ]


SPECS: list[SpeedSpec] = _specs()
VMAP_SEEDS = (1, 8, 32)
VMAP_STEPS = {"ppo": (500_000, 16_384), "dqn": (20_000, 3_000), "sac": (5_000, 3_000)}
# The user-default rows: environment and (full, --quick) --total-steps per algorithm.
CLI_RUNS = {
    "ppo": ("CartPole-v1", 500_000, 16_384),
    "dqn": ("CartPole-v1", 20_000, 3_000),
    "sac": ("Pendulum-v1", 5_000, 2_000),
    "td3": ("Pendulum-v1", 5_000, 2_000),
    "ddpg": ("Pendulum-v1", 5_000, 2_000),
}
CLI_SEEDS = 4  # the CLI's default --seeds


def _spec(algo: str) -> SpeedSpec:
    return next(s for s in SPECS if s.algo == algo)


def _fields(spec: SpeedSpec, steps: int) -> dict[str, Any]:
    fields = {**spec.config, "total_timesteps": steps}
    if "learning_starts" in fields:  # short runs still learn for most of their steps
        fields["learning_starts"] = min(fields["learning_starts"], steps // 4)
    return fields


def _config(spec: SpeedSpec, steps: int):
    from jaxrl.agents import get_algorithm

    module = get_algorithm(spec.algo)
    return module, module.Config(env_id=spec.env_id, **_fields(spec, steps))


def measure_jaxrl(algo: str, steps: int, seeds: int) -> dict[str, Any]:
    """Compile and run seconds of ``seeds`` seeds of ``algo`` at its fixed settings."""
    import jax

    from benchmarks.harness.common import time_train

    module, cfg = _config(_spec(algo), steps)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    metrics, compile_s, run_s = time_train(module, cfg, keys)
    ret = metrics["episode_return"][..., -max(1, metrics["episode_return"].shape[-1] // 20) :]
    finite = ret[jax.numpy.isfinite(ret)]
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "final_return": float(finite.mean()) if finite.size else None,
    }


def measure_cli(algo: str, steps: int, one_by_one: bool) -> dict[str, Any]:
    """``jaxrl train algo`` at the CLI defaults: 4 seeds in one command, or one command per
    seed. Returns compile and run seconds (summed over commands) and steps/s over the seeds."""
    import tempfile
    from pathlib import Path

    env_id = CLI_RUNS[algo][0]
    base = [sys.executable, "-m", "jaxrl.cli", "train", algo, "--env", env_id]
    base += ["--total-steps", str(steps), "--no-progress", "--no-checkpoint"]
    commands = (
        [[*base, "--seeds", "1", "--seed-offset", str(i)] for i in range(CLI_SEEDS)]
        if one_by_one
        else [[*base, "--seeds", str(CLI_SEEDS)]]
    )
    compile_s = run_s = 0.0
    done_steps = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, command in enumerate(commands):
            out = Path(tmp) / f"run{i}"
            done = subprocess.run(
                [*command, "--out", str(out)], capture_output=True, text=True, cwd=REPO_DIR
            )
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command[3:])} failed:\n{done.stderr[-3000:]}")
            timing = json.loads((out / "summary.json").read_text())["timing"]
            compile_s += timing["compile_s"]
            run_s += timing["run_s"]
            done_steps += timing["env_steps_per_run"] * timing["runs"]
    return {
        "name": f"cli/{algo}/{'one-by-one' if one_by_one else 'seeds'}={CLI_SEEDS}",
        "kind": "cli",
        "label": "user defaults (jaxrl train, CLI defaults)",
        "algo": algo,
        "impl": "jaxrl-cli",
        "env_id": env_id,
        "seeds": CLI_SEEDS,
        "one_by_one": one_by_one,
        "total_timesteps": steps,
        "compile_s": compile_s,
        "run_s": run_s,
        "steps_per_s": done_steps / run_s,
    }


def env_throughput(env_id: str, num_envs: int, steps: int) -> dict[str, Any]:
    """``steps`` environment steps (all envs together) with random actions in one ``lax.scan``.

    Returns ``random_policy_return``'s dict (``compile_s``, ``run_s``, ``steps``, ...).
    """
    from benchmarks.harness.returns import random_policy_return

    return random_policy_return(env_id, num_envs, max(1, steps // num_envs))


REJAX_CODE = r"""
import json, sys, time
import jax, jax.numpy as jnp
import rejax
spec = json.loads(sys.argv[1])
cls = rejax.get_algo(spec["algo"])
steps = spec["steps"]
algo = cls.create(env=spec["env_id"], total_timesteps=steps, eval_freq=steps,
                  skip_initial_evaluation=True, **spec["kwargs"])
algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
seeds = spec["seeds"]
keys = jax.random.split(jax.random.PRNGKey(0), seeds)
if seeds == 1:  # one seed: rejax's own train, as on the jaxrl side (no vmap of size 1)
    keys = keys[0]
    train = jax.jit(cls.train)
else:
    train = jax.jit(jax.vmap(cls.train, in_axes=(None, 0)))
t0 = time.perf_counter(); compiled = train.lower(algo, keys).compile()
compile_s = time.perf_counter() - t0
t0 = time.perf_counter(); jax.block_until_ready(compiled(algo, keys))
run_s = time.perf_counter() - t0
print(json.dumps({"compile_s": compile_s, "run_s": run_s, "final_return": None}))
"""


def _subprocess(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_DIR)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(impl: str, algo: str, steps: int, seeds: int) -> dict[str, Any]:
    spec = _spec(algo)
    if impl == "rejax":
        from benchmarks.ppo_speed import ensure_rejax  # the lead's rejax venv maker

        kwargs = dict(spec.rejax)
        fields = _fields(spec, steps)
        if "learning_starts" in fields:  # the same warm-up on both sides
            kwargs["fill_buffer"] = fields["learning_starts"]
        payload = {"algo": algo, "env_id": spec.env_id, "steps": steps, "seeds": seeds,
                   "kwargs": kwargs}  # fmt: skip
        result = _subprocess([str(ensure_rejax()), "-c", REJAX_CODE, json.dumps(payload)])
    else:
        payload = {"measure": "jaxrl", "algo": algo, "steps": steps, "seeds": seeds}
        result = _subprocess(
            [sys.executable, "-m", "benchmarks.harness.speed", json.dumps(payload)]
        )
    return {
        "name": f"algo/{algo}/{impl}/seeds={seeds}",
        "kind": "algo",
        "algo": algo,
        "impl": impl,
        "env_id": spec.env_id,
        "seeds": seeds,
        "total_timesteps": steps,
        **result,
        "steps_per_s": seeds * steps / result["run_s"],
    }


def run_suite(
    quick: bool,
    names: list[str] | None = None,
    rounds: int | None = None,
    with_rejax: bool = True,
    log=print,
    on_row=None,
) -> tuple[list[dict], dict[str, Any]]:
    """Runs the selected algorithms (all by default) ``rounds`` times, alternating impls.

    Names ``cli/ALGO`` (or ``cli`` for every one) select only the user-defaults rows of those
    algorithms, e.g. ``--only cli/td3 cli/ddpg``: 4 seeds in one ``jaxrl train`` command
    beside 4 single-seed commands, without the rejax-settings, env-limit and vmap rows.
    """
    cli_names = [n for n in names or [] if n == "cli" or n.startswith("cli/")]
    if cli_names and len(cli_names) == len(names):
        return _run_cli_rows(quick, cli_names, log, on_row)
    algos = select_names([s.algo for s in SPECS], names)
    rounds = rounds or (1 if quick else 3)
    rows: list[dict] = []
    settings = {"settings": {s.algo: _settings(s, quick) for s in SPECS if s.algo in algos}}

    def record(row: dict, r: int) -> None:
        row = {
            **row,
            "name": f"{row['name']}/round={r}",
            "round": r,
            "provenance": row_provenance(),
        }
        rows.append(row)
        if on_row is not None:
            on_row(row, settings)
        log(
            f"[speed] {row['name']}: compile {row.get('compile_s', 0):.1f} s, "
            f"run {row.get('run_s', row.get('wall_s', 0)):.2f} s, "
            f"{row.get('steps_per_s', 0):,.0f} steps/s"
        )

    for r in range(rounds):
        for algo in algos:
            spec = _spec(algo)
            steps = spec.quick_steps if quick else spec.config["total_timesteps"]
            impls = ["jaxrl"] + (["rejax"] if with_rejax and spec.rejax is not None else [])
            if r % 2:  # alternate which side goes first
                impls.reverse()
            seed_counts = (1, 8) if algo == "ppo" else (1,)
            for seeds in seed_counts:
                for impl in impls:
                    record(_measure(impl, algo, steps, seeds), r)
    # The environment alone, at each algorithm's environment and environment count.
    for env_id, num_envs in sorted({(_spec(a).env_id, _spec(a).env_num_envs) for a in algos}):
        steps = 16_384 if quick else (500_000 if num_envs > 1 else 100_000)
        payload = {"measure": "env", "env_id": env_id, "num_envs": num_envs, "steps": steps}
        res = _subprocess([sys.executable, "-m", "benchmarks.harness.speed", json.dumps(payload)])
        record(
            {
                "name": f"env_limit/{env_id}/envs={num_envs}",
                "kind": "env_limit",
                "env_id": env_id,
                "num_envs": num_envs,
                "total_timesteps": res["steps"],
                "run_s": res["run_s"],
                "compile_s": res["compile_s"],
                "steps_per_s": res["steps"] / res["run_s"],
            },
            0,
        )
    # What a user gets: the CLI at its defaults, 4 seeds at once and one after another.
    for algo in [a for a in algos if a in CLI_RUNS]:
        _, full, short = CLI_RUNS[algo]
        for one_by_one in (False, True):
            record(measure_cli(algo, short if quick else full, one_by_one), 0)
    # vmap scaling.
    for algo in [a for a in algos if a in VMAP_STEPS]:
        full, short = VMAP_STEPS[algo]
        for seeds in VMAP_SEEDS if not quick else (1, 2):
            row = _measure("jaxrl", algo, short if quick else full, seeds)
            row.update(name=f"vmap/{algo}/seeds={seeds}", kind="vmap")
            record(row, 0)
    return rows, settings


def _run_cli_rows(quick: bool, cli_names: list[str], log, on_row) -> tuple[list[dict], dict]:
    """Only the ``cli`` rows of the algorithms named ``cli/ALGO`` (``cli``: all of them)."""
    wanted = [n.removeprefix("cli").strip("/") for n in cli_names]
    algos = select_names(list(CLI_RUNS), [w for w in wanted if w] or None)
    settings: dict[str, Any] = {"settings": {}}
    rows: list[dict] = []
    for algo in algos:
        _, full, short = CLI_RUNS[algo]
        for one_by_one in (False, True):
            row = measure_cli(algo, short if quick else full, one_by_one)
            row = {**row, "name": f"{row['name']}/round=0", "round": 0}
            row["provenance"] = row_provenance()
            rows.append(row)
            if on_row is not None:
                on_row(row, settings)
            rate = f"{row['steps_per_s']:,.0f} steps/s"
            log(f"[speed] {row['name']}: run {row['run_s']:.2f} s, {rate}")
    return rows, settings


def _settings(spec: SpeedSpec, quick: bool) -> dict[str, Any]:
    steps = spec.quick_steps if quick else spec.config["total_timesteps"]
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.config.items()}
    cfg = {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in cfg.items()}
    return {"env_id": spec.env_id, "jaxrl": {**cfg, "total_timesteps": steps},
            "rejax": spec.rejax}  # fmt: skip


def _child(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["measure"] == "jaxrl":
        return measure_jaxrl(payload["algo"], payload["steps"], payload["seeds"])
    return env_throughput(payload["env_id"], payload["num_envs"], payload["steps"])


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))

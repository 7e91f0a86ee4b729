"""PPO speed on CartPole-v1 beside rejax 0.1.3, measured in one session, alternating runs.

    python benchmarks/ppo_speed.py                 # jaxrl and rejax, 3 alternating rounds
    python benchmarks/ppo_speed.py --impl jaxrl    # one measurement, JSON on stdout

Settings (TARGETS.md): 500k steps, 16 envs × 128 steps, 4 epochs, 4 minibatches,
(64, 64) tanh MLPs for actor and critic, 1 seed and 8 seeds under one vmap.
rejax runs from its own virtual environment (benchmarks/.venv-rejax: rejax 0.1.3
with gymnax 0.0.9), created on first use; its periodic evaluation is switched off
(eval_freq = total steps, no initial evaluation) so both measure training only.
Compile and run time are measured apart (``jit(...).lower(...).compile()``, then
the compiled call). The raw environment throughput of the same environment and
env count (random actions inside one ``lax.scan``) is the limit for the
environment part.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REJAX_VENV = HERE / ".venv-rejax"
SETTINGS = dict(
    total_timesteps=500_000, num_envs=16, num_steps=128, num_epochs=4, num_minibatches=4
)


def measure_jaxrl(seeds: int, epochs: int = SETTINGS["num_epochs"]) -> dict:
    import jax

    from jaxrl.agents import ppo

    settings = {**SETTINGS, "num_epochs": epochs}
    cfg = ppo.Config(env_id="CartPole-v1", hidden_sizes=(64, 64), activation="tanh", **settings)
    train = ppo.make_train(cfg)
    fn = jax.jit(jax.vmap(train)) if seeds > 1 else jax.jit(train)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds) if seeds > 1 else jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, metrics = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    ret = metrics["episode_return"]
    return {
        "impl": "jaxrl",
        "seeds": seeds,
        "num_epochs": epochs,
        "compile_s": compile_s,
        "run_s": run_s,
        "final_return": float(jax.numpy.nanmean(ret[..., -10:])),
    }


REJAX_CODE = """
import json, sys, time, jax
from rejax import PPO
seeds = int(sys.argv[1])
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
algo = PPO.create(env="CartPole-v1", total_timesteps=500_000, num_envs=16, num_steps=128,
                  num_epochs=epochs, num_minibatches=4, eval_freq=500_000,
                  skip_initial_evaluation=True,
                  agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)})
train = jax.jit(jax.vmap(PPO.train, in_axes=(None, 0))) if seeds > 1 else jax.jit(PPO.train)
keys = jax.random.split(jax.random.PRNGKey(0), seeds) if seeds > 1 else jax.random.PRNGKey(0)
t0 = time.perf_counter(); compiled = train.lower(algo, keys).compile()
compile_s = time.perf_counter() - t0
t0 = time.perf_counter(); out = jax.block_until_ready(compiled(algo, keys))
run_s = time.perf_counter() - t0
print(json.dumps({"impl": "rejax", "seeds": seeds, "num_epochs": epochs, "compile_s": compile_s,
                  "run_s": run_s}))
"""


def measure_env_limit(num_envs: int = 16, steps: int = 500_000) -> dict:
    import jax

    from jaxrl import envs

    env, params = envs.make("CartPole-v1")
    venv = envs.VecEnv(env, num_envs)

    def run(key):
        obs, state = venv.reset(key, params)

        def step(carry, k):
            state, total = carry
            a_key, s_key = jax.random.split(k)
            actions = jax.random.randint(a_key, (num_envs,), 0, 2)
            _, state, reward, _, _, _ = venv.step(s_key, state, actions, params)
            return (state, total + reward.sum()), None

        (_, total), _ = jax.lax.scan(step, (state, 0.0), jax.random.split(key, steps // num_envs))
        return total

    compiled = jax.jit(run).lower(jax.random.PRNGKey(0)).compile()
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(0)))
    run_s = time.perf_counter() - t0
    return {"impl": "env-limit", "num_envs": num_envs, "run_s": run_s, "steps_per_s": steps / run_s}


def ensure_rejax() -> Path:
    python = REJAX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(REJAX_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "jax[cpu]==0.10.2",
                "rejax==0.1.3",
                "gymnax<1.0",
            ],
            check=True,
        )
    return python


def run_one(impl: str, seeds: int, epochs: int = SETTINGS["num_epochs"]) -> dict:
    if impl == "rejax":
        cmd = [str(ensure_rejax()), "-c", REJAX_CODE, str(seeds), str(epochs)]
    else:
        cmd = [sys.executable, __file__, "--impl", impl, "--seeds", str(seeds)]
        cmd += ["--epochs", str(epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", choices=["jaxrl", "env-limit"], default=None)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=SETTINGS["num_epochs"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "ppo_speed.json")
    args = p.parse_args()
    if args.impl == "jaxrl":
        print(json.dumps(measure_jaxrl(args.seeds, args.epochs)))
        return
    if args.impl == "env-limit":
        print(json.dumps(measure_env_limit()))
        return

    rows = [run_one("env-limit", 1)]
    for r in range(args.rounds):
        for seeds in (1, 8):
            for impl in ("jaxrl", "rejax"):
                row = {**run_one(impl, seeds), "round": r}
                rows.append(row)
                print(json.dumps(row), flush=True)
    from jaxrl.run.rundir import machine_info, write_json

    write_json(args.out, {"settings": SETTINGS, "rows": rows, "machine": machine_info()})
    print(report(rows))


def report(rows) -> str:
    import numpy as np

    def med(impl, seeds, key):
        v = [r[key] for r in rows if r["impl"] == impl and r.get("seeds") == seeds]
        return float(np.median(v)) if v else float("nan")

    lines = [
        "| run | jaxrl compile s | jaxrl run s | rejax compile s | rejax run s | run ratio |",
        "|---|---|---|---|---|---|",
    ]
    for seeds in (1, 8):
        j, x = med("jaxrl", seeds, "run_s"), med("rejax", seeds, "run_s")
        lines.append(
            f"| {seeds} seed(s) | {med('jaxrl', seeds, 'compile_s'):.2f} | {j:.2f} | "
            f"{med('rejax', seeds, 'compile_s'):.2f} | {x:.2f} | {j / x:.2f} |"
        )
    scale_j = med("jaxrl", 8, "run_s") / med("jaxrl", 1, "run_s")
    scale_r = med("rejax", 8, "run_s") / med("rejax", 1, "run_s")
    lines.append(f"\n8 seeds / 1 seed run time: jaxrl {scale_j:.2f}x, rejax {scale_r:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

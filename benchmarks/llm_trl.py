"""GRPO and DPO step time: jaxrl beside TRL's GRPOTrainer and DPOTrainer on one CPU.

Both sides train the same random Llama directory (written once by
``jaxrl.llm.testing.tiny_model_dir``: 4 layers, width 256, 4 heads / 2 KV heads, MLP
768, the tiny BPE tokenizer with its chat template) on the same JSONL files, in float32,
each in its own subprocess with the same CPU cores (``os.sched_setaffinity``) and thread
count (``torch.set_num_threads``; XLA sizes its pool from the cores it may use):

- GRPO: ``B`` prompts per step (rows of ``prompts.jsonl``: ``prompt``/``answer``; the
  prompt goes through the chat template), ``G`` completions each, ``C`` new tokens with
  EOS never ending a row (jaxrl: a stop id no token has; TRL: ``min_new_tokens = C``), one
  update epoch of one minibatch, KL coefficient 0.04 to the frozen reference, the
  per-sequence token-mean loss, group-normalised advantages. Reward (host side on both):
  the share of distinct characters in the decoded completion.
- DPO: ``pairs.jsonl`` (``prompt``/``chosen``/``rejected`` digit strings of one token
  length each), sigmoid loss, β = 0.1, a batch of pairs per step; the reference log-probs
  are computed once before training on both sides (jaxrl always does; TRL with
  ``precompute_ref_log_probs=True``), so a step is the policy's forward and backward pass
  on chosen and rejected rows. A TRL row with the reference run every step is added.

jaxrl: compile time (lower + compile of the whole step) is reported apart; the step time
is the median over ``--steps`` calls of the one compiled program (``grpo_step_jit``, or
the jitted DPO update) after ``--warmup`` calls, and the GRPO split into generation,
reference, reward (+ advantages) and update comes from ``grpo_step_timed`` (each stage
compiled alone) over the same number of steps. TRL: per-step times from a
``TrainerCallback`` (``benchmarks/trl_side.py``), medians after the same warm-up. Every
time has its process CPU time beside it: on a shared machine that is steadier.

Run: ``python benchmarks/llm_trl.py [--threads N]`` (needs ``--trl-python``, default
``/work/trl-venv/bin/python``: a venv with ``torch==2.13.0+cpu trl transformers datasets``;
about 25 minutes on 2 loaded cores). Each run is stored in ``benchmarks/results/llm_trl.json``
under its thread count (a rerun replaces only its own), and RESULTS.md's ``## llm_trl``
section is rendered again from that file (``--report`` does only that, e.g. after editing the
file's hand-measured ``notes``). ``--quick`` runs a 2-layer width-32 model for one step each
(a smoke test; nothing written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = dict(d_model=256, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=64, d_ff=768)
E2E_SIZES = dict(d_model=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, d_ff=256)
MODELS = {"bench": SIZES, "e2e": E2E_SIZES}  # e2e: examples/llm_end_to_end.py's shape
QUICK_SIZES = dict(d_model=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8, d_ff=64)
SETTINGS = dict(
    prompts=4, group=8, completion_len=64, prompt_digits=8, kl_coef=0.04, learning_rate=1e-5,
    dpo_batch=8, dpo_completion_digits=31, rows=256, steps=5, warmup=2, seed=0,
)  # fmt: skip
QUICK_SETTINGS = {**SETTINGS, "completion_len": 8, "dpo_completion_digits": 7, "rows": 16,
                  "steps": 1, "warmup": 1}  # fmt: skip


def distinct_char_share(text: str) -> float:
    """The benchmark's reward: distinct characters / characters (0 for empty text).

    The same formula as ``trl_side.distinct_char_share`` (that file cannot import jaxrl).
    """
    return len(set(text)) / len(text) if text else 0.0


def write_data(directory: str, rows: int, prompt_digits: int, completion_digits: int, seed: int):
    """Writes ``prompts.jsonl`` (prompt/answer) and ``pairs.jsonl`` (prompt/chosen/rejected).

    Digits are single tokens of the tiny BPE tokenizer, so every prompt and every
    completion has the same token length (equal shapes on both sides, no padding).
    """
    rng = np.random.default_rng(seed)

    def digits(n):
        return "".join(str(d) for d in rng.integers(0, 10, n))

    with open(os.path.join(directory, "prompts.jsonl"), "w") as f:
        for _ in range(rows):
            q = digits(prompt_digits)
            f.write(json.dumps({"prompt": q, "answer": q[::-1]}) + "\n")
    with open(os.path.join(directory, "pairs.jsonl"), "w") as f:
        for _ in range(rows):
            row = {"prompt": digits(prompt_digits), "chosen": digits(completion_digits)}
            row["rejected"] = digits(completion_digits)
            f.write(json.dumps(row) + "\n")


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- jaxrl side (child process)


def _bench_task(model_dir: str, rows: list[dict], completion_len: int):
    """A ``Task`` over the prompts of ``rows``: chat-templated prompts, a host reward."""
    import jax
    import jax.numpy as jnp

    from jaxrl.llm import Prompts, Task, load_tokenizer

    tok = load_tokenizer(model_dir)
    ids = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=True)
           for r in rows]  # fmt: skip
    width = max(len(i) for i in ids)
    tokens = np.full((len(ids), width), tok.pad_id, np.int32)
    mask = np.zeros_like(tokens)
    for n, row in enumerate(ids):
        tokens[n, width - len(row) :], mask[n, width - len(row) :] = row, 1

    def host_reward(completions, completion_mask):
        # pure_callback may pass jax Arrays: one host copy, not a device slice per row
        completions, completion_mask = np.asarray(completions), np.asarray(completion_mask)
        texts = [tok.decode(t[m > 0]) for t, m in zip(completions, completion_mask, strict=True)]
        return np.asarray([distinct_char_share(t) for t in texts], np.float32)

    @dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a static jit field
    class JsonlPromptTask(Task):
        """The benchmark's prompts; ``score`` decodes on the host (``jax.pure_callback``)."""

        eos_ids: tuple = (-1,)  # no token has this id: every completion runs C tokens
        pad_id: int = tok.pad_id

        @property
        def prompt_len(self):
            return width

        @property
        def completion_len(self):
            return completion_len

        def prompts(self, split, n, seed=0):
            k = min(n, len(ids))
            return Prompts(tokens[:k], mask[:k], np.zeros((k, 1), np.int32),
                           np.zeros((k, 1), np.int32))  # fmt: skip

        def score(self, prompts, completion_tokens, completion_mask):
            out = jax.ShapeDtypeStruct((completion_tokens.shape[0],), jnp.float32)
            return jax.pure_callback(host_reward, out, completion_tokens, completion_mask)

    return JsonlPromptTask(), tok


def _timed_steps(fn, state, batches, warmup):
    """Runs ``state = fn(state, *batch)`` per batch; wall and CPU seconds after the warm-up."""
    import jax

    walls, cpus, outs = [], [], []
    for i, batch in enumerate(batches):
        t0, c0 = time.perf_counter(), time.process_time()
        state, out = fn(state, *batch)
        jax.block_until_ready((state, out))
        if i >= warmup:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            outs.append(out)
    return state, walls, cpus, outs


def jaxrl_grpo(args) -> dict:
    """GRPO step time: the fused step, then the per-stage split (``grpo_step_timed``)."""
    import jax

    from jaxrl.llm import (
        GenerationConfig,
        GRPOConfig,
        grpo_step_jit,
        grpo_step_timed,
        load_pretrained,
        make_grpo_roles,
        resolve_model,
    )

    s = args.settings
    rows = _read_jsonl(os.path.join(args.data, "prompts.jsonl"))
    task, tok = _bench_task(args.model, rows, s["completion_len"])
    model_config, params = load_pretrained(args.model)
    config = GRPOConfig(
        num_prompts=s["prompts"], group_size=s["group"], max_new_tokens=s["completion_len"],
        num_epochs=1, num_minibatches=1, warmup_steps=0, kl_coef=s["kl_coef"],
        learning_rate=s["learning_rate"], temperature=1.0,
    )  # fmt: skip
    roles = make_grpo_roles(config, resolve_model((params, model_config)), task)
    # the task's stop id (-1) never occurs, so every completion runs the full C tokens
    gen = GenerationConfig(max_new_tokens=s["completion_len"], eos_id=task.eos_ids,
                           pad_id=task.pad_id)  # fmt: skip
    roles = roles._replace(actor=roles.actor.replace(generation=gen))
    # Committed device arrays from the start: a jitted stage first called on host or
    # uncommitted inputs compiles again when its own (committed) outputs come back.
    roles = jax.device_put(roles, jax.devices()[0])
    data = task.prompts("train", len(rows))
    b, n = s["prompts"], len(rows)
    key = jax.random.PRNGKey(s["seed"])
    batches = []
    for t in range(s["warmup"] + s["steps"]):
        idx = np.arange(t * b, (t + 1) * b) % n
        prompts = jax.device_put(jax.tree_util.tree_map(lambda x: x[idx], data), jax.devices()[0])
        batches.append((prompts, jax.random.fold_in(key, t)))

    t0 = time.perf_counter()
    compiled = grpo_step_jit.lower(roles, *batches[0]).compile()
    compile_s = time.perf_counter() - t0
    _, walls, cpus, outs = _timed_steps(compiled, roles, batches, s["warmup"])
    metrics = jax.device_get(outs[-1])
    # the split: each stage compiled alone (first calls compile; they are the warm-up)
    stage_times = []

    def timed(r, prompts, k):
        r, m = grpo_step_timed(r, prompts, k)
        stage_times.append({k[5:]: float(v) for k, v in m.items() if k.startswith("time_")})
        return r, m

    _, split_walls, split_cpus, _ = _timed_steps(timed, roles, batches, s["warmup"])
    stage_times = stage_times[s["warmup"] :]
    stages = {k: statistics.median(t[k] for t in stage_times) for k in stage_times[0]}
    return {
        "impl": "jaxrl",
        "algo": "grpo",
        "compile_s": compile_s,
        "median": {
            "step_s": statistics.median(walls),
            "step_cpu_s": statistics.median(cpus),
            "split_step_s": statistics.median(split_walls),
            "split_step_cpu_s": statistics.median(split_cpus),
            "generation": stages["generate_sequences"],
            "reference": stages["compute_ref_log_prob"],
            "reward": stages["compute_reward"] + stages["compute_advantages"],
            "update": stages["update_actor"],
        },
        "per_step": [{"step_s": w, "step_cpu_s": c} for w, c in zip(walls, cpus, strict=True)],
        "stages_per_step": stage_times,
        "shapes": {"prompt_len": [task.prompt_len],
                   "sequence_shape": [b * s["group"], task.prompt_len + s["completion_len"]]},
        "last_metrics": {k: float(metrics[k]) for k in ("reward_mean", "completion_length")},
    }  # fmt: skip


def _pairs(model_dir: str, rows: list[dict]):
    """``PreferencePairs`` tokenised the way TRL tokenises string rows: the prompt with the
    tokenizer's special tokens (BOS), each completion followed by the EOS token."""
    from jaxrl.llm import PreferencePairs, load_tokenizer

    tok = load_tokenizer(model_dir)
    eos = tok.token_id(tok.special_tokens["eos_token"])
    prompts = [tok.encode(r["prompt"]) for r in rows]
    chosen = [tok.encode(r["chosen"], add_special_tokens=False) + [eos] for r in rows]
    rejected = [tok.encode(r["rejected"], add_special_tokens=False) + [eos] for r in rows]

    def pack(seqs, left):
        width = max(len(x) for x in seqs)
        t = np.full((len(seqs), width), tok.pad_id, np.int32)
        m = np.zeros_like(t)
        for i, x in enumerate(seqs):
            sl = slice(width - len(x), width) if left else slice(0, len(x))
            t[i, sl], m[i, sl] = x, 1
        return t, m

    zeros = np.zeros(len(rows), np.float32)
    return PreferencePairs(*pack(prompts, True), *pack(chosen, False), *pack(rejected, False),
                           zeros, zeros)  # fmt: skip


def jaxrl_dpo(args) -> dict:
    """DPO step time: the jitted update on batches of pairs (reference log-probs precomputed)."""
    import jax
    import jax.numpy as jnp

    from jaxrl.llm import DPOConfig, TrainState, load_pretrained, make_dpo_batch, make_dpo_update
    from jaxrl.llm.training import make_optimizer

    s = args.settings
    rows = _read_jsonl(os.path.join(args.data, "pairs.jsonl"))
    pairs = _pairs(args.model, rows)
    model_config, params = load_pretrained(args.model)
    steps = s["warmup"] + s["steps"]
    config = DPOConfig(model=model_config, batch_size=s["dpo_batch"], beta=0.1,
                       learning_rate=s["learning_rate"], num_steps=steps, eval_every=steps,
                       warmup_steps=0)  # fmt: skip
    t0 = time.perf_counter()
    data = jax.block_until_ready(make_dpo_batch(params, model_config, pairs))
    ref_s = time.perf_counter() - t0
    optimizer = make_optimizer(config.learning_rate, steps, 0, 0.0, 1.0)
    state = TrainState(params, optimizer.init(params), jnp.asarray(0, jnp.int32))
    state = jax.device_put(state, jax.devices()[0])
    update = jax.jit(make_dpo_update(config))
    b, n = s["dpo_batch"], len(rows)
    batches = []
    for t in range(steps):
        idx = np.arange(t * b, (t + 1) * b) % n
        batches.append((jax.device_put(jax.tree_util.tree_map(lambda x: x[idx], data),
                                       jax.devices()[0]),))  # fmt: skip
    t0 = time.perf_counter()
    compiled = update.lower(state, *batches[0]).compile()
    compile_s = time.perf_counter() - t0
    _, walls, cpus, outs = _timed_steps(compiled, state, batches, s["warmup"])
    return {
        "impl": "jaxrl",
        "algo": "dpo",
        "compile_s": compile_s,
        "ref_log_probs_all_pairs_s": ref_s,  # includes its own compile
        "median": {"step_s": statistics.median(walls), "step_cpu_s": statistics.median(cpus)},
        "per_step": [{"step_s": w, "step_cpu_s": c} for w, c in zip(walls, cpus, strict=True)],
        "shapes": {
            "input_shape": [2 * b, pairs.prompt_tokens.shape[1] + pairs.chosen_tokens.shape[1]]
        },
        "last_loss": float(outs[-1]["loss"]),
    }


def child(args) -> None:
    """The jaxrl side of one algorithm, in a process of its own; prints ``RESULT{json}``."""
    _pin_cores()
    import jax

    out = jaxrl_grpo(args) if args.algo == "grpo" else jaxrl_dpo(args)
    out["versions"] = {"jax": jax.__version__}
    out["cores"] = len(os.sched_getaffinity(0))
    out["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    print("RESULT" + json.dumps(out))


# ---------------------------------------------------------------- driver


def _pin_cores() -> None:
    """Restricts this process to the cores in ``$BENCH_CORES`` (before jax or torch start)."""
    cores = os.environ.get("BENCH_CORES")
    if cores:
        os.sched_setaffinity(0, [int(c) for c in cores.split(",")])


def _run(cmd: list[str], threads: int) -> dict:
    """Runs one side in a subprocess with ``threads`` compute threads; its ``RESULT`` dict.

    Several threads: the process is pinned to the first ``threads`` cores (XLA sizes its
    pool from them; torch gets as many threads). One thread: XLA's and torch's pools are
    set to one thread but the process is not pinned, because pinned to a single core a
    compiled step with a ``jax.pure_callback`` inside (the host reward) deadlocks.
    """
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    else:
        env["BENCH_CORES"] = ",".join(map(str, sorted(os.sched_getaffinity(0))[:threads]))
    load = os.getloadavg()
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{run.stderr[-4000:]}")
    result = json.loads([s for s in run.stdout.splitlines() if s.startswith("RESULT")][-1][6:])
    result["process_wall_s"] = time.perf_counter() - start
    result["loadavg_before"], result["loadavg_after"] = list(load), list(os.getloadavg())
    result["pinned_cores"] = env.get("BENCH_CORES", "")
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model, one step each (smoke test)")
    p.add_argument("--trl-python", default="/work/trl-venv/bin/python")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--algos", default="grpo,dpo")
    p.add_argument(
        "--model-size", choices=sorted(MODELS), default="bench",
        help="bench: 4 layers, width 256; e2e: the end-to-end example's 2 layers, width 64",
    )  # fmt: skip
    p.add_argument("--steps", type=int)
    p.add_argument("--skip-trl", action="store_true", help="jaxrl side only")
    p.add_argument(
        "--report", action="store_true", help="rewrite RESULTS.md's section from the saved JSON"
    )
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--algo", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.impl:
        return child(args)
    if args.report:
        with open(os.path.join(args.out, "llm_trl.json")) as f:
            return write_section(json.load(f))
    settings = dict(QUICK_SETTINGS if args.quick else SETTINGS)
    if args.steps:
        settings["steps"] = args.steps
    sizes = QUICK_SIZES if args.quick else MODELS[args.model_size]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from jaxrl.llm.testing import tiny_model_dir

        model = tiny_model_dir(
            os.path.join(tmp, "model"), seed=settings["seed"], max_len=256, **sizes
        )
        write_data(tmp, settings["rows"], settings["prompt_digits"],
                   settings["dpo_completion_digits"], settings["seed"])  # fmt: skip
        for algo in args.algos.split(","):
            jax_cmd = [
                sys.executable, os.path.abspath(__file__), "--impl", "jaxrl", "--algo", algo,
                "--model", model, "--data", tmp, "--settings", json.dumps(settings),
            ]  # fmt: skip
            rows.append(_run(jax_cmd, args.threads))
            print(json.dumps({k: rows[-1][k] for k in ("impl", "algo", "median")}), flush=True)
            if args.skip_trl:
                continue
            data = os.path.join(tmp, "prompts.jsonl" if algo == "grpo" else "pairs.jsonl")
            trl_cmd = [
                args.trl_python, os.path.join(HERE, "trl_side.py"), "--algo", algo,
                "--model", model, "--data", data, "--workdir", os.path.join(tmp, f"trl_{algo}"),
                "--threads", str(args.threads), "--steps", str(settings["steps"]),
                "--warmup", str(settings["warmup"]), "--seed", str(settings["seed"]),
                "--learning-rate", str(settings["learning_rate"]),
                "--prompts", str(settings["prompts"]), "--group", str(settings["group"]),
                "--completion-len", str(settings["completion_len"]),
                "--kl-coef", str(settings["kl_coef"]), "--batch", str(settings["dpo_batch"]),
            ]  # fmt: skip
            rows.append(_run(trl_cmd, args.threads))
            print(json.dumps({k: rows[-1][k] for k in ("impl", "algo", "median")}), flush=True)
            if algo == "dpo":
                rows.append(_run([*trl_cmd, "--no-precompute-ref"], args.threads))
                print(json.dumps({k: rows[-1][k] for k in ("impl", "algo", "median")}), flush=True)
    result = {
        "benchmark": "llm_trl",
        "model": {
            **sizes,
            "architecture": "llama",
            "vocab": 320,
            "dtype": "float32",
            "name": args.model_size,
        },
        "settings": settings,
        "threads": args.threads,
        "rows": rows,
        "speedup": _speedups(rows),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **_git_state(),
    }
    print(json.dumps(result["speedup"]))
    if not args.quick and not args.skip_trl:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "llm_trl.json")
        saved = {"benchmark": "llm_trl", "runs": []}
        if os.path.exists(path):  # one run per thread count and model: a rerun replaces its own
            with open(path) as f:
                saved = json.load(f)
        saved["runs"] = [r for r in saved["runs"] if _key(r) != _key(result)] + [result]
        with open(path, "w") as f:
            json.dump(saved, f, indent=2)
        write_section(saved)
    return result


def _key(run: dict) -> tuple:
    """A saved run's identity: its thread count and model (runs before models had names: bench)."""
    return run["threads"], run["model"].get("name", "bench")


def _git_state() -> dict:
    """The commit measured, and the jaxrl files that differed from it (uncommitted edits)."""

    def git(*cmd):
        out = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=HERE)
        return out.stdout.rstrip() if out.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "../jaxrl").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "jaxrl_uncommitted": [c[3:] for c in changed]}


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _loads(run: dict) -> list[float]:
    """The 1-minute load averages recorded before and after each side of a run."""
    return [x for r in run["rows"] for x in (r["loadavg_before"][0], r["loadavg_after"][0])]


def _run_lines(result: dict) -> list[str]:
    """The two tables of one run (one thread count)."""
    rows = result["rows"]
    jx = {r["algo"]: r for r in rows if r["impl"] == "jaxrl"}
    loads = _loads(result)
    m = result["model"]
    lines = [
        f"**{result['threads']} thread(s) per side, model {_key(result)[1]} ({m['num_layers']} "
        f"layers, width {m['d_model']})** ({result['time']}; 1-minute load average "
        f"{min(loads):.1f}–{max(loads):.1f} during the runs):",
        "",
        "| algorithm | jaxrl step s | jaxrl CPU s | TRL step s | TRL CPU s | TRL / jaxrl "
        "(wall) | TRL / jaxrl (CPU) | jaxrl compile s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tag, ratio in result["speedup"].items():
        algo = tag.split("_")[0]
        tr = next(
            r for r in rows
            if r["impl"] == "trl" and r["algo"] == algo
            and (r.get("precompute_ref_log_probs", True) == (tag == algo))
        )  # fmt: skip
        j = jx[algo]
        lines.append(
            f"| {tag.replace('_', ' ')} | {_fmt(j['median']['step_s'])} | "
            f"{_fmt(j['median']['step_cpu_s'])} | {_fmt(tr['median']['step_s'])} | "
            f"{_fmt(tr['median']['step_cpu_s'])} | {ratio['wall']:.1f}× | {ratio['cpu']:.1f}× | "
            f"{_fmt(j['compile_s'])} |"
        )
    g = jx["grpo"]["median"]
    tm = next(r for r in rows if r["impl"] == "trl" and r["algo"] == "grpo")["median"]
    trl_other = tm["rollout"] - tm["generation"] - tm.get("reference", 0.0) - tm["reward"]
    split_cpu = f", {_fmt(g['split_step_cpu_s'])} CPU s" if "split_step_cpu_s" in g else ""
    lines += [
        "",
        "GRPO step split (wall seconds, medians; jaxrl: each stage compiled alone by "
        f"`grpo_step_timed`, whose whole step took {_fmt(g['split_step_s'])} s{split_cpu} in "
        "these runs; TRL: its own stages timed inside the same steps, update = step − rollout):",
        "",
        "| stage | jaxrl | TRL |",
        "|---|---|---|",
        f"| generation | {_fmt(g['generation'])} | {_fmt(tm['generation'])} |",
        f"| reference log-probs | {_fmt(g['reference'])} | {_fmt(tm.get('reference', 0.0))} |",
        f"| reward (+ advantages) | {_fmt(g['reward'])} | {_fmt(tm['reward'])} "
        f"(+ {_fmt(trl_other)} other rollout work) |",
        f"| update | {_fmt(g['update'])} | {_fmt(tm['step_s'] - tm['rollout'])} |",
        "",
        f"Share of the GRPO step in generation: TRL {tm['generation'] / tm['step_s']:.0%}, "
        f"jaxrl {g['generation'] / g['split_step_s']:.0%} (of its split step).",
        "",
    ]
    return lines


def _thread_note(many: dict, one: dict) -> list[str]:
    """What changes between a multi-thread run and the one-thread run (from their numbers)."""

    def med(run, impl, algo):
        return next(r for r in run["rows"] if r["impl"] == impl and r["algo"] == algo)["median"]

    t_many, t_one = med(many, "trl", "grpo"), med(one, "trl", "grpo")
    j_many, j_one = med(many, "jaxrl", "grpo"), med(one, "jaxrl", "grpo")
    return [
        f"From {many['threads']} threads to 1, TRL's GRPO step went from "
        f"{_fmt(t_many['step_cpu_s'])} to {_fmt(t_one['step_cpu_s'])} CPU s "
        f"({t_many['step_cpu_s'] / t_one['step_cpu_s']:.1f}× less; generation "
        f"{_fmt(t_many['generation'])} → {_fmt(t_one['generation'])} s wall) and jaxrl's from "
        f"{_fmt(j_many['step_cpu_s'])} to {_fmt(j_one['step_cpu_s'])} CPU s. "
        + (
            "With the load average far above the core count, torch's threads spend their time "
            "waiting on each other, so the multi-thread ratios measure that more than the two "
            "implementations. "
            if max(_loads(many)) > 2 * os.cpu_count()
            else f"The {many['threads']}-thread run was on a machine no busier than its core "
            "count, so its ratio is what a user of this machine gets with torch's default threads. "
        )
        + f"At one thread, per stage (jaxrl, TRL; wall s): generation "
        f"({_fmt(j_one['generation'])}, {_fmt(t_one['generation'])}), reference pass "
        f"({_fmt(j_one['reference'])}, {_fmt(t_one['reference'])}), update "
        f"({_fmt(j_one['update'])}, {_fmt(t_one['step_s'] - t_one['rollout'])}).",
        "",
    ]


def markdown(saved: dict) -> list[str]:
    """The ``## llm_trl`` section of RESULTS.md from ``results/llm_trl.json`` (all runs)."""
    runs = sorted(saved["runs"], key=lambda r: (r["model"].get("name", "bench"), -r["threads"]))
    first = runs[0]
    st = first["settings"]
    models = {}
    for r in runs:
        models.setdefault(_key(r)[1], r["model"])
    shapes = "; ".join(
        f"{name}: {m['num_layers']} layers, width {m['d_model']}, {m['num_heads']} heads / "
        f"{m['num_kv_heads']} KV heads, MLP {m['d_ff']}"
        for name, m in models.items()
    )
    versions = {}
    for r in first["rows"]:
        versions.update(r["versions"])
    lines = [
        "## llm_trl",
        "",
        "`python benchmarks/llm_trl.py [--threads N]`: one step of GRPO and of DPO, jaxrl "
        f"beside TRL {versions['trl']} (transformers {versions['transformers']}, torch "
        f"{versions['torch']}, in its own venv) against jax {versions['jax']}, on the same random "
        f"Llama directory ({shapes}; vocabulary {first['model']['vocab']}, float32; e2e is "
        "the shape of the end-to-end example's model, `--model-size e2e`), the same JSONL rows "
        "and the same CPU threads on each side (N > 1: both "
        "processes pinned to N cores, torch threads = N, XLA's pool sized by those cores; N = 1: "
        "torch and XLA set to one thread, processes not pinned, since a compiled step holding a "
        "`jax.pure_callback` deadlocks when pinned to a single core). "
        f"Machine: {first['machine']}, shared "
        "with other jobs: the CPU-time columns count only the process's own threads and are the "
        "steadier comparison.",
        "",
        f"GRPO: {st['prompts']} prompts × {st['group']} completions per step, "
        f"{st['completion_len']} new tokens per completion (EOS never ends a row on either "
        "side), one update epoch of "
        f"one minibatch, KL coefficient {st['kl_coef']} to the frozen reference, per-sequence "
        "token-mean loss, reward on the host (share of distinct characters of the decoded "
        f"completion). DPO: {st['dpo_batch']} pairs per step, prompt and completions of "
        f"{st['prompt_digits']} and {st['dpo_completion_digits']} digits (+BOS/EOS), sigmoid "
        "loss, β = 0.1, reference log-probs computed once before training (TRL: "
        "`precompute_ref_log_probs=True`; the 'dpo ref every step' row runs TRL's reference in "
        "every step, beside the same jaxrl row). "
        f"Medians of {st['steps']} steps after {st['warmup']} warm-up steps, seed {st['seed']}; "
        "jaxrl's compile time is apart (lower + compile of the whole step).",
        "",
    ]
    for run in runs:
        lines += _run_lines(run)
    for name in models:
        mine = [r for r in runs if _key(r)[1] == name]
        worst = {a: min(min(r["speedup"][a].values()) for r in mine) for a in ("grpo", "dpo")}
        met = all(v >= 3 for v in worst.values())
        by = {r["threads"]: r for r in mine}
        if 1 in by and len(by) > 1:
            lines += _thread_note(by[max(by)], by[1])
        lines.append(
            f"Goal (issue 20): jaxrl ≥ 3× faster per step. Model {name}, smallest ratio over its "
            f"runs ({', '.join(str(t) for t in sorted(by))} thread(s)): GRPO {worst['grpo']:.1f}×, "
            f"DPO {worst['dpo']:.1f}×: "
            + ("met." if met else f"not met (short by {3 / min(worst.values()):.1f}× at worst).")
        )
        lines.append("")
    for note in saved.get("notes", []):  # measurements made by hand, kept in the JSON
        lines += [note, ""]
    return lines


def write_section(saved: dict, path: str = os.path.join(HERE, "RESULTS.md")) -> None:
    """Replaces the ``## llm_trl`` section of RESULTS.md (appends it when absent)."""
    with open(path) as f:
        text = f.read()
    section = "\n".join(markdown(saved))
    start = text.find("\n## llm_trl\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def _speedups(rows: list[dict]) -> dict:
    """TRL step time / jaxrl step time per algorithm (wall and CPU), > 1: jaxrl faster."""
    out = {}
    for algo in ("grpo", "dpo"):
        jx = [r for r in rows if r["algo"] == algo and r["impl"] == "jaxrl"]
        tr = [r for r in rows if r["algo"] == algo and r["impl"] == "trl"]
        for r in tr:
            tag = algo if r.get("precompute_ref_log_probs", True) else f"{algo}_ref_every_step"
            out[tag] = {
                "wall": r["median"]["step_s"] / jx[0]["median"]["step_s"],
                "cpu": r["median"]["step_cpu_s"] / jx[0]["median"]["step_cpu_s"],
            }
    return out


if __name__ == "__main__":
    main()

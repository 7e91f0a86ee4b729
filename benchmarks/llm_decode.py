"""Decode speed of a loaded Llama-architecture model: jaxrl vs transformers ``generate``.

A random Llama model (default: width 512, 8 layers, 8 heads / 4 KV heads, MLP 1536,
vocabulary 32000, tied embeddings: 41.6M parameters) is written once as a Hugging Face
directory; each implementation then loads that same directory in its own subprocess
(so the two never share a thread pool, and each process's peak memory is its own) and
runs greedy generation of batch 8, prompt 64, 128 new tokens (EOS disabled, so every
row decodes all 128), with the KV cache on.

Per implementation and dtype: compile (jaxrl: lower + compile of ``generate``;
transformers: none), prefill tokens/s (a forward pass over the prompt that fills the
cache, timed alone), decode tokens/s = ``B × new tokens / (generate time − prefill
time)``, end-to-end tokens/s, and peak resident memory of the process (``ru_maxrss``).
Times are medians of ``--repeats`` calls after one warm-up; each also has its process
CPU time (all threads), and ``decode_tokens_per_cpu_s`` divides by it: on a shared,
loaded machine that ratio is steadier than the wall-clock one. torch gets as many threads
as the machine has cores (``torch.set_num_threads``); XLA uses all cores by default.

Run: ``python benchmarks/llm_decode.py`` (about 5 minutes on 2 cores), writes
``benchmarks/results/llm_decode.json``; ``--quick`` runs a 2-layer model, batch 2, 8
new tokens (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = dict(d_model=512, num_layers=8, num_heads=8, num_kv_heads=4, d_ff=1536, vocab=32000)
QUICK = dict(d_model=64, num_layers=2, num_heads=4, num_kv_heads=2, d_ff=128, vocab=512)


def _median_time(fn, repeats):
    """Median (wall seconds, process CPU seconds) of ``repeats`` calls after a warm-up.

    The CPU time counts every thread of the process (XLA's and torch's pools), so it
    stays meaningful on a shared machine where the wall time depends on the load.
    """
    fn()  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def _timings(generate, prefill, repeats) -> dict:
    total, total_cpu = _median_time(generate, repeats)
    pre, pre_cpu = _median_time(prefill, repeats)
    return {
        "generate_s": total,
        "prefill_s": pre,
        "generate_cpu_s": total_cpu,
        "prefill_cpu_s": pre_cpu,
    }


def make_model(path: str, sizes: dict) -> int:
    """Writes the random model directory; returns its parameter count."""
    import jax

    from jaxrl.llm import ModelConfig, init_params, save_pretrained

    config = ModelConfig(
        vocab_size=sizes["vocab"],
        max_len=512,
        d_model=sizes["d_model"],
        num_heads=sizes["num_heads"],
        num_kv_heads=sizes["num_kv_heads"],
        num_layers=sizes["num_layers"],
        d_ff=sizes["d_ff"],
        model_type="llama",
        tie_embeddings=True,
        rope_theta=500000.0,
    )
    params = init_params(config, jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map(
        lambda x: x * 0.05 if x.ndim == 2 and x.shape[0] == config.vocab_size else x, params
    )
    save_pretrained(path, config, params)
    return sum(x.size for x in jax.tree_util.tree_leaves(params))


def run_jaxrl(path, dtype, batch, prompt_len, new_tokens, repeats):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxrl.llm import GenerationConfig, Transformer, generate, init_cache, load_pretrained

    config, params = load_pretrained(path, dtype=dtype)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(3, config.vocab_size, (batch, prompt_len)), jnp.int32)
    mask = jnp.ones_like(tokens)
    gen = GenerationConfig(max_new_tokens=new_tokens, greedy=True, eos_id=-1)
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    compiled = generate.lower(params, config, gen, tokens, mask, key).compile()
    compile_s = time.perf_counter() - start

    @jax.jit
    def prefill(params, tokens, mask):
        cache = init_cache(config, batch, prompt_len + new_tokens)
        return Transformer(config).apply(params, tokens, mask, cache=cache).logits[:, -1]

    start = time.perf_counter()
    prefill = prefill.lower(params, tokens, mask).compile()
    compile_s += time.perf_counter() - start
    times = _timings(
        lambda: jax.block_until_ready(compiled(params, tokens, mask, key)),
        lambda: jax.block_until_ready(prefill(params, tokens, mask)),
        repeats,
    )
    return {"compile_s": compile_s, **times}


def run_transformers(path, dtype, batch, prompt_len, new_tokens, repeats):
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).eval()
    rng = np.random.default_rng(0)
    tokens = torch.tensor(rng.integers(3, model.config.vocab_size, (batch, prompt_len)))
    mask = torch.ones_like(tokens)

    def generate():
        with torch.inference_mode():
            out = model.generate(
                input_ids=tokens,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
                eos_token_id=None,
                pad_token_id=0,
            )
        assert out.shape[1] == prompt_len + new_tokens

    def prefill():
        with torch.inference_mode():
            model(input_ids=tokens, attention_mask=mask, use_cache=True)

    return {"compile_s": 0.0, **_timings(generate, prefill, repeats)}


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss``, which a child
    inherits from its parent across fork and exec, it starts afresh at exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args):
    fn = run_jaxrl if args.impl == "jaxrl" else run_transformers
    out = fn(args.model, args.dtype, args.batch, args.prompt_len, args.new_tokens, args.repeats)
    out["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT" + json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model, batch 2, 8 new tokens")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--impl", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--prompt-len", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--new-tokens", type=int, default=128, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.impl:
        return child(args)
    sizes = QUICK if args.quick else SIZES
    batch, prompt_len, new_tokens = (2, 8, 8) if args.quick else (8, 64, 128)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        num_params = make_model(tmp, sizes)
        for dtype in args.dtypes.split(","):
            for impl in ("jaxrl", "transformers"):
                cmd = [
                    sys.executable, __file__, "--impl", impl, "--model", tmp, "--dtype", dtype,
                    "--batch", str(batch), "--prompt-len", str(prompt_len),
                    "--new-tokens", str(new_tokens), "--repeats", str(args.repeats),
                ]  # fmt: skip
                load = os.getloadavg()[0]
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode:
                    raise SystemExit(f"{impl} {dtype} failed:\n{run.stderr[-3000:]}")
                r = json.loads(
                    [s for s in run.stdout.splitlines() if s.startswith("RESULT")][-1][6:]
                )
                decode_s = r["generate_s"] - r["prefill_s"]
                row = {
                    "impl": impl,
                    "dtype": dtype,
                    **r,
                    "decode_tokens_per_s": batch * new_tokens / decode_s,
                    "prefill_tokens_per_s": batch * prompt_len / r["prefill_s"],
                    "end_to_end_tokens_per_s": batch * new_tokens / r["generate_s"],
                    "decode_tokens_per_cpu_s": batch
                    * new_tokens
                    / max(r.get("generate_cpu_s", 0) - r.get("prefill_cpu_s", 0), 1e-9),
                    "loadavg_1min_before": load,
                    "loadavg_1min_after": os.getloadavg()[0],
                }
                rows.append(row)
                print(json.dumps(row))
    ratios = {}
    for dtype in args.dtypes.split(","):
        by = {r["impl"]: r for r in rows if r["dtype"] == dtype}
        ratios[dtype] = (
            by["jaxrl"]["decode_tokens_per_s"] / by["transformers"]["decode_tokens_per_s"]
        )
    result = {
        "benchmark": "llm_decode",
        "model": {**sizes, "params": num_params, "architecture": "llama"},
        "batch": batch,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "rows": rows,
        "decode_speedup_jaxrl_over_transformers": ratios,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(json.dumps(ratios))
    if not args.quick:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "llm_decode.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

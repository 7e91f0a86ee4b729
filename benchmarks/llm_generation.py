"""Generation throughput of jaxrl.llm.generate, with and without the KV cache.

For each total sequence length (prompt + new tokens) and each path, the script
compiles ``generate`` once (timed apart: lower + compile), then times ``--repeats``
calls and reports the median. Throughput counts every generated position,
``batch × new tokens / seconds``: the compiled scan runs all of them even after a
row has emitted EOS.

Without the cache, step t runs the model over the whole ``[B, P + C]`` buffer, so a
completion of C tokens costs about C full forward passes; with the cache, the
prompt is processed once and each step attends from one new token.

Run: ``python benchmarks/llm_generation.py`` (a few minutes on 2 CPU cores: the
uncached path at length 256 takes a minute or more per call there).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np

from jaxrl.llm import GenerationConfig, ModelConfig, generate, init_params
from jaxrl.llm.tasks import BOS, SEP, TOKENIZER


def measure(params, model_config, gen_config, tokens, mask, use_cache, repeats, budget_s):
    """Returns (compile seconds, median run seconds, number of timed runs).

    One untimed warm-up call, then up to ``repeats`` timed calls, stopping early once
    ``budget_s`` seconds are spent; a warm-up longer than ``budget_s`` is the only run.
    """
    key = jax.random.PRNGKey(0)
    start = time.perf_counter()
    compiled = generate.lower(
        params, model_config, gen_config, tokens, mask, key, use_cache=use_cache
    ).compile()
    compile_s = time.perf_counter() - start

    def run(i):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, tokens, mask, jax.random.PRNGKey(i)))
        return time.perf_counter() - start

    warm = run(0)
    if warm > budget_s:
        return compile_s, warm, 1
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        times.append(run(len(times) + 1))
    return compile_s, statistics.median(times), len(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=8)
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[64, 256],
        help="total sequence lengths (prompt + new tokens)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed runs per row")
    args = parser.parse_args()

    model_config = ModelConfig(vocab_size=TOKENIZER.vocab_size, max_len=max(args.lengths))
    params = init_params(model_config, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    digits = rng.integers(4, 14, (args.batch, args.prompt_len - 2))
    tokens = np.concatenate(
        [np.full((args.batch, 1), BOS), digits, np.full((args.batch, 1), SEP)], 1
    ).astype(np.int32)
    mask = np.ones_like(tokens)

    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    print(
        f"model: {model_config.num_layers} layers, d={model_config.d_model}, "
        f"{model_config.num_heads} heads, {n_params} parameters; batch {args.batch}, "
        f"prompt {args.prompt_len} tokens"
    )
    print(f"load average (1 min) before: {os.getloadavg()[0]:.1f}")
    print("| total length | new tokens | path | compile s | run s (runs) | tokens/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for length in args.lengths:
        new = length - args.prompt_len
        gen_config = GenerationConfig(max_new_tokens=new, temperature=1.0)
        rows = {}
        for use_cache in (True, False):
            rows[use_cache] = measure(
                params, model_config, gen_config, tokens, mask, use_cache, args.repeats, args.budget
            )
        for use_cache in (True, False):
            compile_s, run_s, n = rows[use_cache]
            speedup = rows[False][1] / run_s
            print(
                f"| {length} | {new} | {'KV cache' if use_cache else 'recompute'} | "
                f"{compile_s:.2f} | {run_s:.3f} ({n}) | {args.batch * new / run_s:,.0f} | "
                f"{speedup:.1f}x |"
            )


if __name__ == "__main__":
    main()

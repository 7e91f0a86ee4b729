"""Sharded = unsharded: forward, generation and a training step of a loaded model on 4 forced
CPU devices (a 2 × 2 data × model mesh, FSDP parameters) against one device."""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.subprocess_env import host_devices_env

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from jaxrl.llm import (GenerationConfig, SFTConfig, fsdp_sharding, forward, generate,
        init_sft_state, load_pretrained, make_mesh, make_sft_update, shard_batch)
    from jaxrl.llm.tasks import SFTData
    from jaxrl.llm.testing import tiny_model_dir

    assert len(jax.devices()) == 4
    path = tiny_model_dir(sys.argv[1], "llama", seed=1)
    cfg, params = load_pretrained(path)
    mesh = make_mesh(data=2, model=2)
    _, sharded = load_pretrained(path, sharding=fsdp_sharding(mesh))
    specs = [x.sharding.spec for x in jax.tree_util.tree_leaves(sharded)]
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, cfg.vocab_size, (4, 8)).astype(np.int32)
    mask = np.ones((4, 8), np.int32)
    mask[1, :3] = mask[3, :5] = 0
    completion = rng.integers(5, cfg.vocab_size, (4, 4)).astype(np.int32)
    data = SFTData(tokens, mask, completion, np.ones((4, 4), np.int32))
    out = {"sharded_leaves": sum("model" in str(s) for s in specs), "leaves": len(specs)}
    one = forward(cfg, params, tokens, mask)
    many = forward(cfg, sharded, *shard_batch((tokens, mask), mesh))
    out["logits"] = float(np.abs(np.asarray(one) - np.asarray(many)).max())
    gen_cfg = GenerationConfig(max_new_tokens=8, temperature=0.8)
    key = jax.random.PRNGKey(0)
    g1 = generate(params, cfg, gen_cfg, tokens, mask, key)
    g4 = generate(sharded, cfg, gen_cfg, *shard_batch((tokens, mask), mesh), key)
    out["tokens_equal"] = bool(np.array_equal(g1.tokens, g4.tokens))
    out["log_probs"] = float(np.abs(np.asarray(g1.log_probs) - np.asarray(g4.log_probs)).max())
    sft = SFTConfig(model=cfg, learning_rate=1e-2, warmup_steps=0, num_steps=10, eval_every=10)
    update = jax.jit(make_sft_update(sft))
    s1, s4 = init_sft_state(sft, key, params), init_sft_state(sft, key, sharded)
    data4 = shard_batch(data, mesh)
    for _ in range(2):  # the learning rate warms up from 0: the second step moves
        (s1, m1), (s4, m4) = update(s1, data), update(s4, data4)
    diffs = jax.tree_util.tree_map(
        lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), s1.params, s4.params
    )
    out["params"] = max(jax.tree_util.tree_leaves(diffs))
    out["loss"] = abs(float(m1["loss"]) - float(m4["loss"]))
    out["grad_norm"] = abs(float(m1["grad_norm"]) / float(m4["grad_norm"]) - 1)
    out["moved"] = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max())
        for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(s1.params))
    )
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    env = host_devices_env(4)
    env["JAX_PLATFORMS"] = "cpu"  # JAX_DISABLE_MOST_OPTIMIZATIONS=1 comes from tests/conftest.py
    path = str(tmp_path_factory.mktemp("sharded_model"))
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, path], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    line = [s for s in run.stdout.splitlines() if s.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


def test_parameters_are_sharded(result):
    assert result["sharded_leaves"] >= result["leaves"] // 2


def test_forward_and_generation_equal_one_device(result):
    assert result["logits"] < 1e-5
    assert result["tokens_equal"]
    assert result["log_probs"] < 1e-5


def test_training_step_equals_one_device(result):
    assert result["moved"] > 1e-4  # the step changed the parameters
    assert result["loss"] < 1e-6
    assert result["grad_norm"] < 1e-5
    # Adam divides by √v: where a gradient is ~1e-9 its rounding noise becomes part of a
    # ±lr step, so the parameters agree to a small fraction of one step (lr = 1e-2)
    assert result["params"] < 2e-4

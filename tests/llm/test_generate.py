"""Tests of the transformer, its KV cache, generation and sequence log-probs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.llm import (
    EOS,
    PAD,
    GenerationConfig,
    ModelConfig,
    Transformer,
    generate,
    init_cache,
    init_params,
    load_model,
    merge_params,
    process_logits,
    save_model,
    score_completions,
    sequence_log_probs,
)

from .conftest import TINY, pad_more

SAMPLERS = {
    "plain": GenerationConfig(max_new_tokens=6),
    "truncated": GenerationConfig(max_new_tokens=6, temperature=0.7, top_k=8, top_p=0.9),
}


@pytest.fixture(scope="module", params=list(SAMPLERS))
def generated(request, tiny_params, prompts):
    """(config, cached generation, uncached generation) with the same key."""
    config = SAMPLERS[request.param]
    key = jax.random.PRNGKey(1)
    cached = generate(tiny_params, TINY, config, prompts.tokens, prompts.mask, key)
    full = generate(tiny_params, TINY, config, prompts.tokens, prompts.mask, key, use_cache=False)
    return config, cached, full


def test_kv_cache_generation_equals_full_recomputation(generated):
    _, cached, full = generated
    assert len(np.unique(np.asarray(cached.tokens))) > 5  # a real sample, not a constant
    np.testing.assert_array_equal(cached.tokens, full.tokens)
    np.testing.assert_array_equal(cached.mask, full.mask)
    np.testing.assert_allclose(cached.log_probs, full.log_probs, atol=1e-5)
    np.testing.assert_allclose(cached.sampler_log_probs, full.sampler_log_probs, atol=1e-5)


def test_sampler_log_probs_equal_sequence_log_probs(tiny_params, prompts, generated):
    config, gen, _ = generated
    tau = config.temperature
    lp = sequence_log_probs(
        tiny_params, TINY, prompts.tokens, prompts.mask, gen.tokens, gen.mask, temperature=tau
    )
    np.testing.assert_allclose(gen.log_probs, lp, atol=1e-5)
    if config.top_k == 0 and config.top_p == 1.0:
        np.testing.assert_allclose(gen.sampler_log_probs, gen.log_probs, atol=1e-6)
    else:  # truncation renormalises over fewer tokens: each kept token gets more mass
        assert np.all(np.asarray(gen.sampler_log_probs) >= np.asarray(gen.log_probs) - 1e-6)


def test_generation_stops_at_eos(prompts):
    params = init_params(TINY, jax.random.PRNGKey(3))
    bias = params["params"]["lm_head"]["bias"]
    params = jax.tree_util.tree_map(lambda x: x, params)
    params["params"]["lm_head"]["bias"] = bias.at[EOS].set(4.0)  # EOS often, not always
    config = SAMPLERS["plain"]  # compiled already
    gen = generate(params, TINY, config, prompts.tokens, prompts.mask, jax.random.PRNGKey(4))
    tokens, mask = np.asarray(gen.tokens), np.asarray(gen.mask)
    assert 0 < np.asarray(gen.finished).sum() < len(tokens)
    for row, m, done in zip(tokens, mask, np.asarray(gen.finished), strict=True):
        eos = np.flatnonzero(row == EOS)
        n = eos[0] + 1 if len(eos) else len(row)
        assert done == bool(len(eos))
        np.testing.assert_array_equal(m, np.arange(len(row)) < n)  # EOS itself is in the mask
        assert np.all(row[n:] == PAD)
    assert np.all(np.asarray(gen.log_probs)[mask == 0] == 0)


def test_process_logits_matches_numpy():
    logits = jnp.array([[2.0, 1.0, 0.5, -1.0, 0.0]])
    scaled, trunc = process_logits(logits, GenerationConfig(temperature=0.5, top_k=2))
    np.testing.assert_allclose(scaled, logits / 0.5)
    assert np.isfinite(np.asarray(trunc)).sum() == 2
    # top-p: probabilities at τ = 1, sorted: 0.49, 0.18, 0.11, 0.07, 0.02 (approx.)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    for top_p in (0.3, 0.6, 0.75, 0.99):
        _, trunc = process_logits(logits, GenerationConfig(top_p=top_p))
        order = np.argsort(-p)
        before = np.cumsum(p[order]) - p[order]
        expected = np.zeros(5, bool)
        expected[order[before < top_p]] = True
        np.testing.assert_array_equal(np.isfinite(np.asarray(trunc[0])), expected)


def test_extra_padding_changes_no_score(prompts):
    config = dataclasses.replace(TINY, value_head=True, reward_head=True)
    params = init_params(config, jax.random.PRNGKey(5))
    # give the zero-initialised heads non-zero weights
    params = jax.tree_util.tree_map(
        lambda x: x + 0.1 * np.cos(np.arange(x.size)).reshape(x.shape), params
    )
    # completions of different lengths: the reference answers (2 to 4 tokens)
    tok, mask = prompts.answer, prompts.answer_mask
    width = tok.shape[1]
    base = score_completions(params, config, prompts.tokens, prompts.mask, tok, mask)
    p_tok, p_mask = pad_more(prompts.tokens, prompts.mask, left=3)
    c_tok, c_mask = pad_more(tok, mask, right=4)
    more = score_completions(params, config, p_tok, p_mask, c_tok, c_mask)
    for name in ("log_probs", "entropy", "values"):
        np.testing.assert_allclose(getattr(more, name)[:, :width], getattr(base, name), atol=1e-5)
        assert np.all(np.asarray(getattr(more, name))[:, width:] == 0)
    np.testing.assert_allclose(more.reward, base.reward, atol=1e-5)
    assert np.std(np.asarray(base.reward)) > 0 and np.std(np.asarray(base.values)) > 0


def test_cache_forward_token_by_token_equals_one_pass(tiny_params, prompts):
    apply = jax.jit(Transformer(TINY).apply)
    full = apply(tiny_params, prompts.tokens, prompts.mask)
    cache = init_cache(TINY, prompts.tokens.shape[0], prompts.tokens.shape[1])
    for t in range(prompts.tokens.shape[1]):
        out = apply(
            tiny_params, prompts.tokens[:, t : t + 1], prompts.mask[:, t : t + 1], cache=cache
        )
        cache = out.cache
        real = np.asarray(prompts.mask[:, t]) > 0
        np.testing.assert_allclose(out.logits[real, 0], full.logits[real, t], atol=1e-5)
    assert int(cache.length) == prompts.tokens.shape[1]


def test_greedy_takes_the_most_likely_token(tiny_params, prompts):
    config = GenerationConfig(max_new_tokens=4, greedy=True)
    gen = generate(tiny_params, TINY, config, prompts.tokens, prompts.mask, jax.random.PRNGKey(8))
    # a greedy token has the highest log-prob: compare with every alternative at step 0
    logits = jax.jit(Transformer(TINY).apply)(tiny_params, prompts.tokens, prompts.mask).logits[
        :, -1
    ]
    np.testing.assert_array_equal(gen.tokens[:, 0], np.argmax(np.asarray(logits), -1))
    lp = sequence_log_probs(tiny_params, TINY, prompts.tokens, prompts.mask, gen.tokens, gen.mask)
    np.testing.assert_allclose(gen.log_probs, lp, atol=1e-5)


def test_generate_is_jit_compiled_once(tiny_params, prompts):
    config = GenerationConfig(max_new_tokens=6)
    for seed in range(2):
        generate(tiny_params, TINY, config, prompts.tokens, prompts.mask, jax.random.PRNGKey(seed))
    assert generate._cache_size() >= 1
    before = generate._cache_size()
    generate(tiny_params, TINY, config, prompts.tokens, prompts.mask, jax.random.PRNGKey(9))
    assert generate._cache_size() == before


def test_save_load_and_merge(tmp_path, tiny_params):
    save_model(str(tmp_path), tiny_params, TINY)
    params, config = load_model(str(tmp_path))
    assert config == TINY
    for a, b in zip(
        jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(tiny_params), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    with_head = init_params(dataclasses.replace(TINY, value_head=True), jax.random.PRNGKey(7))
    merged = merge_params(with_head, params)
    np.testing.assert_array_equal(
        merged["params"]["embed"]["embedding"], params["params"]["embed"]["embedding"]
    )
    np.testing.assert_array_equal(
        merged["params"]["value_head"]["kernel"], with_head["params"]["value_head"]["kernel"]
    )
    with pytest.raises(ValueError, match="model_config.json"):
        load_model(str(tmp_path / "missing"))


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="num_heads"):
        ModelConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        GenerationConfig(top_p=1.5)
    with pytest.raises(ValueError, match="max_len"):
        init_cache(TINY, 2, TINY.max_len + 1)

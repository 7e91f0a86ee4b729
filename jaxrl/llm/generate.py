"""Sampling completions from the transformer, and scoring given completions.

Shapes: ``B`` rows, ``P`` prompt columns (left-padded), ``C`` completion columns
(right-padded), ``V`` vocabulary.

``generate`` prefills the prompt into a KV cache and then runs ``lax.scan`` over the
new tokens, one cached step each (``use_cache=False`` recomputes the whole sequence
at every step instead: the reference for tests and the throughput benchmark). A row
stops at its first EOS: later columns hold PAD with mask 0, the EOS itself has mask 1.

Log-probabilities. ``log_probs`` are those of the policy being trained,
``π(y_t | x, y_<t) = softmax(logits_t / τ)[y_t]`` at temperature ``τ`` (1 when
greedy), the same numbers ``sequence_log_probs(..., temperature=τ)`` returns for the
sampled tokens. ``sampler_log_probs`` are those of the distribution actually sampled,
after top-k and top-p truncation (Holtzman et al. 2019, https://arxiv.org/abs/1904.09751);
they equal ``log_probs`` when neither truncation is active.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrl.llm.tasks import EOS, PAD
from jaxrl.llm.transformer import ModelConfig, Transformer, init_cache

__all__ = [
    "GenerationConfig",
    "Generation",
    "CompletionScores",
    "generate",
    "score_completions",
    "sequence_log_probs",
    "process_logits",
]


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """How to sample. Frozen and hashable: a static jit argument.

    Attributes:
        max_new_tokens: completion columns ``C`` (EOS included).
        temperature: ``τ > 0``; logits are divided by it.
        top_k: keep the ``k`` most likely tokens (0 keeps all).
        top_p: keep the smallest set of most likely tokens whose mass reaches ``p`` (1 keeps all).
        greedy: take the most likely token instead of sampling (log-probs at τ = 1).
        eos_id: the token that ends a completion, or a tuple of such tokens (a pretrained
            model's stop tokens, e.g. ``<|eot_id|>`` and ``<|end_of_text|>``).
        pad_id: the token written after a row has finished.
    """

    max_new_tokens: int = 16
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    greedy: bool = False
    eos_id: int | tuple[int, ...] = EOS
    pad_id: int = PAD

    def __post_init__(self):
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(
                f"GenerationConfig.max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}"
            )
        if not self.temperature > 0:
            raise ValueError(f"GenerationConfig.temperature must be > 0, got {self.temperature}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"GenerationConfig.top_k must be an int >= 0, got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"GenerationConfig.top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.eos_id, list):
            object.__setattr__(self, "eos_id", tuple(self.eos_id))

    @property
    def eos_ids(self) -> tuple[int, ...]:
        """The stop tokens as a tuple."""
        return self.eos_id if isinstance(self.eos_id, tuple) else (self.eos_id,)


class Generation(NamedTuple):
    """Sampled completions and the prompts they continue."""

    prompt_tokens: jax.Array  # [B, P] left-padded
    prompt_mask: jax.Array  # [B, P]
    tokens: jax.Array  # [B, C] int32 completion, PAD after the first EOS
    mask: jax.Array  # [B, C] int32, 1 up to and including the first EOS
    log_probs: jax.Array  # [B, C] log π at temperature τ of each token, 0 where mask = 0
    sampler_log_probs: jax.Array  # [B, C] log-prob under the truncated sampler, 0 where mask = 0
    finished: jax.Array  # [B] bool, whether the row emitted EOS


class CompletionScores(NamedTuple):
    """Per-token quantities of given completions under some parameters."""

    log_probs: jax.Array  # [B, C] log π(y_t | x, y_<t), 0 where mask = 0
    entropy: jax.Array  # [B, C] entropy of π(· | x, y_<t), 0 where mask = 0
    values: jax.Array | None  # [B, C] value head at the state before y_t, or None
    reward: jax.Array | None  # [B] reward head at the last real token, or None


def process_logits(logits: jax.Array, config: GenerationConfig) -> tuple[jax.Array, jax.Array]:
    """Temperature, then top-k and top-p truncation.

    Args:
        logits: ``[B, V]`` raw next-token logits.
        config: the sampling settings.

    Returns:
        ``(policy_logits, sampler_logits)``, each ``[B, V]``: ``logits / τ`` and the same
        with truncated tokens set to −∞.
    """
    tau = 1.0 if config.greedy else config.temperature
    scaled = logits.astype(jnp.float32) / tau
    truncated = scaled
    if config.top_k > 0 and config.top_k < logits.shape[-1]:
        kth = jax.lax.top_k(scaled, config.top_k)[0][..., -1:]
        truncated = jnp.where(scaled < kth, -jnp.inf, truncated)
    if config.top_p < 1.0:
        order = jnp.argsort(-truncated, axis=-1)
        sorted_probs = jnp.take_along_axis(jax.nn.softmax(truncated, axis=-1), order, axis=-1)
        mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
        keep_sorted = mass_before < config.top_p  # the most likely token always stays
        keep = (
            jnp.zeros_like(keep_sorted)
            .at[jnp.arange(keep_sorted.shape[0])[:, None], order]
            .set(keep_sorted)
        )
        truncated = jnp.where(keep, truncated, -jnp.inf)
    return scaled, truncated


class _Step(NamedTuple):
    token: jax.Array  # [B]
    real: jax.Array  # [B] int32
    log_prob: jax.Array  # [B]
    sampler_log_prob: jax.Array  # [B]
    finished: jax.Array  # [B] bool


def _sample(logits, key, finished, config: GenerationConfig) -> _Step:
    """One token per row from ``[B, V]`` logits; rows already finished get PAD."""
    policy, sampler = process_logits(logits, config)
    if config.greedy:
        token = jnp.argmax(policy, axis=-1)
    else:
        token = jax.random.categorical(key, sampler, axis=-1)
    token = token.astype(jnp.int32)
    real = jnp.logical_not(finished)
    pick = functools.partial(jnp.take_along_axis, indices=token[:, None], axis=-1)
    log_prob = pick(jax.nn.log_softmax(policy, axis=-1))[:, 0]
    sampler_log_prob = pick(jax.nn.log_softmax(sampler, axis=-1))[:, 0]
    is_eos = jnp.isin(token, jnp.asarray(config.eos_ids, jnp.int32))
    return _Step(
        token=jnp.where(real, token, config.pad_id),
        real=real.astype(jnp.int32),
        log_prob=jnp.where(real, log_prob, 0.0),
        sampler_log_prob=jnp.where(real, sampler_log_prob, 0.0),
        finished=finished | (real & is_eos),
    )


def _cached_step(carry, key, params, model, config):
    cache, logits, finished = carry
    step = _sample(logits, key, finished, config)
    out = model.apply(params, step.token[:, None], step.real[:, None], cache=cache)
    return (out.cache, out.logits[:, -1], step.finished), step


def _full_step(carry, inputs, params, model, config, prompt_len):
    tokens, mask, finished = carry
    key, t = inputs
    logits = model.apply(params, tokens, mask).logits
    logits = jax.lax.dynamic_index_in_dim(logits, prompt_len + t - 1, axis=1, keepdims=False)
    step = _sample(logits, key, finished, config)
    tokens = jax.lax.dynamic_update_slice(tokens, step.token[:, None], (0, prompt_len + t))
    mask = jax.lax.dynamic_update_slice(mask, step.real[:, None], (0, prompt_len + t))
    return (tokens, mask, step.finished), step


@functools.partial(jax.jit, static_argnames=("model_config", "config", "use_cache"))
def generate(
    params,
    model_config: ModelConfig,
    config: GenerationConfig,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    key: jax.Array,
    use_cache: bool = True,
) -> Generation:
    """Samples ``config.max_new_tokens`` tokens after each (left-padded) prompt.

    Step ``t`` draws ``y_t ~ softmax(truncate(logits_t / τ))`` with its own key
    ``split(key, C)[t]``, so the cached and uncached paths draw the same tokens.

    Args:
        params: transformer parameters.
        model_config: the transformer's sizes (static).
        config: sampling settings (static).
        prompt_tokens: ``[B, P]`` int, left-padded; the last column must be real.
        prompt_mask: ``[B, P]``.
        key: PRNG key.
        use_cache: prefill a KV cache and decode one column per step (``True``), or
            recompute the full ``[B, P + C]`` sequence at every step (``False``).

    Returns:
        ``Generation`` with completion tokens, masks and log-probs, each ``[B, C]``.
    """
    model = Transformer(model_config)
    prompt_tokens = jnp.asarray(prompt_tokens, jnp.int32)
    prompt_mask = jnp.asarray(prompt_mask).astype(jnp.int32)
    batch, prompt_len = prompt_tokens.shape
    num_new = config.max_new_tokens
    keys = jax.random.split(key, num_new)
    finished = jnp.zeros((batch,), bool)
    if use_cache:
        cache = init_cache(model_config, batch, prompt_len + num_new)
        out = model.apply(params, prompt_tokens, prompt_mask, cache=cache)
        step_fn = functools.partial(_cached_step, params=params, model=model, config=config)
        # C − 1 steps of (sample, feed the token); the last token needs no forward pass
        carry, steps = jax.lax.scan(step_fn, (out.cache, out.logits[:, -1], finished), keys[:-1])
        last = _sample(carry[1], keys[-1], carry[2], config)
        steps = jax.tree_util.tree_map(
            lambda xs, x: jnp.concatenate([xs.T, x[:, None]], axis=1), steps, last
        )
    else:
        tokens = jnp.concatenate([prompt_tokens, jnp.zeros((batch, num_new), jnp.int32)], 1)
        mask = jnp.concatenate([prompt_mask, jnp.zeros((batch, num_new), jnp.int32)], 1)
        step_fn = functools.partial(
            _full_step, params=params, model=model, config=config, prompt_len=prompt_len
        )
        _, steps = jax.lax.scan(step_fn, (tokens, mask, finished), (keys, jnp.arange(num_new)))
        steps = jax.tree_util.tree_map(lambda x: x.T, steps)
    return Generation(
        prompt_tokens=prompt_tokens,
        prompt_mask=prompt_mask,
        tokens=steps.token,
        mask=steps.real,
        log_probs=steps.log_prob,
        sampler_log_probs=steps.sampler_log_prob,
        finished=steps.finished[:, -1],
    )


@functools.partial(jax.jit, static_argnames=("model_config",))
def score_completions(
    params,
    model_config: ModelConfig,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    completion_tokens: jax.Array,
    completion_mask: jax.Array,
    temperature: float | jax.Array = 1.0,
) -> CompletionScores:
    """Log-probs, entropies, values and reward of given completions in one forward pass.

    ``log π(y_t | x, y_<t) = log softmax(logits_{P+t−1} / τ)[y_t]``: the logits at the
    column before token ``t`` predict it, so the first completion token is scored from
    the last prompt column. ``values[:, t]`` is the value head at that same column,
    ``V(x, y_<t)``, the state in which ``y_t`` was chosen.

    Args:
        params: transformer parameters (actor, reference, reward model alike).
        model_config: the transformer's sizes (static).
        prompt_tokens: ``[B, P]`` left-padded.
        prompt_mask: ``[B, P]``.
        completion_tokens: ``[B, C]`` right-padded.
        completion_mask: ``[B, C]``; masked columns give 0.
        temperature: ``τ``, a scalar (may be traced).

    Returns:
        ``CompletionScores``: log_probs and entropy ``[B, C]``, values ``[B, C]`` (or
        None without a value head), reward ``[B]`` (or None without a reward head).
    """
    prompt_len = prompt_tokens.shape[1]
    tokens = jnp.concatenate([prompt_tokens, completion_tokens], axis=1).astype(jnp.int32)
    mask = jnp.concatenate([prompt_mask, completion_mask], axis=1).astype(jnp.int32)
    out = Transformer(model_config).apply(params, tokens, mask)
    num_new = completion_tokens.shape[1]
    before = slice(prompt_len - 1, prompt_len - 1 + num_new)
    logp_all = jax.nn.log_softmax(out.logits[:, before].astype(jnp.float32) / temperature, -1)
    real = completion_mask > 0
    log_probs = jnp.take_along_axis(logp_all, tokens[:, prompt_len:, None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    values = None if out.values is None else jnp.where(real, out.values[:, before], 0.0)
    return CompletionScores(
        log_probs=jnp.where(real, log_probs, 0.0),
        entropy=jnp.where(real, entropy, 0.0),
        values=values,
        reward=out.reward,
    )


def sequence_log_probs(
    params,
    model_config: ModelConfig,
    prompt_tokens: jax.Array,
    prompt_mask: jax.Array,
    completion_tokens: jax.Array,
    completion_mask: jax.Array,
    temperature: float | jax.Array = 1.0,
) -> jax.Array:
    """Per-token log-probs ``log π(y_t | x, y_<t)`` of given completions, 0 where masked.

    The same call serves actor, reference and old policy; sum over the last axis for
    the sequence log-probability ``log π(y | x)``. See ``score_completions``.

    Returns:
        ``[B, C]`` float32.
    """
    return score_completions(
        params,
        model_config,
        prompt_tokens,
        prompt_mask,
        completion_tokens,
        completion_mask,
        temperature,
    ).log_probs

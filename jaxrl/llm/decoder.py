"""The Llama/Qwen decoder trunk behind ``Transformer`` for the pretrained model types.

Shapes: ``B`` rows, ``T`` new tokens, ``S`` cache columns, ``H`` query heads, ``H_kv``
key/value heads (grouped-query attention: ``G = H / H_kv`` queries share a key), ``K``
head width, ``D`` width, ``V`` vocabulary, ``N`` layers.

Each block is pre-norm: ``x ← x + Attn(RMSNorm(x))``, ``x ← x + MLP(RMSNorm(x))`` with
the SwiGLU MLP ``W_down(silu(W_gate x) ⊙ W_up x)`` (Shazeer 2020,
https://arxiv.org/abs/2002.05202) and rotary positions on q and k (Su et al.,
https://arxiv.org/abs/2104.09864); Qwen3 normalises each head of q and k first. Module
and parameter names follow transformers' ``LlamaForCausalLM``, so checkpoints map one
tensor at a time (:mod:`jaxrl.llm.checkpoint`). The masks, positions and KV-cache
contract are those of :mod:`jaxrl.llm.transformer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.llm.layers import (
    NEG_INF,
    LayerModule,
    Linear,
    RMSNorm,
    apply_rope,
    rope_frequencies,
    write_kv_cache,
)

if TYPE_CHECKING:
    from jaxrl.llm.transformer import ModelConfig

__all__ = ["decoder_trunk"]


def _linear(cfg: ModelConfig, features: int, name: str, use_bias: bool) -> Linear:
    rank = cfg.lora_rank if name in cfg.lora_targets else 0
    return Linear(features, use_bias, cfg.dtype, rank, cfg.lora_alpha, cfg.lora_active, name=name)


class _DecoderAttention(LayerModule):
    """Grouped-query attention with rotary positions (Llama/Qwen); G = H / H_kv queries per key."""

    @nn.compact
    def __call__(self, x, positions, allowed, cache_kv, index):
        cfg = self.config
        b, t = x.shape[:2]
        h, hk, k_dim = cfg.num_heads, cfg.kv_heads, cfg.k_dim
        q = _linear(cfg, h * k_dim, "q_proj", cfg.qkv_bias)(x).reshape(b, t, h, k_dim)
        k = _linear(cfg, hk * k_dim, "k_proj", cfg.qkv_bias)(x).reshape(b, t, hk, k_dim)
        v = _linear(cfg, hk * k_dim, "v_proj", cfg.qkv_bias)(x).reshape(b, t, hk, k_dim)
        if cfg.qk_norm:
            q = RMSNorm(cfg.norm_eps, name="q_norm")(q)
            k = RMSNorm(cfg.norm_eps, name="k_norm")(k)
        inv_freq = rope_frequencies(k_dim, cfg.rope_theta, dict(cfg.rope_scaling) or None)
        q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
        if cache_kv is not None:
            cache_kv, k, v = write_kv_cache(cache_kv, self.layer, index, k, v)
            k, v = k.astype(q.dtype), v.astype(q.dtype)
        q = q.reshape(b, t, hk, h // hk, k_dim)
        scores = jnp.einsum("bqhgk,bshk->bhgqs", q, k).astype(jnp.float32)
        scores = scores / np.sqrt(k_dim).astype(np.float32)
        scores = jnp.where(allowed[:, None, None], scores, NEG_INF)
        weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
        out = jnp.einsum("bhgqs,bshk->bqhgk", weights, v).reshape(b, t, h * k_dim)
        return _linear(cfg, cfg.d_model, "o_proj", cfg.o_bias)(out), cache_kv


class _DecoderBlock(LayerModule):
    """Pre-norm block: ``x += Attn(RMSNorm(x))``, ``x += W_down(silu(W_gate x̂) ⊙ W_up x̂)``."""

    @nn.compact
    def __call__(self, x, positions, allowed, cache_kv, index):
        cfg = self.config
        normed = RMSNorm(cfg.norm_eps, name="input_layernorm")(x)
        attn, cache_kv = _DecoderAttention(cfg, self.layer, name="self_attn")(
            normed, positions, allowed, cache_kv, index
        )
        x = x + attn
        normed = RMSNorm(cfg.norm_eps, name="post_attention_layernorm")(x)
        mlp = _MLP(cfg, name="mlp")(normed)
        return x + mlp, cache_kv


class _MLP(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        gate = _linear(cfg, cfg.d_ff, "gate_proj", cfg.mlp_bias)(x)
        up = _linear(cfg, cfg.d_ff, "up_proj", cfg.mlp_bias)(x)
        return _linear(cfg, cfg.d_model, "down_proj", cfg.mlp_bias)(jax.nn.silu(gate) * up)


def decoder_trunk(cfg: ModelConfig, tokens, positions, allowed, cache_kv, index):
    """Embedding, blocks, final norm and LM head of a pretrained-type model.

    Called inside ``Transformer.__call__`` (a compact flax method), so the modules it
    creates are the Transformer's children: ``embed_tokens``, ``layers_<i>``, ``norm``,
    ``lm_head``.

    Returns:
        ``(hidden [B, T, D] float32, logits [B, T, V] float32, cache_kv)``.
    """
    embed = nn.Embed(cfg.vocab_size, cfg.d_model, param_dtype=jnp.float32, name="embed_tokens")
    x = embed(tokens).astype(jnp.dtype(cfg.dtype))
    block = nn.remat(_DecoderBlock) if cfg.remat else _DecoderBlock
    for layer in range(cfg.num_layers):
        x, cache_kv = block(cfg, layer, name=f"layers_{layer}")(
            x, positions, allowed, cache_kv, index
        )
    hidden = RMSNorm(cfg.norm_eps, name="norm")(x)
    if cfg.tie_embeddings:
        flat = hidden.reshape(-1, cfg.d_model)  # one [B·T, D] product (see layers.Linear)
        logits = (flat @ embed.embedding.astype(hidden.dtype).T).reshape(*hidden.shape[:-1], -1)
    else:
        logits = _linear(cfg, cfg.vocab_size, "lm_head", False)(hidden)
    return hidden.astype(jnp.float32), logits.astype(jnp.float32), cache_kv

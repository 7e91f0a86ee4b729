"""The trunk of jaxrl's small from-scratch model (``model_type="toy"``) behind ``Transformer``.

Shapes: ``B`` rows, ``T`` new tokens, ``S`` cache columns, ``H`` heads, ``K = D / H``
head width, ``D`` width, ``V`` vocabulary, ``N`` layers.

GPT-2-style: learned positions, pre-norm blocks ``x ← x + Attn(LN(x))``,
``x ← x + MLP(LN(x))`` with a GELU MLP, fused q/k/v and causal softmax attention
``softmax(q kᵀ / √K + mask) v`` (Vaswani et al. 2017, https://arxiv.org/abs/1706.03762;
pre-norm as in GPT-2, Radford et al. 2019). The masks, positions and KV-cache contract
are those of :mod:`jaxrl.llm.transformer`; the pretrained types run
:func:`jaxrl.llm.decoder.decoder_trunk` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.llm.layers import NEG_INF, LayerModule, write_kv_cache

if TYPE_CHECKING:
    from jaxrl.llm.transformer import ModelConfig

__all__ = ["toy_trunk"]


class _Attention(LayerModule):
    @nn.compact
    def __call__(self, x, allowed, cache_kv, index):
        cfg = self.config
        k_dim = cfg.d_model // cfg.num_heads
        qkv = nn.DenseGeneral((3, cfg.num_heads, k_dim), name="qkv")(x)  # [B, T, 3, H, K]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if cache_kv is not None:
            cache_kv, k, v = write_kv_cache(cache_kv, self.layer, index, k, v)
        scores = jnp.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(k_dim).astype(np.float32)
        scores = jnp.where(allowed[:, None], scores, NEG_INF)
        weights = jax.nn.softmax(scores, axis=-1)
        out = jnp.einsum("bhqs,bshk->bqhk", weights, v)
        return nn.DenseGeneral(cfg.d_model, axis=(-2, -1), name="out")(out), cache_kv


class _Block(LayerModule):
    @nn.compact
    def __call__(self, x, allowed, cache_kv, index):
        cfg = self.config
        attn, cache_kv = _Attention(cfg, self.layer, name="attn")(
            nn.LayerNorm(name="ln_attn")(x), allowed, cache_kv, index
        )
        x = x + attn
        h = nn.Dense(cfg.d_ff, name="mlp_in")(nn.LayerNorm(name="ln_mlp")(x))
        x = x + nn.Dense(cfg.d_model, name="mlp_out")(jax.nn.gelu(h))
        return x, cache_kv


def toy_trunk(cfg: ModelConfig, tokens, positions, allowed, cache_kv, index):
    """Embeddings, blocks, final LayerNorm and LM head of the toy model.

    Called inside ``Transformer.__call__`` (a compact flax method), so the modules it
    creates are the Transformer's children: ``embed``, ``pos_embed``, ``block_<i>``,
    ``ln_final``, ``lm_head``.

    Args:
        cfg: the ``ModelConfig``.
        tokens: ``[B, T]`` int32 ids.
        positions: ``[B, T]`` int32 positions (real tokens counted).
        allowed: ``[B, T, S]`` bool, which keys each query sees.
        cache_kv: ``(keys, values)`` each ``[N, B, S, H, K]``, or None.
        index: first cache column of the new tokens (0 without a cache).

    Returns:
        ``(hidden [B, T, D], logits [B, T, V], cache_kv)``.
    """
    x = nn.Embed(cfg.vocab_size, cfg.d_model, name="embed")(tokens)
    x = x + nn.Embed(cfg.max_len, cfg.d_model, name="pos_embed")(positions)
    for layer in range(cfg.num_layers):
        x, cache_kv = _Block(cfg, layer, name=f"block_{layer}")(x, allowed, cache_kv, index)
    hidden = nn.LayerNorm(name="ln_final")(x)
    logits = nn.Dense(cfg.vocab_size, name="lm_head")(hidden)
    return hidden, logits, cache_kv

"""Building blocks of the decoders: RMSNorm, rotary embeddings, LoRA linear layers, KV cache.

Shapes: ``B`` rows, ``T`` tokens, ``H`` heads, ``K`` head width, ``r`` LoRA rank.

Layer names and parameter shapes follow Hugging Face's Llama/Qwen modules (a linear
layer's ``kernel`` is the transpose of its ``weight``), so a checkpoint maps onto the
params pytree one tensor at a time (see :mod:`jaxrl.llm.checkpoint`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxrl.llm.transformer import ModelConfig

__all__ = [
    "RMSNorm",
    "Linear",
    "LayerModule",
    "rope_frequencies",
    "apply_rope",
    "write_kv_cache",
    "NEG_INF",
]

NEG_INF = (
    -1e30
)  # finite "minus infinity": exp underflows to exactly 0, rows of all-masked stay finite


class RMSNorm(nn.Module):
    """``y = w ⊙ x / √(mean(x²) + ε)``, computed in float32 and cast back to the input dtype.

    See Zhang & Sennrich, Root Mean Square Layer Normalization:
    https://arxiv.org/abs/1910.07467
    """

    eps: float = 1e-6

    @nn.compact
    def __call__(self, x):
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        # as in transformers: normalise in float32, cast, then scale in the weight's dtype
        return weight.astype(x.dtype) * normed.astype(x.dtype)


class Linear(nn.Module):
    """``y = x W (+ b) + (α / r)·(x A) B``: a dense layer with an optional LoRA adapter.

    The adapter (Hu et al., LoRA: https://arxiv.org/abs/2106.09685) adds ``A [in, r]``
    (random) and ``B [r, out]`` (zeros), so a fresh adapter leaves the layer unchanged.
    With ``lora_active`` False the adapter parameters are ignored: the same params
    pytree then gives the base model (the reference policy, no second copy).

    Attributes:
        features: output width.
        use_bias: add a bias ``b``.
        dtype: compute dtype; parameters are cast to it (float32 master copies stay
            float32 in the pytree).
        lora_rank: ``r``; 0 adds no adapter.
        lora_alpha: ``α``.
        lora_active: use the adapter when present.
    """

    features: int
    use_bias: bool = False
    dtype: str = "float32"
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_active: bool = True

    @nn.compact
    def __call__(self, x):
        dtype = jnp.dtype(self.dtype)
        init = nn.initializers.normal(0.02)
        kernel = self.param("kernel", init, (x.shape[-1], self.features), jnp.float32)
        lead = x.shape[:-1]
        # Rows flattened to one [B·T, in] matrix: the weight gradient is then one plain
        # matrix product. On [B, T, in] XLA:CPU first copies the activation gradient into a
        # transposed layout, which cost about as much as all the products of a backward pass.
        x = x.astype(dtype).reshape(-1, x.shape[-1])
        y = x @ kernel.astype(dtype)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(dtype)
        if self.lora_rank > 0 and self.lora_active:
            a_init = nn.initializers.normal(1.0 / math.sqrt(x.shape[-1]))
            a = self.param("lora_a", a_init, (x.shape[-1], self.lora_rank), jnp.float32)
            b = self.param("lora_b", nn.initializers.zeros, (self.lora_rank, self.features))
            scale = self.lora_alpha / self.lora_rank
            y = y + ((x @ a.astype(dtype)) @ b.astype(dtype)) * jnp.asarray(scale, dtype)
        return y.reshape(*lead, self.features)


class LayerModule(nn.Module):
    """Base of a module inside transformer layer ``layer`` (its attention, its block): the
    model's sizes and the layer's index, which picks its slot of the KV cache."""

    config: ModelConfig
    layer: int


def rope_frequencies(head_dim: int, theta: float, scaling: dict | None = None) -> np.ndarray:
    """Inverse frequencies ``θ^(−2i/K)``, ``i < K/2``, with an optional Llama 3 / linear scaling.

    Llama 3 scaling (``rope_type = "llama3"``) keeps high frequencies, divides low ones
    by ``factor`` and interpolates between, with wavelength bounds
    ``L/low_freq_factor`` and ``L/high_freq_factor`` (``L`` the original context).
    See Su et al., RoFormer: https://arxiv.org/abs/2104.09864

    Returns:
        ``[K/2]`` float64 numpy array (computed once, at trace time).
    """
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float64) / head_dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old_len / low, inv / factor, inv)
        smooth = (old_len / wavelen - low) / (high - low)
        mid = (1 - smooth) * scaled / factor + smooth * scaled
        is_mid = (wavelen >= old_len / high) & (wavelen <= old_len / low)
        return np.where(is_mid, mid, scaled)
    raise ValueError(f"rope_scaling type {kind!r} is not supported (default, linear, llama3)")


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: np.ndarray) -> jax.Array:
    """Rotates ``x [B, T, H, K]`` by ``positions [B, T]`` (the "rotate half" layout of Llama).

    ``x' = x·cos(pθ) + rotate_half(x)·sin(pθ)`` with ``rotate_half([a, b]) = [−b, a]``.
    """
    angles = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq, jnp.float32)
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]  # [B, T, 1, K]
    cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def write_kv_cache(cache_kv, layer: int, index, k: jax.Array, v: jax.Array):
    """Writes one layer's new keys and values into the stacked cache arrays.

    Args:
        cache_kv: ``(keys, values)``, each ``[N, B, S, H_kv, K]`` for all ``N`` layers.
        layer: the layer's index (static).
        index: ``[]`` int, the first cache column of the ``T`` new tokens.
        k: ``[B, T, H_kv, K]`` new keys.
        v: ``[B, T, H_kv, K]`` new values.

    Returns:
        ``(cache_kv, keys, values)``: the updated pair and this layer's ``[B, S, H_kv, K]``
        keys and values over every column.
    """
    # write into the stacked [N, B, S, H, K] arrays, not per-layer copies, so that XLA
    # updates the cache in place inside the decoding loop
    keys, values = cache_kv
    start = (layer, 0, index, 0, 0)
    keys = jax.lax.dynamic_update_slice(keys, k[None].astype(keys.dtype), start)
    values = jax.lax.dynamic_update_slice(values, v[None].astype(values.dtype), start)
    return (keys, values), keys[layer], values[layer]

"""A small decoder-only transformer used as policy, critic and reward model.

Shapes: ``B`` batch rows, ``T`` tokens in this call, ``S`` columns of the KV
cache, ``V`` vocabulary size, ``D`` model width, ``H`` heads, ``K = D / H``
head width, ``N`` layers.

Layout (a contract that generation, SFT, DPO, GRPO and RLHF share): arrays are
batch-major ``[B, T]`` (sequences, not environment rollouts). A row is a left-padded
prompt followed by a right-padded completion, and ``mask`` is 1 on real tokens, 0 on
padding. Positions count real tokens only (``position = cumsum(mask) − 1``), and a
query attends to the real keys at or before its own column, so the amount of padding
on either side changes no output at a real position.

The trunk is the toy model's (:mod:`jaxrl.llm.toy_decoder`: pre-norm blocks
``x ← x + Attn(LN(x))``, ``x ← x + MLP(LN(x))`` with causal softmax attention
``softmax(q kᵀ / √K + mask) v``; Vaswani et al. 2017, https://arxiv.org/abs/1706.03762)
or a pretrained type's (:mod:`jaxrl.llm.decoder`: Llama/Qwen).
Heads on the final hidden state ``h``: logits ``W_lm h``; an optional per-token value
``w_v · h`` (the RLHF critic); an optional scalar reward ``w_r · h`` read at the last
real token of each row (the reward model).

The KV cache is an explicit pytree (``KVCache``) passed in and returned, so decoding
stays a pure function: a call with ``T`` new tokens writes them at columns
``[length, length + T)`` of the cache and attends over all written columns.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxrl.llm.decoder import decoder_trunk
from jaxrl.llm.toy_decoder import toy_trunk

__all__ = [
    "ModelConfig",
    "ModelOutput",
    "KVCache",
    "Transformer",
    "init_params",
    "init_cache",
    "positions_from_mask",
    "last_token_index",
    "merge_params",
    "save_model",
    "load_model",
]

MODEL_TYPES = ("toy", "llama", "qwen2", "qwen3")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes and architecture of the transformer. Frozen and hashable: a static jit argument.

    ``model_type = "toy"`` (the default) is jaxrl's small from-scratch model: learned
    positions, LayerNorm, GELU MLP, fused q/k/v. ``"llama"``, ``"qwen2"`` and ``"qwen3"``
    are the Hugging Face decoders (rotary positions, RMSNorm, SwiGLU MLP, grouped-query
    attention), usually built by :func:`jaxrl.llm.load_pretrained` from a ``config.json``.

    Attributes:
        vocab_size: number of token ids ``V``.
        max_len: most positions a sequence may have (prompt + completion): the size of
            the learned position table (toy) or ``max_position_embeddings``.
        d_model: width ``D``.
        num_heads: attention heads ``H``; must divide ``d_model`` unless ``head_dim`` is set.
        num_layers: transformer blocks ``N``.
        d_ff: hidden width of each block's MLP.
        value_head: add a per-token scalar value head (critic).
        reward_head: add a scalar reward head read at the last real token.
        model_type: "toy", "llama", "qwen2" or "qwen3".
        num_kv_heads: key/value heads (grouped-query attention); 0 means ``num_heads``.
        head_dim: per-head width ``K``; 0 means ``d_model // num_heads``.
        norm_eps: ε of RMSNorm (pretrained types).
        rope_theta: rotary base θ.
        rope_scaling: the ``rope_scaling`` dict of config.json as sorted (key, value) pairs.
        qkv_bias: biases on the q/k/v projections (Qwen2; Llama's ``attention_bias``).
        o_bias: bias on the attention output projection (Llama's ``attention_bias``).
        mlp_bias: biases in the MLP (Llama's ``mlp_bias``).
        qk_norm: RMSNorm over each head of q and k before the rotation (Qwen3).
        tie_embeddings: the LM head is the transposed token embedding.
        dtype: compute dtype, "float32" or "bfloat16" (params may be float32 master copies).
        remat: rematerialise each block in the backward pass (``jax.checkpoint``).
        lora_rank: LoRA rank ``r`` on the ``lora_targets`` projections; 0 adds none.
        lora_alpha: LoRA ``α`` (the update is scaled by ``α / r``).
        lora_targets: projection names that get adapters (q/k/v/o_proj, gate/up/down_proj).
        lora_active: use the adapters; False gives the base model from the same params.
        hf_extra: other config.json entries as sorted (key, JSON text) pairs, written back
            by ``save_pretrained``.
    """

    vocab_size: int = 32
    max_len: int = 32
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    value_head: bool = False
    reward_head: bool = False
    model_type: str = "toy"
    num_kv_heads: int = 0
    head_dim: int = 0
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: tuple = ()
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = False
    dtype: str = "float32"
    remat: bool = False
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_targets: tuple = LORA_TARGETS
    lora_active: bool = True
    hf_extra: tuple = ()

    def __post_init__(self):
        for name in ("rope_scaling", "lora_targets", "hf_extra"):  # JSON gives lists
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        for name in ("vocab_size", "max_len", "d_model", "num_heads", "num_layers", "d_ff"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(
                f"ModelConfig.model_type {self.model_type!r} is not supported; "
                f"supported: {', '.join(MODEL_TYPES)}"
            )
        if not self.head_dim and self.d_model % self.num_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if self.num_heads % self.kv_heads:
            raise ValueError(
                f"ModelConfig.num_heads ({self.num_heads}) must be divisible by "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"ModelConfig.dtype must be float32 or bfloat16, got {self.dtype!r}")
        bad = sorted(set(self.lora_targets) - set(LORA_TARGETS))
        if bad:
            raise ValueError(f"ModelConfig.lora_targets {bad} unknown; allowed: {LORA_TARGETS}")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ValueError(f"ModelConfig.lora_rank must be an int >= 0, got {self.lora_rank!r}")
        if self.lora_rank and self.model_type == "toy":
            raise ValueError("ModelConfig.lora_rank needs a pretrained model_type (llama/qwen)")

    @property
    def kv_heads(self) -> int:
        """Key/value heads (``num_heads`` without grouped-query attention)."""
        return self.num_kv_heads or self.num_heads

    @property
    def k_dim(self) -> int:
        """Per-head width ``K``."""
        return self.head_dim or self.d_model // self.num_heads

    def replace(self, **changes) -> ModelConfig:
        """Returns a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


def _as_tuple(value):
    """Lists (from JSON) as tuples, recursively, so a config stays hashable."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


class KVCache(NamedTuple):
    """Keys and values of every layer for the columns decoded so far."""

    keys: jax.Array  # [N, B, S, H, K]
    values: jax.Array  # [N, B, S, H, K]
    mask: jax.Array  # [B, S] 1 where a real token was written
    length: jax.Array  # [] int32, columns written so far


class ModelOutput(NamedTuple):
    """What one forward pass returns; heads that the config lacks are ``None``."""

    logits: jax.Array  # [B, T, V] next-token logits at each column
    hidden: jax.Array  # [B, T, D] final (normed) hidden state
    values: jax.Array | None  # [B, T] value head, or None
    reward: jax.Array | None  # [B] reward head at the last real token, or None
    cache: KVCache | None  # the updated cache, or None without one


def positions_from_mask(mask: jax.Array, offset: jax.Array | int = 0) -> jax.Array:
    """Position of each token counting real tokens only: ``offset + cumsum(mask) − 1``, ≥ 0.

    Args:
        mask: ``[B, T]`` 1 on real tokens.
        offset: ``[B]`` or scalar, real tokens that came before (in a cache).

    Returns:
        ``[B, T]`` int32 positions (padding gets the position of the real token before it).
    """
    mask = jnp.asarray(mask).astype(jnp.int32)
    pos = jnp.cumsum(mask, axis=-1) - 1 + jnp.asarray(offset, jnp.int32)[..., None]
    return jnp.maximum(pos, 0)


def last_token_index(mask: jax.Array) -> jax.Array:
    """Column of the last real token of each row (0 for a row without any).

    Args:
        mask: ``[B, T]`` 1 on real tokens.

    Returns:
        ``[B]`` int32 column indices.
    """
    cols = jnp.arange(mask.shape[-1], dtype=jnp.int32)
    return jnp.maximum(jnp.max(jnp.where(mask > 0, cols, -1), axis=-1), 0)


class Transformer(nn.Module):
    """Decoder-only transformer with LM head and optional value and reward heads.

    Call: ``Transformer(cfg).apply(params, tokens, mask, cache=None) -> ModelOutput``.

    Args (of ``__call__``):
        tokens: ``[B, T]`` int token ids.
        mask: ``[B, T]`` 1 on real tokens, 0 on padding.
        cache: a ``KVCache`` (from ``init_cache``) to extend, or ``None`` to process
            the ``T`` tokens on their own.

    Returns:
        ``ModelOutput``; ``logits[:, t]`` predicts the token after column ``t``. With a
        cache, ``reward`` is read over the new columns only.
    """

    config: ModelConfig

    @nn.compact
    def __call__(self, tokens, mask, cache: KVCache | None = None) -> ModelOutput:
        cfg = self.config
        tokens = jnp.asarray(tokens, jnp.int32)
        mask = jnp.asarray(mask).astype(jnp.int32)
        num_new = tokens.shape[1]
        if cache is None:
            index = 0
            positions = positions_from_mask(mask)
            key_mask = mask
            q_cols = jnp.arange(num_new)
            k_cols = jnp.arange(num_new)
        else:
            index = cache.length
            positions = positions_from_mask(mask, jnp.sum(cache.mask, axis=-1))
            key_mask = jax.lax.dynamic_update_slice(
                cache.mask, mask.astype(cache.mask.dtype), (0, index)
            )
            q_cols = index + jnp.arange(num_new)
            k_cols = jnp.arange(cache.mask.shape[1])
        # a query sees the real keys at or before its own column
        allowed = (k_cols[None, :] <= q_cols[:, None])[None] & (key_mask[:, None, :] > 0)

        cache_kv = None if cache is None else (cache.keys, cache.values)
        trunk = toy_trunk if cfg.model_type == "toy" else decoder_trunk
        hidden, logits, cache_kv = trunk(cfg, tokens, positions, allowed, cache_kv, index)
        values = reward = None
        if cfg.value_head:
            values = nn.Dense(1, kernel_init=nn.initializers.zeros, name="value_head")(hidden)
            values = values[..., 0]
        if cfg.reward_head:
            scores = nn.Dense(1, kernel_init=nn.initializers.zeros, name="reward_head")(hidden)
            last = last_token_index(mask)
            reward = jnp.take_along_axis(scores[..., 0], last[:, None], axis=1)[:, 0]
        new_cache = None
        if cache is not None:
            new_cache = KVCache(
                keys=cache_kv[0],
                values=cache_kv[1],
                mask=key_mask,
                length=jnp.asarray(index + num_new, jnp.int32),
            )
        return ModelOutput(logits, hidden, values, reward, new_cache)


@functools.partial(jax.jit, static_argnums=(0,))
def init_params(config: ModelConfig, key: jax.Array) -> dict:
    """Initial parameters ``{"params": ...}`` of ``Transformer(config)`` (compiled)."""
    tokens = jnp.zeros((1, 2), jnp.int32)
    return Transformer(config).init(key, tokens, jnp.ones((1, 2), jnp.int32))


def init_cache(config: ModelConfig, batch_size: int, num_columns: int) -> KVCache:
    """An empty KV cache of ``num_columns`` columns (prompt + new tokens) per row.

    Returns:
        ``KVCache`` with zero keys and values ``[N, B, S, H, K]``, zero mask ``[B, S]``
        and ``length = 0``.
    """
    if num_columns > config.max_len:
        raise ValueError(
            f"num_columns ({num_columns}) must be <= ModelConfig.max_len ({config.max_len})"
        )
    shape = (config.num_layers, batch_size, num_columns, config.kv_heads, config.k_dim)
    dtype = jnp.dtype(config.dtype)
    return KVCache(
        keys=jnp.zeros(shape, dtype),
        values=jnp.zeros(shape, dtype),
        mask=jnp.zeros((batch_size, num_columns), jnp.int32),
        length=jnp.asarray(0, jnp.int32),
    )


def merge_params(target: dict, source: dict) -> dict:
    """Copies every leaf of ``source`` whose path exists in ``target`` into ``target``.

    Used to start a model with extra heads (value, reward) from a trained language
    model: the trunk and LM head come from ``source``, the new heads keep their init.

    Args:
        target: parameters of the model to fill (e.g. freshly initialised with heads).
        source: trained parameters (e.g. an SFT model without those heads).

    Returns:
        A new pytree shaped like ``target``.
    """
    if isinstance(target, dict):
        return {
            k: merge_params(v, source[k]) if isinstance(source, dict) and k in source else v
            for k, v in target.items()
        }
    if np.shape(target) != np.shape(source):
        raise ValueError(
            f"parameter shapes differ: target {np.shape(target)}, source {np.shape(source)}"
        )
    return jnp.asarray(source, dtype=jnp.asarray(target).dtype)


def save_model(directory: str, params: dict, config: ModelConfig) -> None:
    """Writes ``params.msgpack`` (flax.serialization) and ``model_config.json`` into ``directory``.

    ``load_model(directory)`` reads both back; later stages (DPO, reward model, GRPO,
    RLHF) start from a directory written here.
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "params.msgpack"), "wb") as f:
        f.write(serialization.msgpack_serialize(jax.device_get(_plain(params))))
    with open(os.path.join(directory, "model_config.json"), "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)


def load_model(directory: str) -> tuple[dict, ModelConfig]:
    """Reads what ``save_model`` wrote.

    Returns:
        ``(params, config)`` with params as a nested dict of jax arrays.
    """
    cfg_path = os.path.join(directory, "model_config.json")
    if not os.path.exists(cfg_path):
        raise ValueError(f"directory {directory!r} holds no model_config.json (see save_model)")
    with open(cfg_path) as f:
        config = ModelConfig(**json.load(f))
    with open(os.path.join(directory, "params.msgpack"), "rb") as f:
        params = serialization.msgpack_restore(f.read())
    return jax.tree_util.tree_map(jnp.asarray, params), config


def _plain(tree):
    """Nested plain dicts (flax FrozenDict or dict) with numpy leaves."""
    if hasattr(tree, "items"):
        return {k: _plain(v) for k, v in tree.items()}
    return np.asarray(tree)

"""LoRA adapters on a loaded model: add, train only them, switch off, save, merge.

A projection ``W [in, out]`` gains ``A [in, r]`` (random) and ``B [r, out]`` (zeros):
``y = x W + (α / r)·(x A) B`` (Hu et al., LoRA: https://arxiv.org/abs/2106.09685). The
adapter parameters sit beside ``kernel`` in the same params pytree (``lora_a``,
``lora_b``), so every stage takes a LoRA model as it takes any other. The reference
policy is the same params with ``model_config.replace(lora_active=False)`` (no second
copy of the base weights), and ``merge_lora`` folds the adapters in for export.

Mixed precision: load the base in bfloat16 (``load_pretrained(path, "bfloat16")``);
the adapters are created in float32, so the optimiser state and updates of the only
trained parameters stay float32 (the master copies) while the matmuls run in bfloat16.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from safetensors.numpy import save_file

from jaxrl.llm.transformer import LORA_TARGETS, ModelConfig

__all__ = [
    "add_lora",
    "is_adapter",
    "adapter_labels",
    "only_adapters",
    "adapter_params",
    "reference_config",
    "merge_lora",
    "save_adapter",
]

_ADAPTER_LEAVES = ("lora_a", "lora_b")


def add_lora(
    model_config: ModelConfig,
    params: dict,
    key: jax.Array,
    rank: int = 8,
    alpha: float = 16.0,
    targets: tuple[str, ...] = LORA_TARGETS,
) -> tuple[ModelConfig, dict]:
    """Adds rank-``r`` adapters to the ``targets`` projections of every layer.

    ``A ~ N(0, 1/in)``, ``B = 0``: the new model computes exactly what the base does.

    Args:
        model_config: a pretrained-type config (llama, qwen2, qwen3).
        params: its ``{"params": ...}``.
        key: PRNG key for ``A``.
        rank: ``r`` ≥ 1.
        alpha: ``α``.
        targets: projection names (``q_proj`` … ``down_proj``).

    Returns:
        ``(config, params)`` with ``lora_rank``/``lora_alpha``/``lora_targets`` set and
        float32 ``lora_a``/``lora_b`` leaves added (placed like their kernel).
    """
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an int >= 1, got {rank!r}")
    config = model_config.replace(
        lora_rank=rank, lora_alpha=float(alpha), lora_targets=tuple(targets)
    )
    counter = [0]

    def visit(name, node):
        if not isinstance(node, dict):
            return node
        node = {k: visit(k, v) for k, v in node.items()}
        if name in config.lora_targets and "kernel" in node:
            kernel = node["kernel"]
            d_in, d_out = kernel.shape
            counter[0] += 1
            k = jax.random.fold_in(key, counter[0])
            a = jax.random.normal(k, (d_in, rank), jnp.float32) / np.sqrt(d_in)
            b = jnp.zeros((rank, d_out), jnp.float32)
            sharding = getattr(kernel, "sharding", None)
            if sharding is not None and hasattr(sharding, "mesh"):
                # the adapter follows the kernel's mesh, replicated (it is small)
                rep = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
                a, b = jax.device_put(a, rep), jax.device_put(b, rep)
            node["lora_a"], node["lora_b"] = a, b
        return node

    return config, visit(None, dict(params))


def is_adapter(path) -> bool:
    """Whether a ``tree_flatten_with_path`` path ends in an adapter leaf."""
    last = path[-1]
    return getattr(last, "key", getattr(last, "name", None)) in _ADAPTER_LEAVES


def adapter_labels(params) -> dict:
    """``"adapter"`` on LoRA leaves and ``"frozen"`` elsewhere; all ``"adapter"`` without LoRA.

    A params tree without adapters is trained whole, so the same optimiser serves
    full fine-tuning and LoRA.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    marks = [is_adapter(p) for p, _ in flat]
    if not any(marks):
        marks = [True] * len(flat)
    labels = ["adapter" if m else "frozen" for m in marks]
    return jax.tree_util.tree_unflatten(treedef, labels)


def only_adapters(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optimizer`` on the LoRA leaves, zero updates (and no state) on the base weights.

    A no-op wrapper for params without adapters (everything trains). Use it around a
    trainer's optimiser: ``only_adapters(optax.adamw(1e-4))``.
    """
    return optax.multi_transform(
        {"adapter": optimizer, "frozen": optax.set_to_zero()}, adapter_labels
    )


def adapter_params(params) -> dict:
    """The adapter leaves only, as ``{(path...): array}`` (what a LoRA run trains and saves)."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {tuple(k.key for k in p): v for p, v in flat if is_adapter(p)}


def reference_config(model_config: ModelConfig) -> ModelConfig:
    """The base model from the same params: adapters switched off."""
    return model_config.replace(lora_active=False)


def merge_lora(model_config: ModelConfig, params: dict) -> tuple[ModelConfig, dict]:
    """Folds each adapter into its kernel, ``W ← W + (α/r)·A B``, and drops the adapters.

    Returns:
        ``(config without LoRA, params)``; the kernels keep their dtype.
    """
    scale = model_config.lora_alpha / max(model_config.lora_rank, 1)

    def visit(node):
        if not isinstance(node, dict):
            return node
        out = {k: visit(v) for k, v in node.items() if k not in _ADAPTER_LEAVES}
        if "lora_a" in node and model_config.lora_active:
            kernel = node["kernel"]
            delta = jnp.asarray(node["lora_a"], jnp.float32) @ jnp.asarray(node["lora_b"])
            out["kernel"] = (kernel.astype(jnp.float32) + scale * delta).astype(kernel.dtype)
        return out

    return model_config.replace(lora_rank=0, lora_active=True), visit(dict(params))


def save_adapter(path: str, model_config: ModelConfig, params: dict) -> None:
    """Writes only the adapters: ``adapter_model.safetensors`` and ``adapter_config.json``.

    Names and layout follow PEFT (``base_model.model.<module>.lora_A.weight`` ``[r, in]``,
    ``lora_B.weight`` ``[out, r]``), so PEFT can load them on the Hugging Face model.
    """
    from jaxrl.llm.checkpoint import hf_name

    tensors = {}
    for p, leaf in adapter_params(params).items():
        p = p[1:] if p[0] == "params" else p  # the flax collection name
        module, _ = hf_name((*p[:-1], "kernel"))
        module = module.removesuffix(".weight")
        which = "lora_A" if p[-1] == "lora_a" else "lora_B"
        tensors[f"base_model.model.{module}.{which}.weight"] = np.ascontiguousarray(
            np.asarray(jax.device_get(leaf), np.float32).T
        )
    if not tensors:
        raise ValueError("save_adapter: params hold no LoRA adapters (see add_lora)")
    os.makedirs(path, exist_ok=True)
    save_file(tensors, os.path.join(path, "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": model_config.lora_rank,
        "lora_alpha": model_config.lora_alpha,
        "target_modules": list(model_config.lora_targets),
        "lora_dropout": 0.0,
        "bias": "none",
    }
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)

"""Hugging Face model directories in and out: ``load_pretrained``, ``save_pretrained``, ``forward``.

A directory holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). Tensors are read with the ``safetensors`` package
(no torch): each parameter is built by ``jax.make_array_from_callback`` on its target
sharding, and the callback reads only the slice a device holds (``get_slice``), so the
whole model never sits on one device first.

Names map one to one (see :func:`hf_name`): ``model.layers.3.self_attn.q_proj.weight``
is ``params["params"]["layers_3"]["self_attn"]["q_proj"]["kernel"]`` transposed (a
linear layer's kernel is ``[in, out]``, torch's weight ``[out, in]``).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import ml_dtypes
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from jaxrl.llm.lora import merge_lora
from jaxrl.llm.transformer import ModelConfig, Transformer, init_params

__all__ = ["load_pretrained", "save_pretrained", "forward", "config_from_hf", "hf_name"]

_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}
_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}
_IGNORED = ("rotary_emb.inv_freq",)  # buffers some old checkpoints carry
# config.json keys that ModelConfig fields hold; the others travel in ``hf_extra``
_CORE_KEYS = {
    "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
    "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "head_dim",
    "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters",
    "attention_bias", "mlp_bias", "tie_word_embeddings", "torch_dtype", "dtype",
    "transformers_version",
}  # fmt: skip


def config_from_hf(hf: dict, where: str = "config.json") -> ModelConfig:
    """A ``ModelConfig`` from the dict of a Hugging Face ``config.json``.

    Raises:
        ValueError: an unsupported ``model_type``, activation or sliding-window attention.
    """
    kind = hf.get("model_type")
    if kind not in _ARCHITECTURES:
        raise ValueError(
            f"{where}: model_type {kind!r} is not supported; supported: {', '.join(_ARCHITECTURES)}"
        )
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{where}: hidden_act {hf['hidden_act']!r} is not supported (silu)")
    if hf.get("use_sliding_window"):
        raise ValueError(f"{where}: use_sliding_window=true is not supported")
    rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = rope.pop("rope_theta", hf.get("rope_theta", 10000.0))
    if rope.get("rope_type", rope.get("type", "default")) == "default":
        rope = {}
    heads = hf["num_attention_heads"]
    attention_bias = bool(hf.get("attention_bias", False))
    extra = {k: json.dumps(v) for k, v in hf.items() if k not in _CORE_KEYS}
    try:
        return ModelConfig(
            vocab_size=hf["vocab_size"],
            max_len=hf.get("max_position_embeddings", 2048),
            d_model=hf["hidden_size"],
            num_heads=heads,
            num_layers=hf["num_hidden_layers"],
            d_ff=hf["intermediate_size"],
            model_type=kind,
            num_kv_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=float(theta),
            rope_scaling=tuple(sorted(rope.items())),
            qkv_bias=kind == "qwen2" or attention_bias,
            o_bias=kind != "qwen2" and attention_bias,
            mlp_bias=bool(hf.get("mlp_bias", False)),
            qk_norm=kind == "qwen3",
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            hf_extra=tuple(sorted(extra.items())),
        )
    except KeyError as e:
        raise ValueError(f"{where}: missing key {e.args[0]!r}") from None


def _hf_config(cfg: ModelConfig, dtype: str) -> dict:
    hf = {k: json.loads(v) for k, v in cfg.hf_extra}
    hf.update(
        architectures=[_ARCHITECTURES[cfg.model_type]],
        model_type=cfg.model_type,
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_ff,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.kv_heads,
        num_hidden_layers=cfg.num_layers,
        head_dim=cfg.k_dim,
        max_position_embeddings=cfg.max_len,
        rms_norm_eps=cfg.norm_eps,
        rope_theta=cfg.rope_theta,
        rope_scaling=dict(cfg.rope_scaling) or None,
        tie_word_embeddings=cfg.tie_embeddings,
        hidden_act="silu",
        torch_dtype=dtype,
    )
    if cfg.model_type != "qwen2":
        hf.update(attention_bias=cfg.o_bias, mlp_bias=cfg.mlp_bias)
    return hf


def hf_name(path: tuple[str, ...]) -> tuple[str, bool]:
    """The checkpoint tensor name of a params path, and whether it is stored transposed.

    ``("layers_0", "mlp", "up_proj", "kernel")`` → ``("model.layers.0.mlp.up_proj.weight", True)``.
    """
    *mods, leaf = path
    transposed = leaf == "kernel"
    leaf = {"kernel": "weight", "embedding": "weight"}.get(leaf, leaf)
    mods = [m.replace("layers_", "layers.") for m in mods]
    prefix = "" if mods == ["lm_head"] else "model."
    return prefix + ".".join([*mods, leaf]), transposed


def _base_shapes(cfg: ModelConfig) -> dict:
    """``{path: shape}`` of the checkpoint parameters of ``cfg`` (no heads, no adapters)."""
    base = cfg.replace(lora_rank=0, value_head=False, reward_head=False)
    tree = jax.eval_shape(lambda k: init_params(base, k), jax.random.PRNGKey(0))["params"]
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {tuple(k.key for k in path): leaf.shape for path, leaf in flat}


def _tensor_files(path: str) -> dict[str, str]:
    """``{tensor name: file}`` from the index of a sharded checkpoint or the single file."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: no 'weight_map' object")
        return {k: os.path.join(path, v) for k, v in weight_map.items()}
    single = os.path.join(path, "model.safetensors")
    if not os.path.exists(single):
        raise ValueError(
            f"{path}: holds neither model.safetensors nor model.safetensors.index.json"
        )
    return {name: single for name in _open(single).keys()}


@functools.lru_cache(maxsize=64)
def _open_cached(file: str, mtime: float):
    try:
        return safe_open(file, framework="numpy")
    except (SafetensorError, OSError) as e:
        raise ValueError(
            f"{file}: not a readable safetensors file (truncated or corrupt): {e}"
        ) from None


def _open(file: str):
    if not os.path.exists(file):
        raise ValueError(f"{file}: file is missing (named in model.safetensors.index.json)")
    return _open_cached(file, os.path.getmtime(file))


def _check_tensors(files: dict, shapes: dict, cfg: ModelConfig) -> dict:
    """``{path: (file, name, transposed)}``; every mismatch raises one line naming it."""
    wanted = {}
    for p, shape in shapes.items():
        name, transposed = hf_name(p)
        wanted[name] = (p, shape[::-1] if transposed else shape, transposed)
    for name, file in files.items():
        tied_head = name == "lm_head.weight" and cfg.tie_embeddings
        if name not in wanted and not tied_head and not name.endswith(_IGNORED):
            raise ValueError(
                f"{file}: unexpected tensor {name!r} (not in a {cfg.model_type} model "
                f"with this config.json)"
            )
    plan = {}
    for name, (p, shape, transposed) in wanted.items():
        if name not in files:
            raise ValueError(
                f"{next(iter(files.values()), 'checkpoint')}: tensor {name!r} is missing "
                f"(expected shape {list(shape)})"
            )
        found = tuple(_open(files[name]).get_slice(name).get_shape())
        if found != tuple(shape):
            raise ValueError(
                f"{files[name]}: tensor {name!r} has shape {list(found)}, expected {list(shape)}"
            )
        plan[p] = (files[name], name, transposed)
    return plan


def _nest(flat: dict) -> dict:
    tree: dict = {}
    for path, leaf in flat.items():
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = leaf
    return tree


def load_pretrained(path: str, dtype: str = "float32", sharding=None) -> tuple[ModelConfig, dict]:
    """Reads a Hugging Face model directory (Llama 3.x, Qwen2/2.5, Qwen3) without torch.

    Args:
        path: directory with ``config.json`` and ``model.safetensors`` or a sharded
            ``model.safetensors.index.json``.
        dtype: "float32" or "bfloat16": the dtype of the params and of the computation.
        sharding: ``sharding(path, shape) -> jax.sharding.Sharding`` for each parameter
            (see :func:`jaxrl.llm.sharding.fsdp_sharding`); None puts all on the first device.

    Returns:
        ``(model_config, params)``: a ``ModelConfig`` and ``{"params": ...}``, as
        :func:`jaxrl.llm.init_params` gives, usable by every stage.

    Raises:
        ValueError: one line naming the file, the tensor and what was expected (an
            unsupported model_type, missing or extra tensors, wrong shapes, a truncated file).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    cfg_file = os.path.join(path, "config.json")
    if not os.path.exists(cfg_file):
        raise ValueError(f"{path}: no config.json (not a Hugging Face model directory)")
    with open(cfg_file) as f:
        try:
            hf = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{cfg_file}: not valid JSON ({e})") from None
    cfg = config_from_hf(hf, cfg_file).replace(dtype=dtype)
    plan = _check_tensors(_tensor_files(path), _base_shapes(cfg), cfg)
    target = _DTYPES[dtype]
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    flat = {}
    for p, (file, name, transposed) in plan.items():
        tensor = _open(file).get_slice(name)
        shape = tuple(tensor.get_shape())[::-1] if transposed else tuple(tensor.get_shape())

        def read(index, tensor=tensor, transposed=transposed, file=file, name=name):
            try:
                block = tensor[tuple(index[::-1])].T if transposed else tensor[tuple(index)]
            except Exception as e:  # a short read of a truncated file
                raise ValueError(f"{file}: cannot read tensor {name!r}: {e}") from None
            return np.asarray(block).astype(target)

        where = sharding(p, shape) if sharding is not None else default
        flat[p] = jax.make_array_from_callback(shape, where, read)
    return cfg, {"params": _nest(flat)}


def save_pretrained(path: str, model_config: ModelConfig, params: dict) -> None:
    """Writes ``config.json`` and ``model.safetensors`` that transformers (and vLLM) load.

    LoRA adapters are merged into their base weights first (``W + (α/r)·A B``); value and
    reward heads are not part of a causal-LM checkpoint and are left out.

    Args:
        path: output directory (created).
        model_config: a pretrained-type config (llama, qwen2, qwen3).
        params: ``{"params": ...}`` of that config.
    """
    if model_config.model_type not in _ARCHITECTURES:
        raise ValueError(
            f"save_pretrained: model_type {model_config.model_type!r} has no Hugging Face "
            f"format; supported: {', '.join(_ARCHITECTURES)} (use save_model for the toy model)"
        )
    merged = merge_lora(model_config, params)[1]["params"]
    shapes = _base_shapes(model_config)
    tensors, dtype = {}, "float32"
    for p in shapes:
        node = merged
        for k in p:
            node = node[k]
        leaf = np.asarray(jax.device_get(node))
        dtype = "bfloat16" if leaf.dtype == ml_dtypes.bfloat16 else "float32"
        name, transposed = hf_name(p)
        tensors[name] = np.ascontiguousarray(leaf.T if transposed else leaf)
    os.makedirs(path, exist_ok=True)
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(_hf_config(model_config, dtype), f, indent=2)


@functools.partial(jax.jit, static_argnums=(0,))
def forward(model_config: ModelConfig, params: dict, tokens: jax.Array, mask: jax.Array):
    """Next-token logits ``[B, T, V]`` (float32) of ``tokens [B, T]`` with ``mask [B, T]``.

    Rows may be left-padded: positions count real tokens (``cumsum(mask) − 1``) and a
    query attends to the real keys at or before its column.
    """
    return Transformer(model_config).apply(params, tokens, mask).logits

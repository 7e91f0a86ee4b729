"""Pieces the LLM trainers share: optimiser, train state, data order, starting model.

A trainer (``sft``, ``reward_model``, ``dpo``) is a pure ``update(state, batch) ->
(state, metrics)``; ``make_chunk`` turns it into one compiled ``lax.scan`` over
``chunk`` updates, update ``t`` on the rows :func:`take_batch` gives for ``t`` (epoch-wise
shuffles of a dataset held on the device), and ``run_chunks`` hands that program to the
one host runner (:func:`jaxrl.llm.runner.run_stage`: evaluations, checkpoints, resume).
The same program runs every time, so it compiles once.

:func:`gradient_step` is their optimiser step (with LoRA only the adapters are
differentiated); their Configs' shared checks are in :mod:`jaxrl.llm.stage_config`.

``prepare_model`` gives every stage its starting model: fresh, a params pytree, a
``(params, ModelConfig)`` pair, a ``TrainResult``, a jaxrl model directory or a Hugging
Face model directory; optionally with LoRA adapters added (the base then stays frozen).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.llm.lora import add_lora, is_adapter, merge_lora
from jaxrl.llm.runner import (  # noqa: F401  (re-exported: trainers and run/llm.py import them here)
    NonFiniteLoss,
    StageInterrupted,
    batch_indices,
    run_stage,
)
from jaxrl.llm.stage_config import (  # noqa: F401  (re-exported: trainers import them here)
    StageConfig,
    check_lora_fields,
    check_task_fits,
    config_to_dict,
    default_model_config,
    freeze_options,
)
from jaxrl.llm.transformer import ModelConfig, init_params, merge_params

__all__ = [
    "TrainState",
    "TrainResult",
    "StageConfig",
    "default_model_config",
    "trainable_labels",
    "make_optimizer",
    "stage_optimizer",
    "gradient_step",
    "make_stage_update",
    "take_batch",
    "make_chunk",
    "compiled_chunk",
    "run_chunks",
    "train_chunks",
    "one_source",
    "prepare_model",
    "check_task_fits",
    "check_lora_fields",
    "freeze_options",
    "config_to_dict",
]


class TrainState(NamedTuple):
    """Parameters being trained and the optimiser's state."""

    params: Any
    opt_state: Any
    step: jax.Array  # [] int32


class TrainResult(NamedTuple):
    """What a trainer returns.

    ``metrics`` has one row per update (leading axis = update index, for metrics.csv);
    ``evals`` has one row per evaluation, with ``evals["step"]`` the update count at
    which it was taken; ``summary`` holds the final numbers (for summary.json).
    """

    params: Any
    model_config: ModelConfig
    metrics: dict[str, np.ndarray]  # each [num_steps]
    evals: dict[str, np.ndarray]  # each [num_evals]
    summary: dict[str, float]


def trainable_labels(params) -> Any:
    """``"train"``/``"frozen"`` per leaf: everything trains unless the params hold LoRA
    adapters; then the adapters and the new scalar heads (``value_head``, ``reward_head``,
    which have no base weights to keep) train and the base stays frozen."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    if not any(is_adapter(p) for p, _ in flat):
        return jax.tree_util.tree_unflatten(treedef, ["train"] * len(flat))

    def head(path):
        return any(getattr(k, "key", None) in ("value_head", "reward_head") for k in path)

    labels = ["train" if is_adapter(p) or head(p) else "frozen" for p, _ in flat]
    return jax.tree_util.tree_unflatten(treedef, labels)


def make_optimizer(
    learning_rate: float,
    num_steps: int,
    warmup_steps: int,
    weight_decay: float,
    max_grad_norm: float,
) -> optax.GradientTransformation:
    """AdamW after global-norm clipping, linear warm-up then cosine decay to 10 %.

    Only the leaves :func:`trainable_labels` marks ``"train"`` change (all of them
    without LoRA); frozen leaves get zero updates and no optimiser state.
    """
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        learning_rate,
        max(warmup_steps, 1),
        max(num_steps, warmup_steps + 1),
        end_value=0.1 * learning_rate,
    )
    inner = optax.chain(
        optax.clip_by_global_norm(max_grad_norm),
        optax.adamw(schedule, b1=0.9, b2=0.98, weight_decay=weight_decay),
    )
    return optax.multi_transform({"train": inner, "frozen": optax.set_to_zero()}, trainable_labels)


def stage_optimizer(config) -> optax.GradientTransformation:
    """:func:`make_optimizer` of a stage Config's ``learning_rate``, ``num_steps``,
    ``warmup_steps``, ``weight_decay`` and ``max_grad_norm`` (SFT, RM, DPO)."""
    return make_optimizer(
        config.learning_rate,
        config.num_steps,
        config.warmup_steps,
        config.weight_decay,
        config.max_grad_norm,
    )


def gradient_step(
    loss_fn: Callable, state: TrainState, optimizer: optax.GradientTransformation, *args
) -> tuple[TrainState, dict]:
    """One optimiser step on ``loss_fn(params, *args) -> (loss, metrics)``.

    Only the leaves :func:`trainable_labels` marks ``"train"`` are differentiated: with
    LoRA the frozen base weights get zero gradients without their backward products
    being computed (the optimiser zeroes frozen updates either way, so the new params
    are those of differentiating everything).

    Returns:
        ``(state, metrics)``: the next ``TrainState`` and the loss's metrics plus
        ``grad_norm``, the global norm of the trainable leaves' gradients.
    """
    leaves, treedef = jax.tree_util.tree_flatten(state.params)
    labels = jax.tree_util.tree_leaves(trainable_labels(state.params))
    trains = [label == "train" for label in labels]

    def fill(trainable, others):
        """The full leaf list: ``trainable`` at the trained leaves, ``others`` elsewhere."""
        it = iter(trainable)
        return [next(it) if t else o for t, o in zip(trains, others, strict=True)]

    def loss_of_trainable(trainable):
        return loss_fn(jax.tree_util.tree_unflatten(treedef, fill(trainable, leaves)), *args)

    trainable = [x for x, t in zip(leaves, trains, strict=True) if t]
    (_, metrics), grads = jax.value_and_grad(loss_of_trainable, has_aux=True)(trainable)
    grads = fill(grads, [jnp.zeros_like(x) for x in leaves])
    grads = jax.tree_util.tree_unflatten(treedef, grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**metrics, "grad_norm": optax.global_norm(grads)}
    return TrainState(params, opt_state, state.step + 1), metrics


def take_batch(data, key: jax.Array, step, batch_size: int):
    """The rows of update ``step``: ``data`` (pytree of ``[N, ...]``) at
    :func:`jaxrl.llm.runner.batch_indices` (epoch-wise shuffles by ``key``, no replacement)."""
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    idx = batch_indices(key, step, n, batch_size)
    return jax.tree_util.tree_map(lambda x: x[idx], data)


def _chunk_body(state, step, update, data, key, batch_size):
    return update(state, take_batch(data, key, step, batch_size))


def make_chunk(update: Callable, batch_size: int, chunk: int) -> Callable:
    """Compiled ``chunk_fn(state, data, key, start) -> (state, metrics [chunk])``.

    Update ``start + i`` (i < ``chunk``) trains on ``take_batch(data, key, start + i,
    batch_size)``: the data order is a function of the key and the update index only.

    Args:
        update: pure ``update(state, batch) -> (state, metrics)``.
        batch_size: rows per update.
        chunk: updates per call (static: it fixes the scan length).
    """

    def chunk_fn(state, data, key, start):
        body = functools.partial(
            _chunk_body, update=update, data=data, key=key, batch_size=batch_size
        )
        steps = jnp.asarray(start, jnp.int32) + jnp.arange(chunk, dtype=jnp.int32)
        return jax.lax.scan(body, state, steps)

    return jax.jit(chunk_fn)


@functools.lru_cache(maxsize=16)
def compiled_chunk(factory: Callable, config, model: ModelConfig) -> Callable:
    """``make_chunk(factory(config, model), config.batch_size, config.eval_every)``, kept:
    another run of the same config and model (a resume, a second seed) reuses the
    compiled program instead of compiling it again."""
    return make_chunk(factory(config, model), config.batch_size, config.eval_every)


def one_source(init_from, policy):
    """The starting model given as ``init_from`` or as ``policy`` (its other name)."""
    if init_from is not None and policy is not None:
        raise ValueError("give the starting model as init_from or as policy, not both")
    return policy if init_from is None else init_from


def _stage_update(state: TrainState, batch, loss_fn, model, optimizer, args):
    return gradient_step(loss_fn, state, optimizer, model, batch, *args)


def make_stage_update(loss_fn: Callable, config, model: ModelConfig, *args) -> Callable:
    """Pure ``update(state, batch) -> (state, metrics)``: a :func:`gradient_step` of
    :func:`stage_optimizer` on ``loss_fn(params, model, batch, *args)`` (SFT, RM, DPO)."""
    return functools.partial(
        _stage_update, loss_fn=loss_fn, model=model, optimizer=stage_optimizer(config), args=args
    )


def train_chunks(
    factory: Callable,
    config,
    model: ModelConfig,
    params,
    data,
    key: jax.Array,
    evaluate: Callable[[Any], dict[str, float]],
    progress_callback=None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> tuple[TrainState, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A fresh ``TrainState`` of ``params`` (and :func:`stage_optimizer`'s state) trained by
    ``config``'s compiled chunks of ``factory(config, model)`` updates on ``data`` (what
    SFT, RM and DPO share); returns :func:`run_chunks`' ``(state, metrics, evals)``."""
    state = TrainState(params, stage_optimizer(config).init(params), jnp.asarray(0, jnp.int32))
    return run_chunks(
        compiled_chunk(factory, config, model), state, data, key, config.num_steps,
        config.eval_every, evaluate, progress_callback, checkpoint_dir, resume,
    )  # fmt: skip


def run_chunks(
    chunk_fn: Callable,
    state: TrainState,
    data,
    key: jax.Array,
    num_steps: int,
    chunk: int,
    evaluate: Callable[[Any], dict[str, float]],
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> tuple[TrainState, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``num_steps // chunk`` chunks through :func:`jaxrl.llm.runner.run_stage`.

    ``evaluate(params)`` runs before the first chunk and after each; ``key`` orders the
    data (:func:`take_batch`); ``checkpoint_dir`` and ``resume`` as in ``run_stage``.

    Returns:
        ``(state, metrics, evals)``; metrics ``[num_steps]`` per key, evals ``[num_chunks + 1]``.
    """

    def advance(s, t):
        return chunk_fn(s, data, key, t)

    return run_stage(
        advance,
        state,
        num_updates=num_steps,
        eval_every=chunk,
        evaluate=lambda s: evaluate(s.params),
        updates_per_call=chunk,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress_callback=progress_callback,
    )


def _load(source) -> tuple[Any, ModelConfig]:
    """``(params, ModelConfig)`` of a pair, a TrainResult, or a jaxrl / Hugging Face directory."""
    from jaxrl.llm.rl_loop import resolve_model  # rl_loop imports this module

    loaded = resolve_model(source)
    return loaded.params, loaded.model_config


def prepare_model(
    owner: str,
    model: ModelConfig,
    source,
    key: jax.Array,
    lora_rank: int = 0,
    lora_alpha: float = 16.0,
    reward_head: bool = False,
) -> tuple[Any, ModelConfig]:
    """The starting ``(params, ModelConfig)`` of a stage.

    Args:
        owner: the config's name, for error messages.
        model: the config's model sizes (used when ``source`` is None or bare params).
        source: None (fresh parameters from ``key``), a params pytree (of ``model``), a
            ``(params, ModelConfig)`` pair, a ``TrainResult``, or a directory (jaxrl
            ``save_model``, a run directory, or a Hugging Face model). A loaded model
            replaces ``model``; adapters it carries are merged into its weights first.
        key: PRNG key for fresh parameters, a new head and LoRA's ``A``.
        lora_rank: > 0 adds adapters (``jaxrl.llm.lora.add_lora``); a pretrained-type
            model is required.
        lora_alpha: LoRA's α.
        reward_head: add a zero-initialised scalar reward head (the reward model).
    """
    if source is None:
        params = None
    elif isinstance(source, dict):
        params = source
    else:
        params, model = _load(source)
    if model.lora_rank and params is not None:
        model, params = merge_lora(model, params)
    if reward_head:
        # the trunk (and LM head) from ``params``, the head from a fresh init
        model = model.replace(reward_head=True)
        params = merge_params(init_params(model, key), params)
    elif params is None:
        params = init_params(model, key)
    if lora_rank:
        lora_key = jax.random.fold_in(key, 1)
        if model.model_type == "toy":
            raise ValueError(
                f"{owner}.lora_rank ({lora_rank}) needs a pretrained-type model (llama, qwen2, "
                "qwen3); the toy model trains whole (lora_rank=0)"
            )
        model, params = add_lora(model, params, lora_key, lora_rank, lora_alpha)
    return params, model

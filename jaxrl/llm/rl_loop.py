"""Pieces GRPO and RLHF-PPO share: loading earlier stages, evaluation, the step loop.

Shapes: ``B`` prompts, ``P`` prompt columns, ``C`` completion columns.

A trainer's step is one compiled program ``step(state, prompts, key) -> (state,
metrics)``; :func:`run_rl` calls it ``num_steps`` times on prompts sampled from the
task's training split, evaluates on held-out prompts every ``eval_every`` steps,
and returns per-step metrics (leading axis = step) and per-evaluation numbers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.sequence import kl_estimate
from jaxrl.llm.checkpoint import load_pretrained
from jaxrl.llm.generate import generate, score_completions
from jaxrl.llm.reward_model import reward_scores
from jaxrl.llm.runner import run_stage
from jaxrl.llm.tasks import Prompts, Task, make_task
from jaxrl.llm.training import take_batch
from jaxrl.llm.transformer import ModelConfig, load_model

__all__ = [
    "LoadedModel",
    "load_stage",
    "resolve_model",
    "resolve_task",
    "evaluate_rl",
    "run_rl",
    "timed_call",
]


class LoadedModel(NamedTuple):
    """A trained model read back from disk, with the task it was trained on (if recorded)."""

    params: Any
    model_config: ModelConfig
    task: Task | None


def _model_dir(path: str) -> str:
    """``path`` itself, or the sub-directory of a run directory holding model_config.json."""
    if os.path.exists(os.path.join(path, "model_config.json")):
        return path
    if os.path.isdir(path):
        for sub in ("model", "checkpoint", "checkpoints", "params"):
            cand = os.path.join(path, sub)
            if os.path.exists(os.path.join(cand, "model_config.json")):
                return cand
        for root, _, files in sorted(os.walk(path)):
            if "model_config.json" in files:
                return root
    raise ValueError(
        f"no trained model found under {path!r}: expected a model_config.json written by "
        "jaxrl.llm.save_model, in the directory or a sub-directory of it"
    )


def _recorded_task(path: str) -> Task | None:
    """The task named in ``path/config.json`` (fields ``task`` and ``task_options``), if any."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.exists(cfg_path):
        return None
    with open(cfg_path) as f:
        cfg = json.load(f)
    for d in (cfg, cfg.get("config", {})):
        if isinstance(d, dict) and isinstance(d.get("task"), str):
            options = d.get("task_options") or {}
            if isinstance(options, list):
                options = dict(options)
            return make_task(d["task"], **options)
    return None


def _is_hf_dir(path: str) -> bool:
    """A Hugging Face model directory: config.json beside safetensors weights."""
    files = ("model.safetensors", "model.safetensors.index.json")
    return os.path.exists(os.path.join(path, "config.json")) and any(
        os.path.exists(os.path.join(path, f)) for f in files
    )


def load_stage(path: str) -> LoadedModel:
    """Reads a model saved by an earlier stage (SFT, reward model): a model or run directory."""
    model_dir = _model_dir(path)
    params, model_config = load_model(model_dir)
    task = _recorded_task(path) or _recorded_task(model_dir)
    return LoadedModel(params, model_config, task)


def resolve_model(source) -> LoadedModel:
    """A ``LoadedModel`` from a path (a jaxrl model or run directory, or a Hugging Face
    model directory), a ``TrainResult`` or a ``(params, ModelConfig)`` pair."""
    if isinstance(source, LoadedModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if _is_hf_dir(path):
            model_config, params = load_pretrained(path)
            return LoadedModel(params, model_config, None)
        return load_stage(path)
    if hasattr(source, "params") and hasattr(source, "model_config"):
        return LoadedModel(source.params, source.model_config, None)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], ModelConfig):
        return LoadedModel(source[0], source[1], None)
    raise ValueError(
        "expected a model directory, a TrainResult or a (params, ModelConfig) pair, "
        f"got {type(source).__name__}"
    )


def resolve_task(config, task: Task | None, recorded: Task | None, default: str) -> Task:
    """The task a trainer runs on.

    In order: ``task`` if given; else the Config's ``task`` with its ``task_options``
    (the task recorded with the loaded model supplies the options when the names
    match and the Config gives none); else the recorded task; else ``default``.
    """
    if task is not None:
        return task
    if config.task:
        if recorded is not None and recorded.name == config.task and not config.task_options:
            return recorded
        return make_task(config.task, **dict(config.task_options))
    return recorded or make_task(default)


def evaluate_rl(
    params,
    model: ModelConfig,
    ref_params,
    ref_model: ModelConfig,
    task: Task,
    prompts: Prompts,
    key,
    completion_len: int,
    reward: tuple[Any, ModelConfig] | None = None,
) -> dict[str, float]:
    """Held-out numbers of a policy: task score and, for verifiable tasks, greedy accuracy.

    Completions are sampled at temperature 1 for ``score`` (mean true score),
    ``sampled_accuracy`` (verifiable tasks: the share of exact answers), ``kl_ref``
    (mean over prompts of Σₜ log π(yₜ) − log π_ref(yₜ), an unbiased estimate of the
    sequence KL(π ‖ π_ref)), ``kl_ref_k3`` (token-mean k3), ``length`` and, given a
    reward model, ``rm_score``. Verifiable tasks add ``accuracy``, the share of exact
    greedy answers.
    """
    out = _eval_sampled(params, model, ref_params, ref_model, task, prompts, key, completion_len)
    if reward is not None:
        out["rm_score"] = _eval_rm(reward[0], reward[1], prompts, out.pop("_tokens"), out["_mask"])
    out.pop("_tokens", None)
    out.pop("_mask", None)
    out = {k: float(v) for k, v in out.items()}
    if not getattr(task, "has_score", True):
        del out["score"], out["sampled_accuracy"]
        return out
    if task.kind == "verifiable":
        out["accuracy"] = float(_eval_greedy(params, model, task, prompts, completion_len))
    else:
        del out["sampled_accuracy"]
    return out


def _eval_sampled(params, model, ref_params, ref_model, task, prompts, key, completion_len):
    gen = generate(
        params,
        model,
        task.generation_config(completion_len),
        prompts.tokens,
        prompts.mask,
        key,
    )
    ref = score_completions(
        ref_params, ref_model, prompts.tokens, prompts.mask, gen.tokens, gen.mask
    )
    mask = gen.mask.astype(jnp.float32)
    k3 = kl_estimate(gen.log_probs, ref.log_probs, "k3")
    # a preference dataset without a reward has no score: NaN, dropped by evaluate_rl
    has_score = getattr(task, "has_score", True)
    score = (
        task.score(prompts, gen.tokens, gen.mask) if has_score else jnp.full(mask.shape[0], jnp.nan)
    )
    return {
        "score": jnp.mean(score),
        "sampled_accuracy": jnp.mean(score >= 1.0),
        "kl_ref": jnp.mean(jnp.sum((gen.log_probs - ref.log_probs) * mask, axis=-1)),
        "kl_ref_k3": jnp.sum(k3 * mask) / jnp.maximum(jnp.sum(mask), 1.0),
        "length": jnp.mean(jnp.sum(mask, axis=-1)),
        "_tokens": gen.tokens,
        "_mask": gen.mask,
    }


_eval_sampled = jax.jit(_eval_sampled, static_argnums=(1, 3, 4, 7))


_rm_scores = jax.jit(reward_scores, static_argnums=1)


def _eval_rm(params, model, prompts, tokens, mask):
    return _rm_scores(params, model, prompts.tokens, prompts.mask, tokens, mask).mean()


def _eval_greedy(params, model, task, prompts, completion_len):
    gen = generate(
        params,
        model,
        task.generation_config(completion_len, greedy=True),
        prompts.tokens,
        prompts.mask,
        jax.random.PRNGKey(0),
    )
    return jnp.mean(task.score(prompts, gen.tokens, gen.mask) >= 1.0)


_eval_greedy = jax.jit(_eval_greedy, static_argnums=(1, 2, 4))


def _step_key(keys, t):
    # the step key of update t as the loop before checkpoints drew it: split(split(key)[t])[1]
    return jax.random.split(keys[t])[1]


_take_batch = jax.jit(take_batch, static_argnums=3)


def run_rl(
    step_fn: Callable,
    state,
    prompt_data: Prompts,
    key,
    num_steps: int,
    num_prompts: int,
    eval_every: int,
    evaluate: Callable[[Any], dict[str, float]],
    progress_callback: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``num_steps`` steps of ``step_fn(state, prompts, key) -> (state, metrics)``
    through :func:`jaxrl.llm.runner.run_stage`.

    Step ``t`` takes the ``num_prompts`` prompts ``take_batch(prompt_data, data_key, t)``
    (epoch-wise shuffles, no replacement; ``data_key = fold_in(key, 0)``) and the key
    ``split(split(key, num_steps)[t])[1]``: both functions of ``t``, so a run resumed
    from a checkpoint continues exactly. ``evaluate(state)`` runs before the first step,
    after every ``eval_every`` steps and after the last; ``progress_callback(step,
    numbers)`` gets the latest evaluation and the mean step metrics since the previous one.

    Returns:
      ``(state, metrics, evals)``: metrics ``[num_steps]`` per key (plus ``step_time``,
      the wall time of each step), evals ``[num_evals]`` per key with ``step`` and
      ``wall_time``.
    """
    keys = jax.random.split(key, num_steps)
    data_key = jax.random.fold_in(key, 0)

    def advance(s, t):
        prompts = _take_batch(prompt_data, data_key, t, num_prompts)
        return step_fn(s, prompts, _step_key(keys, t))

    return run_stage(
        advance,
        state,
        num_updates=num_steps,
        eval_every=eval_every,
        evaluate=evaluate,
        time_calls=True,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress_callback=progress_callback,
    )


_jitted: dict[Callable, Callable] = {}


def timed_call(times: dict, name: str, fn: Callable, *args):
    """Runs ``jax.jit(fn)(*args)`` to completion and adds its wall time to ``times[name]``.

    The jitted ``fn`` is kept, so a stage compiles once; time the second call on.
    """
    jitted = _jitted.setdefault(fn, jax.jit(fn))
    start = time.perf_counter()
    out = jax.block_until_ready(jitted(*args))
    times[name] = times.get(name, 0.0) + time.perf_counter() - start
    return out

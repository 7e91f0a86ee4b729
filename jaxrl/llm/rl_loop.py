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
from jaxrl.llm.generate import GenerationConfig, generate, score_completions
from jaxrl.llm.reward_model import reward_scores
from jaxrl.llm.tasks import Prompts, Task, make_task
from jaxrl.llm.training import StageInterrupted, check_finite, sample_batch, stack_rows
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


def load_stage(path: str) -> LoadedModel:
    """Reads a model saved by an earlier stage (SFT, reward model): a model or run directory."""
    model_dir = _model_dir(path)
    params, model_config = load_model(model_dir)
    task = _recorded_task(path) or _recorded_task(model_dir)
    return LoadedModel(params, model_config, task)


def resolve_model(source) -> LoadedModel:
    """A ``LoadedModel`` from a path, a ``TrainResult`` or a ``(params, ModelConfig)`` pair."""
    if isinstance(source, LoadedModel):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_stage(os.fspath(source))
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
    if task.kind == "verifiable":
        out["accuracy"] = float(_eval_greedy(params, model, task, prompts, completion_len))
    else:
        del out["sampled_accuracy"]
    return out


def _eval_sampled(params, model, ref_params, ref_model, task, prompts, key, completion_len):
    gen = generate(
        params,
        model,
        GenerationConfig(max_new_tokens=completion_len),
        prompts.tokens,
        prompts.mask,
        key,
    )
    ref = score_completions(
        ref_params, ref_model, prompts.tokens, prompts.mask, gen.tokens, gen.mask
    )
    mask = gen.mask.astype(jnp.float32)
    k3 = kl_estimate(gen.log_probs, ref.log_probs, "k3")
    score = task.score(prompts, gen.tokens, gen.mask)
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
        GenerationConfig(max_new_tokens=completion_len, greedy=True),
        prompts.tokens,
        prompts.mask,
        jax.random.PRNGKey(0),
    )
    return jnp.mean(task.score(prompts, gen.tokens, gen.mask) >= 1.0)


_eval_greedy = jax.jit(_eval_greedy, static_argnums=(1, 2, 4))


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
) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Runs ``num_steps`` steps of ``step_fn(state, prompts, key) -> (state, metrics)``.

    Each step draws ``num_prompts`` prompts (with replacement) from ``prompt_data``.
    ``evaluate(state)`` runs before the first step and after every ``eval_every``
    steps (and after the last); ``progress_callback(step, numbers)`` gets the step
    count with the latest evaluation and the mean step metrics since the previous one.

    Returns:
      ``(state, metrics, evals)``: metrics ``[num_steps]`` per key (plus ``step_time``,
      the wall time of each step), evals ``[num_evals]`` per key with ``step`` and
      ``wall_time``.
    """
    sample = jax.jit(sample_batch, static_argnums=2)
    rows, evals, pending = [], [], []
    evals.append({"step": 0, "wall_time": 0.0, **evaluate(state)})
    start = time.perf_counter()
    try:
        for i, k in enumerate(jax.random.split(key, num_steps)):
            data_key, step_key = jax.random.split(k)
            prompts = sample(prompt_data, data_key, num_prompts)
            t0 = time.perf_counter()
            state, m = step_fn(state, prompts, step_key)
            jax.block_until_ready(state)  # the step's time, without copying its metrics yet
            pending.append((m, time.perf_counter() - t0))
            if (i + 1) % eval_every == 0 or i + 1 == num_steps:
                # Metrics leave the device once per evaluation interval, not once per step.
                host = jax.device_get([p[0] for p in pending])
                chunk = [
                    {**{n: float(v) for n, v in h.items()}, "step_time": t}
                    for h, (_, t) in zip(host, pending, strict=True)
                ]
                rows.extend(chunk)
                check_finite([{n: np.asarray([r[n] for r in rows]) for n in rows[0]}], i + 1)
                ev = {"step": i + 1, "wall_time": time.perf_counter() - start, **evaluate(state)}
                evals.append(ev)
                if progress_callback is not None:
                    means = {n: float(np.mean([r[n] for r in chunk])) for n in chunk[0]}
                    progress_callback(i + 1, {**means, **ev})
                pending = []
    except KeyboardInterrupt:
        raise StageInterrupted(stack_rows(rows)) from None
    metrics = {n: np.asarray([r[n] for r in rows]) for n in rows[0]}
    ev_out = {n: np.asarray([e[n] for e in evals]) for n in evals[0]}
    return state, metrics, ev_out


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

"""Checkpoints and resume: the data order, and a resumed run equal to an uninterrupted one.

A run interrupted after k evaluations and resumed from its checkpoint must end with the
same params, per-update metrics and evaluations, bit for bit, as one that ran through
(``wall_time`` and ``step_time`` excepted: they are clocks).
"""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.llm import (
    DPOConfig,
    NonFiniteLoss,
    SFTConfig,
    StageInterrupted,
    batch_indices,
    init_params,
    load_checkpoint,
    run_stage,
    save_checkpoint,
    train_dpo,
    train_sft,
)
from jaxrl.llm.runner import CHECKPOINT_FILE

from .conftest import TINY
from .test_grpo import MICRO

CLOCKS = ("wall_time", "step_time")


def assert_same_run(a, b):
    """Params, metrics and evals equal bit for bit (clock columns aside)."""
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert a.metrics.keys() == b.metrics.keys() and a.evals.keys() == b.evals.keys()
    for k in a.metrics:
        if k not in CLOCKS:
            np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    for k in a.evals:
        if k not in CLOCKS:
            np.testing.assert_array_equal(a.evals[k], b.evals[k], err_msg=k)


def keep_checkpoint_at(step, source, target):
    """A progress callback that copies the checkpoint written at ``step`` to ``target``:
    what a run killed right after that evaluation leaves behind."""

    def callback(done, numbers):
        if done == step:
            os.makedirs(target, exist_ok=True)
            shutil.copy(os.path.join(source, CHECKPOINT_FILE), target)

    return callback


def test_first_epoch_visits_every_row_once():
    key, n, b = jax.random.PRNGKey(3), 10, 3
    rows = jax.jit(batch_indices, static_argnums=(2, 3))  # traced step: one compile
    idx = np.concatenate([np.asarray(rows(key, jnp.int32(t), n, b)) for t in range(6)])
    perm0 = np.asarray(jax.random.permutation(jax.random.fold_in(key, 0), n))
    perm1 = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1), n))
    np.testing.assert_array_equal(idx[:10], perm0)  # epoch 0: every row once
    np.testing.assert_array_equal(np.sort(idx[:10]), np.arange(10))
    np.testing.assert_array_equal(idx[10:18], perm1[:8])  # update 3 straddles the epochs
    assert not np.array_equal(perm0, perm1)
    # a batch larger than the dataset spans several epochs, each a permutation
    big = np.asarray(rows(key, jnp.int32(1), 4, 10))  # positions 10..19: epochs 2, 3, 4
    perms = [np.asarray(jax.random.permutation(jax.random.fold_in(key, e), 4)) for e in (2, 3, 4)]
    np.testing.assert_array_equal(big, np.concatenate(perms)[2:12])


def _counter_stage(checkpoint_dir=None, resume=False, callback=None, poison_at=None):
    """A cheap stage: state = running sum of a data stream, metrics = the sum."""

    @jax.jit
    def advance(state, t):
        x = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0), t), ())
        bad = jnp.where(t == (poison_at if poison_at is not None else -1), jnp.nan, 0.0)
        new = {"sum": state["sum"] + x, "key": jax.random.fold_in(state["key"], t)}
        return new, {"loss": new["sum"] + bad}

    state = {"sum": jnp.zeros((), jnp.float32), "key": jax.random.key(1)}
    return run_stage(
        advance,
        state,
        num_updates=7,
        eval_every=3,
        evaluate=lambda s: {"value": float(s["sum"])},
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        progress_callback=callback,
    )


def test_runner_resume_after_interrupt_equals_uninterrupted(tmp_path):
    full_state, full_metrics, full_evals = _counter_stage()
    np.testing.assert_array_equal(full_evals["step"], [0, 3, 6, 7])  # the remainder too

    def stop(done, numbers):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(StageInterrupted) as info:
        _counter_stage(str(tmp_path), callback=stop)
    assert info.value.updates_done == 3
    ckpt = load_checkpoint(str(tmp_path), {"sum": jnp.zeros(()), "key": jax.random.key(0)})
    assert ckpt.step == 3 and ckpt.metrics["loss"].shape == (3,)
    np.testing.assert_array_equal(ckpt.evals["step"], [0, 3])
    state, metrics, evals = _counter_stage(str(tmp_path), resume=True)
    np.testing.assert_array_equal(state["sum"], full_state["sum"])
    np.testing.assert_array_equal(
        jax.random.key_data(state["key"]), jax.random.key_data(full_state["key"])
    )
    np.testing.assert_array_equal(metrics["loss"], full_metrics["loss"])
    np.testing.assert_array_equal(evals["value"], full_evals["value"])
    np.testing.assert_array_equal(evals["step"], full_evals["step"])


def test_runner_resume_refuses_another_eval_interval(tmp_path):
    _counter_stage(str(tmp_path))
    ckpt = load_checkpoint(str(tmp_path), {"sum": jnp.zeros(()), "key": jax.random.key(0)})
    assert (ckpt.step, ckpt.eval_every) == (7, 3)
    state = {"sum": jnp.zeros(()), "key": jax.random.key(0)}
    with pytest.raises(ValueError, match="eval_every=3, this run has eval_every=2"):
        run_stage(
            lambda s, t: (s, {"loss": jnp.zeros(())}), state, num_updates=7, eval_every=2,
            evaluate=lambda s: {}, checkpoint_dir=str(tmp_path), resume=True,
        )  # fmt: skip


def test_runner_nonfinite_loss_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match="update 5") as info:
        _counter_stage(str(tmp_path), poison_at=4)  # update index 4 is the 5th update
    assert info.value.metrics["loss"].shape == (6,)
    ckpt = load_checkpoint(str(tmp_path), {"sum": jnp.zeros(()), "key": jax.random.key(0)})
    assert ckpt.step == 3  # the chunk with the NaN was not saved


def test_checkpoint_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(str(tmp_path), {"a": jnp.zeros(2)})
    save_checkpoint(str(tmp_path), {"a": jnp.zeros(2)}, 1, {}, {})
    with pytest.raises(ValueError, match=r"\(3,\)"):
        load_checkpoint(str(tmp_path), {"a": jnp.zeros(3)})
    with pytest.raises(ValueError, match="state has 2"):
        load_checkpoint(str(tmp_path), {"a": jnp.zeros(2), "b": jnp.zeros(2)})
    # bfloat16 round-trips bit for bit
    x = jnp.asarray([1.5, -3.25, 1e-3], jnp.bfloat16)
    save_checkpoint(str(tmp_path), {"a": x}, 2, {}, {})
    back = load_checkpoint(str(tmp_path), {"a": jnp.zeros(3, jnp.bfloat16)}).state["a"]
    assert back.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(back, np.float32), np.asarray(x, np.float32))
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]  # the temporary was moved


def test_sft_resume_equals_uninterrupted(tmp_path):
    config = SFTConfig(
        task="addition",
        model=MICRO.replace(max_len=TINY.max_len),
        num_steps=6,
        eval_every=2,
        batch_size=8,
        num_train_examples=20,  # 2.5 updates per epoch: resume lands mid-epoch
        eval_prompts=8,
    )
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    full = train_sft(
        config,
        jax.random.PRNGKey(0),
        keep_checkpoint_at(2, full_dir, cut_dir),
        checkpoint_dir=full_dir,
    )
    resumed = train_sft(config, jax.random.PRNGKey(0), checkpoint_dir=cut_dir, resume=True)
    assert_same_run(full, resumed)
    assert resumed.metrics["loss"].shape == (6,)
    np.testing.assert_array_equal(resumed.evals["step"], [0, 2, 4, 6])


@pytest.fixture(scope="module")
def micro_params():
    """The one-layer model of the RL tests: resuming is about state, not model size."""
    return init_params(MICRO, jax.random.PRNGKey(0))


def test_dpo_resume_equals_uninterrupted(tmp_path, tiny_params):
    config = DPOConfig(
        model=TINY,
        num_steps=4,
        eval_every=2,
        batch_size=8,
        num_train_pairs=12,
        eval_pairs=8,
        eval_prompts=4,
    )
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    full = train_dpo(
        config,
        jax.random.PRNGKey(1),
        tiny_params,
        keep_checkpoint_at(2, full_dir, cut_dir),
        checkpoint_dir=full_dir,
    )
    resumed = train_dpo(
        config, jax.random.PRNGKey(1), tiny_params, checkpoint_dir=cut_dir, resume=True
    )
    assert_same_run(full, resumed)


def test_grpo_resume_equals_uninterrupted(tmp_path, micro_params):
    from jaxrl.llm import train_grpo

    from .test_grpo import SevensTask
    from .test_grpo import _config as grpo_config

    # the step and evaluation of test_grpo.py's training tests (same shapes and static
    # fields: their compiled programs are reused); 6 prompts, 4 a step: mid-epoch resume
    config = grpo_config(num_steps=4, eval_every=2, num_train_prompts=6, kl_coef=0.05)
    task = SevensTask(num_digits=1)
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    run = dict(init_from=(micro_params, MICRO), task=task)
    full = train_grpo(
        config, jax.random.PRNGKey(2), progress_callback=keep_checkpoint_at(2, full_dir, cut_dir),
        checkpoint_dir=full_dir, **run,
    )  # fmt: skip
    resumed = train_grpo(config, jax.random.PRNGKey(2), checkpoint_dir=cut_dir, resume=True, **run)
    assert_same_run(full, resumed)
    assert resumed.metrics["reward_mean"].shape == (4,)


def test_rlhf_resume_restores_the_adaptive_kl_controller(tmp_path, micro_params):
    from jaxrl.llm import RLHFConfig, train_rlhf
    from jaxrl.llm.tasks import AdditionTask

    head = {"kernel": jax.random.normal(jax.random.PRNGKey(6), (MICRO.d_model, 1))}
    head["bias"] = jnp.zeros((1,))
    rm = (
        {"params": {**micro_params["params"], "reward_head": head}},
        MICRO.replace(reward_head=True),
    )
    config = RLHFConfig(
        num_steps=4, eval_every=2, num_prompts=4, num_epochs=1, num_minibatches=1,
        eval_prompts=4, num_train_prompts=6, kl_coef=0.1, adaptive_kl=True, target_kl=0.01,
        kl_horizon=10,
    )  # fmt: skip
    full_dir, cut_dir = str(tmp_path / "full"), str(tmp_path / "cut")
    run = dict(init_from=(micro_params, MICRO), reward_model=rm, task=AdditionTask(num_digits=1))
    full = train_rlhf(
        config, jax.random.PRNGKey(3), progress_callback=keep_checkpoint_at(2, full_dir, cut_dir),
        checkpoint_dir=full_dir, **run,
    )  # fmt: skip
    resumed = train_rlhf(config, jax.random.PRNGKey(3), checkpoint_dir=cut_dir, resume=True, **run)
    assert_same_run(full, resumed)  # actor, critic, KL controller and prompt order restored
    assert resumed.metrics["value_loss"].shape == (4,)
    assert len(set(full.metrics["kl_coef"].tolist())) > 1  # the controller moved β

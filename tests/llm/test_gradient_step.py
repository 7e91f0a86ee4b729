"""gradient_step differentiates only the trainable leaves: with LoRA its step equals the old
one that differentiated every weight and let the optimiser zero the frozen ones."""

import jax
import numpy as np
import optax
import pytest

from jaxrl.llm import SFTConfig, add_lora, init_sft_state, load_pretrained, sft_loss
from jaxrl.llm.tasks import SFTData
from jaxrl.llm.testing import tiny_model_dir
from jaxrl.llm.training import TrainState, gradient_step, stage_optimizer, trainable_labels

from .conftest import left_padded_batch


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tiny_model_dir(str(tmp_path_factory.mktemp("grad_base")), "qwen2", seed=3)
    config, params = load_pretrained(path)
    rng = np.random.default_rng(0)
    prompt, mask = left_padded_batch(config.vocab_size, seed=5)
    completion = rng.integers(5, config.vocab_size, (3, 6)).astype(np.int32)
    c_mask = np.ones((3, 6), np.int32)
    c_mask[2, 4:] = 0
    return config, params, SFTData(prompt, mask, completion, c_mask)


def _full_gradient_step(model, state, optimizer, batch):
    """The step as it was: every leaf differentiated, the optimiser zeroes frozen ones."""
    (_, metrics), grads = jax.value_and_grad(sft_loss, has_aux=True)(state.params, model, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1), metrics, grads


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


@pytest.mark.parametrize("lora", [True, False])
def test_gradient_step_equals_the_full_gradient_step(base, lora):
    config, params, batch = base
    model = config
    if lora:
        model, params = add_lora(config, params, jax.random.PRNGKey(1), rank=4)
    sft = SFTConfig(model=model, learning_rate=1e-2, warmup_steps=0, num_steps=10, eval_every=10)
    optimizer = stage_optimizer(sft)
    state = init_sft_state(sft, jax.random.PRNGKey(0), params=params)

    new = jax.jit(lambda s, b: gradient_step(sft_loss, s, optimizer, model, b))
    ref = jax.jit(lambda s, b: _full_gradient_step(model, s, optimizer, b))
    s1 = s0 = state
    for _ in range(2):  # the warm-up schedule's first learning rate is 0
        s1, m1 = new(s1, batch)
        s0, m0, grads = ref(s0, batch)

    for a, b in zip(_leaves(s1.params), _leaves(s0.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # updates of ~1e-2: rounding
    np.testing.assert_allclose(m1["loss"], m0["loss"], rtol=1e-6)
    labels = _leaves(trainable_labels(params))
    trained = [g for g, lab in zip(_leaves(grads), labels, strict=True) if lab == "train"]
    np.testing.assert_allclose(m1["grad_norm"], optax.global_norm(trained), rtol=1e-5)
    frozen = [lab == "frozen" for lab in labels]
    assert any(frozen) == lora
    changed = [
        not np.array_equal(a, b) for a, b in zip(_leaves(s1.params), _leaves(params), strict=True)
    ]
    # frozen base weights stay as they were; every trained leaf moves
    assert all(not c for c, f in zip(changed, frozen, strict=True) if f)
    assert sum(changed) > 0

"""run_epochs / shuffled_minibatches: every sample once per epoch, in the order of the keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core import run_epochs, shuffled_minibatches


def test_each_epoch_visits_every_sample_once_in_minibatches():
    batch = {"x": jnp.arange(12.0), "y": jnp.arange(24.0).reshape(12, 2)}
    mbs = shuffled_minibatches(jax.random.PRNGKey(0), batch, 3)
    assert mbs["x"].shape == (3, 4) and mbs["y"].shape == (3, 4, 2)
    assert sorted(np.asarray(mbs["x"]).ravel().tolist()) == list(range(12))
    # Rows stay together across leaves.
    np.testing.assert_array_equal(mbs["y"][..., 0], 2 * mbs["x"])


def test_run_epochs_steps_in_order_and_averages_metrics():
    """A step that records the samples it sees: E·M steps, each epoch a fresh permutation."""
    batch = jnp.arange(8.0)
    key = jax.random.PRNGKey(3)

    def step(carry, minibatch):
        return carry + minibatch.sum(), {"seen": minibatch, "size": jnp.float32(minibatch.size)}

    total, metrics = run_epochs(key, jnp.float32(0.0), batch, step, 3, 2)
    assert float(total) == 3 * 28.0
    assert float(metrics["size"]) == 4.0
    # The same permutations by hand.
    for e, k in enumerate(jax.random.split(key, 3)):
        expected = np.asarray(batch)[np.asarray(jax.random.permutation(k, 8))]
        got = np.asarray(shuffled_minibatches(k, batch, 2)).ravel()
        np.testing.assert_array_equal(got, expected, err_msg=f"epoch {e}")


def test_uneven_split_names_both_numbers():
    with pytest.raises(
        ValueError, match=r"batch samples \(10\) must be divisible by num_minibatches \(3\)"
    ):
        shuffled_minibatches(jax.random.PRNGKey(0), jnp.zeros(10), 3)
    with pytest.raises(ValueError, match="sample axis"):
        shuffled_minibatches(jax.random.PRNGKey(0), {"a": jnp.zeros(4), "b": jnp.zeros(5)}, 2)

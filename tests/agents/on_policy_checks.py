"""Checks every on-policy agent passes: one trace across hyperparameters; sweep = separate runs."""

import dataclasses

import jax
import numpy as np

from jaxrl.run import sweep


def assert_one_trace(module, cfg, **changes):
    """``update`` traces once for two configs that differ in ``changes`` and two different keys.

    Also checks that the changed values reach the computation: the two updates' metrics differ.
    """
    agent = module.make_agent(cfg)
    traces = []

    def update(state, c):
        traces.append(None)  # runs only while tracing
        return agent.update(state, c)

    update = jax.jit(update)
    init = jax.jit(agent.init)
    runs = []
    for seed, c in ((0, cfg), (1, dataclasses.replace(cfg, **changes))):
        state = init(jax.random.PRNGKey(seed), c)
        state, _ = update(state, c)
        runs.append(update(state, c)[1])
    assert len(traces) == 1, f"update traced {len(traces)} times for different hyperparameters"
    assert update._cache_size() == 1
    different = [k for k in runs[0] if not np.array_equal(runs[0][k], runs[1][k])]
    assert different, "the second config and key changed no metric"


def assert_sweep_equals_separate_runs(
    module, cfg, field, values, seeds=(0, 1), atol=1e-5, counts=()
):
    """A sweep over ``field`` (one compiled program) gives the runs made one value at a time.

    ``counts`` names integer metrics decided by a threshold on a float (TRPO's CG
    iterations stop when a residual falls below a tolerance): batched and single
    programs round differently, so these may differ by one step and are compared
    within 1.
    """
    swept = sweep(module, cfg, {field: list(values)}, seeds, progress=False, checkpoint=False)
    for i, value in enumerate(values):
        alone = sweep(
            module, dataclasses.replace(cfg, **{field: value}), None, seeds, progress=False,
            checkpoint=False,
        )  # fmt: skip
        for name, got in swept.metrics.items():
            got = np.asarray(got).reshape(len(values), len(seeds), -1)[i]
            want = np.asarray(alone.metrics[name]).reshape(len(seeds), -1)
            tol = dict(rtol=0, atol=1) if name in counts else dict(rtol=1e-5, atol=atol)
            np.testing.assert_allclose(got, want, **tol, err_msg=f"{field}={value} {name}")


def assert_rewards_scaled_with_own_gamma(module, cfg, gammas=(0.5, 0.99)):
    """The reward scaler of one update follows ``cfg.gamma``.

    The first rollout is collected before any learning, so with one key it is the same for
    both γ. The scaler's return statistics after it must still differ between the two
    values. A scaler that reads a fixed γ gives the same statistics; a sweep run beside
    separate runs does not see that, since both paths would use the same wrong γ.
    """
    agent = module.make_agent(cfg)
    init, update = jax.jit(agent.init), jax.jit(agent.update)  # γ is traced: one compile
    stats = []
    for g in gammas:
        c = dataclasses.replace(cfg, gamma=g)
        state, _ = update(init(jax.random.PRNGKey(0), c), c)
        stats.append(np.asarray(state.reward_scaler.stats.var))
    assert not np.allclose(stats[0], stats[1]), f"same reward-scale statistics for γ = {gammas}"

"""IQM, bootstrap intervals and final returns against hand-computed cases."""

import numpy as np
import pytest
import scipy.stats

from jaxrl.run.stats import bootstrap_ci, final_returns, iqm, summarize


def test_iqm_hand_cases():
    assert iqm([1, 2, 3, 4]) == pytest.approx(2.5)  # middle two of four
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # 3, 4, 5, 6
    # n = 5: [1.25, 3.75) covers 3/4 of 2, all of 3, 3/4 of 4 → (1.5 + 3 + 3) / 2.5
    assert iqm([1, 2, 3, 4, 5]) == pytest.approx(3.0)
    assert iqm([0, 0, 0, 10, 0]) == pytest.approx(0.0)


def test_iqm_matches_trimmed_mean_when_n_divisible_by_4():
    rng = np.random.default_rng(0)
    for n in (4, 8, 20):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_bootstrap_ci_brackets_and_degenerates():
    x = np.arange(10.0)
    lo, hi = bootstrap_ci(x, np.mean)
    assert lo < 4.5 < hi
    # A 95% interval of the mean of 10 uniform-ish values: about ±1.8 around 4.5.
    assert 2.0 < lo < 4.0 and 5.0 < hi < 7.0
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert bootstrap_ci(np.full(5, 2.0)) == (2.0, 2.0)


def test_final_returns_uses_the_last_updates_and_skips_nan():
    r = np.array([[0.0] * 19 + [10.0], [0.0] * 18 + [4.0, np.nan]])
    np.testing.assert_allclose(final_returns(r, last_fraction=0.05), [10.0, np.nan])
    np.testing.assert_allclose(final_returns(r, last_fraction=0.1), [5.0, 4.0])


def test_summarize_fields():
    s = summarize([1.0, 2.0, 3.0, 4.0, np.nan])
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(2.5)
    assert s["iqm"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["iqm_ci95"][0] <= 2.5 <= s["iqm_ci95"][1]

"""The one host loop (jaxrl/run/loop.py): intervals, one metric transfer each, hooks, Ctrl-C."""

import signal

import numpy as np
import pytest

from jaxrl.run.loop import History, RunInterrupted, first_non_finite, run_loop


def counting_advance(calls):
    """``advance`` on the host: state = updates done; metrics ``[R=2, n]`` = update numbers."""

    def advance(state, t, n):
        calls.append((t, n))
        rows = np.arange(t + 1, t + n + 1, dtype=np.float32)
        return state + n, {"x": np.stack([rows, -rows])}, np.array([True, True])

    return advance


def test_intervals_hooks_and_one_transfer_per_interval():
    calls, fetches, seen = [], [], []

    def to_host(tree):
        fetches.append(len(tree))
        return tree

    history = History(10, axis=1)
    result = run_loop(
        counting_advance(calls),
        0,
        history=history,
        interval=4,
        per_call=3,
        check=lambda iv: seen.append(("check", iv.start, iv.done)),
        evaluate=lambda iv: seen.append(("evaluate", iv.done)) or iv.done * 10,
        save=lambda iv: seen.append(("save", iv.done, iv.evaluation)),
        report=lambda iv: seen.append(("report", iv.metrics["x"].shape, iv.history["x"].shape)),
        to_host=to_host,
    )
    # intervals end on multiples of 4 and at 10; calls hold at most 3 updates
    assert calls == [(0, 3), (3, 1), (4, 3), (7, 1), (8, 2)]
    assert fetches == [2, 2, 1]  # every call's output, in one transfer per interval
    assert seen[:4] == [
        ("check", 0, 4),
        ("evaluate", 4),
        ("save", 4, 40),
        ("report", (2, 4), (2, 4)),
    ]
    assert seen[-1] == ("report", (2, 2), (2, 10))
    assert result.state == 10 and result.done == 10
    np.testing.assert_array_equal(history.upto()["x"][0], np.arange(1, 11))
    np.testing.assert_array_equal(history.upto()["x"][1], -np.arange(1, 11))


def test_a_resumed_history_starts_where_it_ended():
    calls = []
    history = History(6, axis=1, arrays={"x": np.full((2, 6), np.nan, np.float32)})
    history.add(0, 2, {"x": np.ones((2, 5))})  # only the first 2 updates are taken
    history.done = 2
    run_loop(counting_advance(calls), 2, history=history, interval=2)
    assert calls == [(2, 2), (4, 2)]
    np.testing.assert_array_equal(history.upto()["x"][0], [1, 1, 3, 4, 5, 6])


def test_scalar_metrics_are_one_update_each():
    history = History(3)
    advance = lambda s, t, n: (s, {"loss": np.float32(t)}, None)  # noqa: E731
    run_loop(advance, 0, history=history, interval=3, per_call=1)
    np.testing.assert_array_equal(history.upto()["loss"], [0, 1, 2])
    assert history.upto()["loss"].dtype == np.float32
    with pytest.raises(ValueError, match="1 entries on axis 0 for 3 updates"):
        run_loop(advance, 0, history=History(3), interval=3)  # no update axis, 3 updates


def test_first_non_finite_names_the_metric_run_and_update():
    assert first_non_finite({"loss": np.ones((2, 3)), "return": np.full((2, 3), np.nan)}, 1) is None
    bad = np.ones((3, 4))
    bad[2, 1], bad[1, 3] = np.inf, np.nan
    assert first_non_finite({"value_loss": bad, "a_loss": np.ones((3, 4))}, axis=1) == (
        "value_loss",
        (1,),
        3,
    )
    assert first_non_finite({"loss": np.array([0.0, 1.0, np.nan, np.nan])}) == ("loss", (), 2)


def test_first_ctrl_c_stops_after_the_interval_hooks():
    saved = []

    def advance(state, t, n):
        if t == 5:  # inside the second interval
            signal.raise_signal(signal.SIGINT)
        return state + n, {"loss": np.zeros(n)}, None

    history = History(100)
    with pytest.raises(RunInterrupted) as info:
        run_loop(
            advance,
            0,
            history=history,
            interval=4,
            per_call=1,
            save=lambda iv: saved.append(iv.done),
        )
    assert saved == [4, 8]  # the interval that saw Ctrl-C ran to its end and was saved
    assert info.value.updates_done == 8
    assert info.value.metrics["loss"].shape == (8,)
    assert isinstance(info.value, KeyboardInterrupt)


def test_a_hook_error_ends_the_run_with_what_it_raised():
    def check(iv):
        hit = first_non_finite(iv.metrics)
        if hit is not None:
            raise ValueError(f"non-finite {hit[0]} at update {iv.start + hit[2] + 1}")

    def advance(state, t, n):
        return state, {"loss": np.where(np.arange(t, t + n) == 6, np.nan, 0.0)}, None

    with pytest.raises(ValueError, match="update 7"):
        run_loop(advance, 0, history=History(12), interval=4, check=check)

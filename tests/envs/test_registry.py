"""make / register / registered_envs / action_info."""

import subprocess
import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import ActionInfo, action_info, make, register, registered_envs

PROBE_IDS = [
    f"{stem}{suffix}-v0"
    for stem in ["Probe1", "Probe2", "Probe3", "Probe4", "Probe5", "ProbeTruncation"]
    for suffix in ("", "Continuous")
]


def test_every_probe_id_makes_its_probe():
    for env_id in PROBE_IDS:  # (stepping them is tested in test_probes)
        env, params = make(env_id)
        assert env.name == env_id and env.continuous == ("Continuous" in env_id)
        assert params.max_steps_in_episode == (5 if "Truncation" in env_id else 100)


def test_registered_envs_lists_gymnax_and_probes():
    ids = registered_envs()
    assert ids == sorted(ids)
    assert set(gymnax.registered_envs) <= set(ids)
    assert set(PROBE_IDS) <= set(ids)


@pytest.mark.parametrize(
    "env_id", ["CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Probe5Continuous-v0"]
)
def test_make_reset_step(env_id):
    env, params = make(env_id)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == env.observation_space(params).shape
    action = env.action_space(params).sample(jax.random.key(1))
    obs2, state, reward, term, trunc, info = env.step(jax.random.key(2), state, action, params)
    assert obs2.shape == obs.shape
    assert jnp.shape(reward) == () and jnp.shape(term) == () and jnp.shape(trunc) == ()
    assert info["final_observation"].shape == obs.shape


def test_make_overrides_params_and_constructor_args():
    _, params = make("CartPole-v1", max_steps_in_episode=7, gravity=3.0)
    assert params.max_steps_in_episode == 7 and params.gravity == 3.0
    env, _ = make("Breakout-MinAtar", use_minimal_action_set=False)
    assert (
        env.num_actions
        == gymnax.make("Breakout-MinAtar", use_minimal_action_set=False)[0].num_actions
    )
    assert env.num_actions != make("Breakout-MinAtar")[0].num_actions
    env, params = make("ProbeTruncation-v0", max_steps_in_episode=9)
    assert params.max_steps_in_episode == 9
    env, _ = make("Probe4-v0", continuous=True)
    assert env.continuous


def test_make_unknown_kwarg():
    with pytest.raises(ValueError, match="bogus") as err:
        make("CartPole-v1", bogus=1)
    assert "max_steps_in_episode" in str(err.value)


def test_make_unknown_id_lists_known_ids_and_suggests():
    with pytest.raises(ValueError) as err:
        make("CartPol-v1")
    msg = str(err.value)
    assert "'CartPol-v1'" in msg and "Did you mean 'CartPole-v1'" in msg
    for env_id in registered_envs():
        assert env_id in msg
    with pytest.raises(ValueError, match="Known ids"):
        make("zzzz")


def test_register_user_env():
    seen = {}

    def factory(**kwargs):
        seen.update(kwargs)
        return make("Probe2-v0")

    register("MyProbe-test-v0", factory)
    try:
        assert "MyProbe-test-v0" in registered_envs()
        env, params = make("MyProbe-test-v0", foo=3)
        assert seen == {"foo": 3}
        assert env.name == "Probe2-v0"
        with pytest.raises(ValueError, match="already registered"):
            register("MyProbe-test-v0", factory)
        with pytest.raises(ValueError, match="already registered"):
            register("CartPole-v1", factory)
        register("MyProbe-test-v0", lambda **kw: make("Probe1-v0"), overwrite=True)
        assert make("MyProbe-test-v0")[0].name == "Probe1-v0"
    finally:
        envs.registry._REGISTRY.pop("MyProbe-test-v0", None)
    with pytest.raises(ValueError, match="callable"):
        register("X-v0", 3)
    with pytest.raises(ValueError, match="non-empty"):
        register("", factory)


def test_action_info():
    info = action_info(*make("CartPole-v1"))
    assert info == ActionInfo(True, 2, None, (), None, None) and info.size == 2
    info = action_info(*make("Pendulum-v1", max_torque=3.0))
    assert not info.discrete and info.action_dim == 1 and info.shape == (1,) and info.size == 1
    np.testing.assert_array_equal(info.low, [-3.0])
    np.testing.assert_array_equal(info.high, [3.0])
    info = action_info(*make("Probe5Continuous-v0"))
    np.testing.assert_array_equal(info.low, [-1.0])
    env, params = make("Breakout-MinAtar")
    assert action_info(env, params).num_actions == env.num_actions
    # Through wrappers (attribute forwarding).
    venv = envs.EpisodeStatistics(envs.VecEnv(env, 2))
    assert action_info(venv, params) == action_info(env, params)
    assert action_info(venv) == action_info(env, params)  # default params


def test_action_info_rejects_other_spaces():
    env, params = make("Probe1-v0")

    class DictActions(envs.Wrapper):
        def action_space(self, params=None):
            return gymnax.environments.spaces.Dict({"a": self._env.action_space(params)})

    with pytest.raises(ValueError, match="Discrete and Box"):
        action_info(DictActions(env), params)


def test_public_names_have_docstrings():
    for name in envs.__all__:
        obj = getattr(envs, name)
        if callable(obj):
            assert obj.__doc__, name


def test_env_kind_answers_deep_tabular_or_unknown():
    from jaxrl.tabular import TABULAR_ENVS

    assert {envs.env_kind(name) for name in TABULAR_ENVS} == {"tabular"}
    assert {envs.env_kind(env_id) for env_id in registered_envs()} == {"deep"}
    assert envs.env_kind("brax:ant") == "deep"
    assert envs.env_kind("CartPole-v2") is None
    assert envs.env_kind("gymnasium:") is None
    assert envs.env_kind(3) is None


START_UP = """
import sys
import jax, matplotlib
import jaxrl.envs, jaxrl.tabular
plotting = ("seaborn", "scipy.stats", "pandas", "matplotlib.pyplot")
print("at start-up:", sorted(m for m in plotting if m in sys.modules))
matplotlib.use("Agg")
env, params = jaxrl.envs.make("Pong-misc")
_, state = env.reset(jax.random.PRNGKey(0), params)
env.render(state, params)  # gymnax's seaborn and pyplot, imported now
import matplotlib.pyplot as plt, seaborn
print("after render:", type(sys.modules["seaborn"]).__name__, callable(plt.subplots),
      matplotlib.pyplot is plt, seaborn.color_palette is not None)
"""


def test_gymnax_plotting_is_imported_when_rendering_not_at_start_up():
    # A fresh process: start-up is what is measured (seaborn, scipy.stats and pandas cost
    # about 1.6 of the 4.5 CPU seconds of ``import jaxrl.envs`` here).
    done = subprocess.run(
        [sys.executable, "-c", START_UP], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines == ["at start-up: []", "after render: module True True True"], done.stdout

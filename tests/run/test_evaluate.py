"""Evaluation of run directories, acting from Python, and the `jaxrl eval` command."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import get_algorithm, ppo
from jaxrl.cli import main
from jaxrl.run import train
from jaxrl.run.evaluate import Policy, evaluate, load, policy_fn, restore_run, run_episodes

TINY_PPO = dict(
    total_timesteps=4 * 16 * 4, num_envs=4, num_steps=16, num_minibatches=2, hidden_sizes=(8,)
)
# The policy tests only initialise off-policy agents: a small buffer and network are all
# that matters (the training budget fields would not be read).
OFF = dict(buffer_size=64, hidden_sizes=(8,))


def _init_states(algo, cfg, runs=2):
    agent = get_algorithm(algo).make_agent(cfg)
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(runs)])
    return jax.jit(lambda k: jax.lax.map(lambda kk: agent.init(kk, cfg), k))(keys)


@pytest.mark.parametrize(
    "algo,env_id,extra",
    [
        ("ppo", "Pendulum-v1", dict(TINY_PPO, normalize_obs=True)),
        ("dqn", "CartPole-v1", OFF),
        ("sac", "Pendulum-v1", OFF),
    ],
)
def test_policy_of_each_family_is_its_networks_mode(algo, env_id, extra):
    module = get_algorithm(algo)
    cfg = module.Config(env_id=env_id, **extra)
    state = _init_states(algo, cfg)
    policy = policy_fn(algo, cfg, state)
    obs = jax.random.normal(jax.random.PRNGKey(3), (5, *policy.obs_shape)) * 2.0
    got = jax.vmap(lambda p: policy.act(p, obs, jax.random.PRNGKey(0), True))(policy.params)
    env, env_params = envs.make(env_id)
    info = envs.action_info(env, env_params)
    for r in range(2):
        one = jax.tree.map(lambda x: x[r], state)
        if algo == "ppo":
            x = obs
            if cfg.normalize_obs:
                stats = envs.get_obs_stats(one.env_state)
                x = jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -10, 10)
            dist = ppo.make_network(cfg, info).apply(one.params, x)[0]
            want = jnp.argmax(dist.logits, -1) if info.discrete else jnp.clip(dist.loc, -2, 2)
        elif algo == "dqn":
            want = jnp.argmax(module.make_network(cfg, info).apply(one.learner.params, obs), -1)
        else:  # actors on [−1, 1]: the mean (tanh of it for SAC), mapped to Pendulum's [−2, 2]
            unit = info._replace(low=-np.ones(1, np.float32), high=np.ones(1, np.float32))
            actor = module.make_networks(cfg, unit)[0]
            out = actor.apply(one.learner.actor_params, obs)
            unit_action = jnp.tanh(out.distribution.mode()) if algo == "sac" else out
            want = 2.0 * unit_action
        np.testing.assert_allclose(np.asarray(got[r]), np.asarray(want), rtol=1e-5, atol=1e-5)
    # Stochastic actions vary with the key; deterministic ones do not.
    a1 = policy.act(jax.tree.map(lambda x: x[0], policy.params), obs, jax.random.PRNGKey(1), False)
    a2 = policy.act(jax.tree.map(lambda x: x[0], policy.params), obs, jax.random.PRNGKey(2), False)
    if algo != "dqn":  # DQN's ε-greedy at eps_end mostly agrees with the argmax
        assert not np.array_equal(np.asarray(a1), np.asarray(a2))


def _constant_policy(env_id, action):
    env, env_params = envs.make(env_id)
    obs_shape = tuple(env.observation_space(env_params).shape)

    def act(params, obs, key, deterministic):
        return jnp.full(obs.shape[:1], params["a"], jnp.int32)

    params = {"a": jnp.asarray([action, 1 - action], jnp.int32)}  # run 0 and run 1
    return Policy(act, params, env, env_params, obs_shape, True)


def test_run_episodes_returns_each_runs_first_episode():
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    # Probe4: reward +1 for action 1, −1 for action 0, one-step episodes.
    rets, lens = run_episodes(_constant_policy("Probe4-v0", 1), keys, episodes=3)
    np.testing.assert_array_equal(rets, [[1, 1, 1], [-1, -1, -1]])
    np.testing.assert_array_equal(lens, np.ones((2, 3)))
    # CartPole: reward 1 per step, so return = length; a constant push falls in < 20 steps.
    rets, lens = run_episodes(_constant_policy("CartPole-v1", 0), keys, episodes=4)
    np.testing.assert_array_equal(rets, lens)
    assert np.all((lens > 5) & (lens < 20))


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo_run")
    cfg = ppo.Config(**TINY_PPO)
    res = train(ppo, cfg, [0, 1], out, progress=False, eval_every=2, eval_episodes=3)
    return out, res


def test_evaluate_restores_the_final_state_and_writes_eval_json(ppo_run):
    out, res = ppo_run
    restored = restore_run(out)
    assert restored.seeds == [0, 1] and restored.updates_done == [4]
    jax.tree.map(np.testing.assert_array_equal, restored.states[0].params, res.states[0].params)
    result = evaluate(out, episodes=3)
    saved = json.loads((out / "eval.json").read_text())
    assert saved["runs"][1]["returns"] == result["runs"][1]["returns"]
    assert [r["seed"] for r in saved["runs"]] == [0, 1]
    for r in saved["runs"]:
        assert len(r["returns"]) == 3 and r["mean"] == pytest.approx(np.mean(r["returns"]))
    means = [r["mean"] for r in saved["runs"]]
    assert saved["over_runs"]["mean"] == pytest.approx(np.mean(means))
    assert saved["policy"] == "deterministic"
    # The same evaluation seed gives the same episodes.
    assert evaluate(out, episodes=3, write=False)["runs"] == result["runs"]


def test_evaluator_for_training_reuses_one_program_and_matches_evaluate(ppo_run):
    from jaxrl.run.evaluate import make_evaluator

    out, res = ppo_run
    evaluate_state = make_evaluator("ppo", ppo.Config(**TINY_PPO), episodes=3)
    rets, lens = evaluate_state(res.states[0], [0, 1])
    want = [r["returns"] for r in evaluate(out, episodes=3, write=False)["runs"]]
    np.testing.assert_array_equal(rets, want)
    with jax.log_compiles():  # a second call compiles nothing
        import logging

        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("jax").addHandler(handler)
        try:
            again, _ = evaluate_state(res.states[0], [0, 1])
        finally:
            logging.getLogger("jax").removeHandler(handler)
    np.testing.assert_array_equal(again, rets)
    assert not [r for r in records if "one_run" in r.getMessage()]


def test_eval_every_writes_evals_csv_during_training(ppo_run):
    import csv

    out, _ = ppo_run
    with open(out / "evals.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["update"]) for r in rows] == [
        ("0", "2"),
        ("0", "4"),
        ("1", "2"),
        ("1", "4"),
    ]
    assert [int(r["env_steps"]) for r in rows] == [128, 256, 128, 256]
    # The last evaluation is that of the final policy, as `jaxrl eval` measures it.
    final = {r["seed"]: float(r["eval_return"]) for r in rows if r["update"] == "4"}
    runs = evaluate(out, episodes=3, write=False)["runs"]
    assert [final[str(r["seed"])] for r in runs] == pytest.approx([r["mean"] for r in runs])
    assert (out / "eval_curves.png").stat().st_size > 0


def test_load_acts_on_one_observation_or_a_batch(ppo_run):
    out, res = ppo_run
    import jaxrl

    policy = jaxrl.load(out, seed=1)
    obs = np.random.default_rng(0).normal(size=(6, 4))  # float64, as Gymnasium gives
    batch = policy.act(obs)
    assert batch.shape == (6,) and batch.dtype == np.int32
    assert [int(policy.act(o)) for o in obs] == batch.tolist()
    dist = ppo.make_network(ppo.Config(**TINY_PPO)).apply(
        jax.tree.map(lambda x: x[1], res.states[0].params), jnp.asarray(obs, jnp.float32)
    )[0]
    np.testing.assert_array_equal(batch, np.argmax(dist.logits, -1))
    with pytest.raises(ValueError, match="obs has shape"):
        policy.act(np.zeros(3))
    with pytest.raises(ValueError, match="no run with seed 7"):
        load(out, seed=7)


def test_eval_command_prints_a_table_and_rejects_bad_input(ppo_run, tmp_path, capsys):
    out, _ = ppo_run
    assert main(["eval", str(out), "--episodes", "3"]) == 0  # the program compiled above
    text = capsys.readouterr().out
    assert "3 deterministic episodes per run" in text and "over 2 runs" in text
    assert main(["eval", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a run directory" in err and len(err.splitlines()) == 1
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    for f in (broken / "checkpoints").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    assert main(["eval", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no readable checkpoint" in err and str(broken / "checkpoints") in err
    assert len(err.splitlines()) == 1


def test_tabular_run_evaluates_its_greedy_policy(tmp_path):
    module = get_algorithm("q-learning")
    cfg = module.Config(env="CliffWalking", num_episodes=60, track_greedy_value=False)
    train(module, cfg, [0], tmp_path, algo="q-learning", progress=False)
    result = evaluate(tmp_path, episodes=4)
    rets = result["runs"][0]["returns"]
    assert len(set(rets)) == 1  # a deterministic policy on a deterministic grid
    policy = load(tmp_path)
    assert policy.act(36) == int(np.argmax(np.asarray(policy.params["q"])[36]))


def _pole_point(x, theta, frac):
    from jaxrl.run.video import CARTPOLE, W

    cx = W / 2 + x * CARTPOLE["scale"]
    r = frac * CARTPOLE["pole_px"]
    return int(round(cx + r * np.sin(theta))), int(round(CARTPOLE["pivot_y"] - r * np.cos(theta)))


def test_cartpole_frame_draws_the_pole_at_its_angle():
    from jaxrl.run.video import BACKGROUND, POLE, draw_cartpole

    frame = draw_cartpole(0.5, 0.3)
    for frac in (0.5, 0.9):
        px, py = _pole_point(0.5, 0.3, frac)
        assert tuple(frame[py, px]) == POLE
        mx, my = _pole_point(0.5, -0.3, frac)  # the mirrored angle is empty
        assert tuple(frame[my, mx]) == BACKGROUND


def test_video_has_one_gif_frame_per_step_and_the_recorded_pole(ppo_run, tmp_path):
    from PIL import Image

    from jaxrl.run.video import POLE, frames_for, record_video

    out, _ = ppo_run
    gif = tmp_path / "cartpole.gif"
    rec = record_video(restore_run(out), gif)
    with Image.open(gif) as im:
        assert im.n_frames == rec.frames == len(rec.rewards) > 5
        im.seek(0)
        first = np.asarray(im.convert("RGB"))
    x0, th0 = float(rec.states.x[0]), float(rec.states.theta[0])
    px, py = _pole_point(x0, th0, 0.8)
    assert np.abs(first[py, px].astype(int) - POLE).max() <= 8
    with pytest.raises(ValueError, match="cannot draw"):
        frames_for(None, "Probe1-v0", rec.states, np.zeros((3, 1)))

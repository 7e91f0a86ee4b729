"""Guide 4: DQN for discrete actions, and its continuous relatives DDPG, TD3 and SAC.

    python examples/guides/04_dqn_and_continuous.py [--quick] [--out-dir docs/guides]

Writes docs/guides/04-dqn-and-continuous.md and its figure. DQN trains on Pendulum-v1
with the torque cut into a few discrete values (an environment registered here);
DDPG, TD3 and SAC train on the continuous torque; same seeds and steps. Then each
continuous critic is probed on a dense grid of actions to see how close its actor's
action comes to the critic's argmax.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guide  # noqa: E402

from jaxrl import envs  # noqa: E402
from jaxrl.agents import ddpg, dqn, off_policy, sac, td3  # noqa: E402
from jaxrl.envs.vector import Wrapper  # noqa: E402
from jaxrl.nets import squashed_mode  # noqa: E402
from jaxrl.run.stats import final_returns, summarize  # noqa: E402

TITLE = "DQN for discrete actions, and its continuous relatives: DDPG, TD3, SAC"
ENV_ID = "Pendulum-v1"
NUM_TORQUES = 5
DISCRETE_ID = f"PendulumDiscrete{NUM_TORQUES}-v1"
HIDDEN = (64, 64)


class DiscreteTorque(Wrapper):
    """Pendulum with the torque restricted to ``num_actions`` evenly spaced values in [−2, 2]."""

    def __init__(self, env, num_actions: int):
        super().__init__(env)
        self.num_actions = num_actions

    def action_space(self, params=None):
        return spaces.Discrete(self.num_actions)

    def step(self, key, state, action, params=None):
        torque = -2.0 + 4.0 * action / (self.num_actions - 1)
        return self.env.step(key, state, jnp.asarray(torque, jnp.float32), params)


def _discrete_pendulum(**kwargs):
    env, params = envs.make(ENV_ID, **kwargs)
    return DiscreteTorque(env, NUM_TORQUES), params


envs.register(DISCRETE_ID, _discrete_pendulum, overwrite=True)


def configs(total: int, learning_starts: int) -> dict:
    common = dict(total_timesteps=total, hidden_sizes=HIDDEN, learning_starts=learning_starts)
    return {
        f"DQN, {NUM_TORQUES} torques": (
            dqn,
            dqn.Config(
                env_id=DISCRETE_ID,
                **common,
                double=True,
                buffer_size=total,
                batch_size=128,
                train_frequency=1,
                target_update_interval=100,
                learning_rate=1e-3,
                exploration_fraction=0.3,
            ),
        ),
        "DDPG": (ddpg, ddpg.Config(env_id=ENV_ID, **common)),
        "TD3": (td3, td3.Config(env_id=ENV_ID, **common)),
        "SAC": (sac, sac.Config(env_id=ENV_ID, **common)),
    }


def actor_vs_grid(action_fn, q_fn, obs: jax.Array, grid: jax.Array) -> dict:
    """How close the actor's action comes to the critic's best action on a dense grid.

    Args:
      action_fn: obs [N, O] -> the actor's actions [N, 1] in [−1, 1].
      q_fn: (obs [N, O], actions [N, 1]) -> the Q the actor climbs, [N].
      obs: states [N, O].
      grid: candidate actions [K].

    Returns:
      per state: the gap max_grid Q − Q(s, μ(s)), the gap of a uniformly random action
      (max_grid Q − mean_grid Q), and the distance from μ(s) to the grid's argmax.
    """
    q_grid = jax.vmap(lambda a: q_fn(obs, jnp.full((obs.shape[0], 1), a)))(grid)  # [K, N]
    mu = action_fn(obs)  # [N, 1]
    q_mu = q_fn(obs, mu)
    best = grid[jnp.argmax(q_grid, axis=0)]
    return {
        "gap": q_grid.max(0) - q_mu,
        "random_gap": q_grid.max(0) - q_grid.mean(0),
        "distance": jnp.abs(mu[:, 0] - best),
    }


def visited_states(action_fn, key, num_envs: int, steps: int) -> jax.Array:
    """States the trained actor visits (deterministic actions), [steps·num_envs, O]."""
    env, env_params, _ = off_policy.make_env(ENV_ID, num_envs)
    obs, state = env.reset(key, env_params)

    def step(carry, k):
        obs, state = carry
        next_obs, state, *_ = env.step(k, state, action_fn(obs), env_params)
        return (next_obs, state), obs

    _, trajectory = jax.lax.scan(step, (obs, state), jax.random.split(key, steps))
    return trajectory.reshape(-1, trajectory.shape[-1])


def probe_critics(name: str, config, learner, grid) -> dict:
    """``actor_vs_grid`` for one seed's learner on states its own actor visits (traceable:
    ``run`` maps it over the seeds' learners in one compiled program)."""
    if name == "SAC":
        actor, critic = sac.make_networks(config)

        def action_fn(obs):
            return squashed_mode(actor.apply(learner.actor_params, obs))

        def q_fn(obs, a):  # SAC's actor climbs min(Q₁, Q₂) − α·log π
            return critic.apply(learner.critic_params, obs, a).minimum()
    else:
        actor, critic = td3.make_networks(config, twin_critics=name == "TD3")

        def action_fn(obs):
            return actor.apply(learner.actor_params, obs)

        def q_fn(obs, a):  # the DDPG / TD3 actor climbs Q₁
            q = critic.apply(learner.critic_params, obs, a)
            return q.q1 if name == "TD3" else q

    obs = visited_states(action_fn, jax.random.key(3), 8, 200)
    return actor_vs_grid(action_fn, q_fn, obs, grid)


def figure(page, results: dict) -> str:
    plt = _guide.plt()
    fig, (ax, ax_gap) = plt.subplots(1, 2, figsize=(13, 4.5))
    for name, r in results.items():
        ret = np.asarray(r["returns"], np.float64)
        x = (np.arange(ret.shape[1]) + 1) * r["steps_per_update"]
        mean = np.nanmean(np.where(np.isfinite(ret), ret, np.nan), axis=0)
        ax.plot(x, mean, "--" if name.startswith("DQN") else "-", label=name)
    seeds = next(iter(results.values()))["returns"].shape[0]
    ax.set(
        xlabel="environment steps",
        ylabel="episode return",
        title=f"{ENV_ID}: mean of {seeds} seeds",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    names = [n for n in results if "probe" in results[n]]
    data = [
        100 * np.concatenate([p["gap"] / p["random_gap"] for p in results[n]["probe"]])
        for n in names
    ]
    ax_gap.boxplot(data, whis=(5, 95), showfliers=False)
    ax_gap.axhline(100, color="k", ls=":", lw=1, label="a uniformly random action")
    ax_gap.legend(fontsize=8)
    ax_gap.set_xticks(range(1, len(names) + 1))
    ax_gap.set_xticklabels(names)
    ax_gap.set(
        ylabel="max Q − Q(s, μ(s)), % of a random action's gap",
        title="what the actor leaves below its critic's max (per visited state)",
    )
    ax_gap.grid(alpha=0.3, axis="y")
    return page.save(fig, "returns-and-argmax")


def run(quick: bool, out_dir: Path) -> dict:
    page = _guide.Page(__file__, quick, out_dir)
    seeds, total, starts = (2, 2_000, 500) if quick else (5, 15_000, 1_000)
    grid = jnp.linspace(-1.0, 1.0, 201)
    keys = jax.random.split(jax.random.key(0), seeds)
    results = {}
    for name, (module, config) in configs(total, starts).items():
        start = time.perf_counter()
        states, metrics = _guide.run_seeds(module.make_agent(config), config, keys)
        r = {
            "returns": np.asarray(metrics["episode_return"]),
            "steps_per_update": config.steps_per_update,
            "seconds": time.perf_counter() - start,
            "config": config,
        }
        if module is not dqn:
            probe = jax.jit(jax.vmap(lambda lr: probe_critics(name, config, lr, grid)))
            probes = {k: np.asarray(v) for k, v in probe(states.learner).items()}  # [S, N]
            r["probe"] = [{k: v[i] for k, v in probes.items()} for i in range(seeds)]
        results[name] = r
    fig_link = figure(page, results)

    out, rows, probe_rows = {}, [], []
    for name, r in results.items():
        s = summarize(final_returns(r["returns"], 0.2))
        out[name] = {"final_mean": s["mean"]}
        rows.append([name, f"{s['mean']:.0f}", _guide.fmt_ci(s, 0), f"{r['seconds']:.0f} s"])
        if "probe" in r:
            gap = np.concatenate([p["gap"] for p in r["probe"]])
            random_gap = np.concatenate([p["random_gap"] for p in r["probe"]])
            dist = np.concatenate([p["distance"] for p in r["probe"]])
            rel = gap / np.maximum(random_gap, 1e-6)  # 0: the grid's best, 1: a random action
            out[name].update(
                distance_median=float(np.median(dist)),
                relative_gap_median=float(np.median(rel)),
                relative_gap=float(gap.sum() / random_gap.sum()),
                within_5pct=float(np.mean(rel <= 0.05)),
            )
            probe_rows.append(
                [
                    name,
                    f"{np.median(rel):.1%}",
                    f"{gap.sum() / random_gap.sum():.1%}",
                    f"{np.mean(rel <= 0.05):.0%}",
                    f"{np.median(dist):.2f}",
                ]
            )
    dqn_name = next(iter(results))
    continuous = [n for n in results if n != dqn_name]
    best_cont = max(continuous, key=lambda n: out[n]["final_mean"])
    dims = {"Pendulum": 1, "HalfCheetah": 6, "Humanoid": 17}
    count = lambda n: f"{n:,}" if n < 10**7 else f"{n:.1e}"  # noqa: E731
    sizes = [[k, d, count(NUM_TORQUES**d), count(11**d)] for k, d in dims.items()]
    worst_actor = max(continuous, key=lambda n: out[n]["relative_gap"])
    best_actor = min(continuous, key=lambda n: out[n]["relative_gap"])
    recover = "most" if out[worst_actor]["relative_gap"] < 0.5 else "part"
    probe_table = _guide.table(
        [
            "agent",
            "gap to the grid's max, median (random action = 100%)",
            "summed over the states",
            "states within 5%",
            "distance from μ(s) to the grid argmax, median",
        ],
        probe_rows,
    )
    sac_note = ""
    if worst_actor == "SAC":
        sac_note = (
            " SAC's mean action sits furthest below its critic's max, by design: its actor "
            "maximises Q − α·log π, a soft max that keeps probability on near-best actions, "
            "not Q alone."
        )

    sections = [
        f"""\
DQN's TD target needs the largest action value of the next state,

  y = r + γ·(1 − terminated)·maxₐ′ Q_target(s′, a′),

and with a finite action set that max is free: the Q-network outputs one value per
action, `[*B, A]`, and the target takes the max over the last axis
(`jaxrl.core.q_learning`; Double DQN's `double_q_learning` picks a′ with the online
network and evaluates it with the target network). Acting greedily is the same argmax.
With a continuous action a ∈ ℝᵈ the max is an optimisation problem inside every target
and every action choice. The continuous relatives of DQN keep its machinery (replay
buffer, target networks, a TD loss on Q(s, a) with a as an *input*) and replace the
max by a second network, the actor, trained to output the action the critic rates
highest:

{
            _guide.table(
                ["method", "critic's target y (next state s′)", "actor", "jaxrl.core"],
                [
                    [
                        "DQN",
                        "r + γ·max_a′ Q′(s′, a′)",
                        "none: argmax_a Q(s, a), ε-greedy",
                        "`q_learning`, `double_q_learning`",
                    ],
                    [
                        "DDPG",
                        "r + γ·Q′(s′, μ′(s′))",
                        "deterministic μ(s): max Q(s, μ(s))",
                        "`dpg_actor_loss`",
                    ],
                    [
                        "TD3",
                        "r + γ·minₖ Q′ₖ(s′, clip(μ′(s′) + clip(ε, −c, c)))",
                        "as DDPG, updated every 2nd critic step",
                        "`td3_target_actions`, `dpg_actor_loss`",
                    ],
                    [
                        "SAC",
                        "r + γ·(minₖ Q′ₖ(s′, a′) − α·log π(a′∣s′)), a′ ~ π",
                        "stochastic π: max E[Q(s, a) − α·log π(a∣s)]",
                        "`sac_soft_target`, `sac_actor_loss`, `sac_alpha_loss`",
                    ],
                ],
            )
        }

(γ·(1 − terminated) throughout: a time-limit truncation still bootstraps.)
DDPG's actor follows ∇ₐQ(s, a) through μ (the deterministic policy gradient). TD3 fixes
DDPG's overestimation the way Double Q-learning fixes Q-learning's (guide 1): two
critics, the smaller one in the target, plus noise on the target action so the critic
cannot exploit a narrow peak. SAC replaces the hard max by a soft one: the policy that
maximises E[Q − α·log π] is π(a∣s) ∝ exp(Q(s, a)/α), the Boltzmann policy of guide 2,
with α tuned so the entropy stays near a target.

PQN (`jaxrl train pqn`; Gallici et al. 2024, https://arxiv.org/abs/2407.04811) drops
both the replay buffer and the target network. A target network slows the regression
target down: DQN fits Q(s, a) to r + γ·maxₐ′ Q(s′, a′) on old data from a buffer, and
when the network moves its own target, bootstrapping, off-policy data and function
approximation together can make the fit diverge. PQN removes what it can of that: its
data is fresh (32 environments step with the current ε-greedy policy; each rollout is
used for a few epochs and dropped), and LayerNorm after every hidden layer limits how
far a step on Q(s, a) drags Q(s′, ·) along; the paper proves that with LayerNorm (and a
small L2 penalty) the TD update is stable without a lagged copy. Within one update the
Q(λ) targets are computed once, with the parameters that collected the rollout, so over
that update's epochs they play the target network's part, refreshed every update.""",
        f"""\
## The same task, discrete and continuous

{ENV_ID} has one continuous torque in [−2, 2]. DQN (Double DQN, {HIDDEN} MLP) sees it
cut into {NUM_TORQUES} evenly spaced torques (the `DiscreteTorque` wrapper in this
script, registered as `{DISCRETE_ID}`); DDPG, TD3 and SAC act on the continuous torque
with their defaults and the same {HIDDEN} networks. {seeds} seeds, {total:,} steps each;
final return = mean over the last 20% of updates (about −150 is solved).

{_guide.table(["agent", "final return, mean", "IQM [95% CI]", "time (incl. compile)"], rows)}

{fig_link}

In one dimension, discretising works: DQN with {NUM_TORQUES} torques reaches
{out[dqn_name]["final_mean"]:.0f}, against {out[best_cont]["final_mean"]:.0f} for the best
continuous method here ({best_cont}). The catch is the count: with K values per action
dimension there are Kᵈ discrete actions, one Q-network output each, and the max in
every target runs over all of them:

{_guide.table(["task", "action dimensions d", f"K = {NUM_TORQUES}: Kᵈ", "K = 11: Kᵈ"], sizes)}

Beyond a few dimensions the Q-network's output layer, and the max over it, cannot be
built; an actor costs one forward pass whatever d is.""",
        f"""\
## The actor as a learned argmax

For each trained continuous agent, the script rolls its actor out (deterministic
actions: μ(s), or SAC's squashed mean) for 8 × 200 steps and evaluates the critic the
actor climbs (DDPG: Q; TD3: Q₁; SAC: min(Q₁, Q₂)) at 201 actions evenly spaced over
[−1, 1] at every visited state:

```python
{_guide.source(actor_vs_grid)}
```

{probe_table}

Measured against what a uniformly random action would leave below the grid's best
action, the actors recover {recover} of it: summed over the visited states, {best_actor}'s
actor leaves {out[best_actor]["relative_gap"]:.1%} of a random action's gap, {worst_actor}'s
{out[worst_actor]["relative_gap"]:.1%}. The max that DQN computes exactly, the actor
has learned by gradient ascent on Q: approximately, and only on the states in the data
(the distance to the argmax can be large where Q is nearly flat in the action, at
little cost in Q). That approximation, and the critic's errors that the actor then
exploits, are what TD3's twin critics and smoothing and SAC's entropy term are there to
contain.{sac_note}""",
    ]
    page.write(TITLE, sections)
    return out


if __name__ == "__main__":
    _guide.main(run, __doc__.splitlines()[0])

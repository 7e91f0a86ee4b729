"""Guide 2: exploration vs exploitation on a 10-armed bandit and on Cliff Walking.

    python examples/guides/02_exploration.py [--quick] [--out-dir docs/guides]

Writes docs/guides/02-exploration.md and two figures. The bandit learners are written
here from jaxrl.core's pieces (ε-greedy and Boltzmann probabilities, linear schedules,
the policy-gradient and entropy losses); the gridworld runs are jaxrl.tabular's
Q-learning with its exploration settings, every setting × seed in one vmapped program.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guide  # noqa: E402

from jaxrl.core import (  # noqa: E402
    boltzmann_probs,
    categorical_entropy,
    entropy_loss,
    epsilon_greedy_probs,
    linear_schedule,
    policy_gradient_loss,
)
from jaxrl.run.experiment import stack_configs  # noqa: E402
from jaxrl.tabular import (  # noqa: E402
    Config,
    finite_horizon_evaluation,
    greedy_policy,
    make_task,
    make_train,
    value_iteration,
)

TITLE = "Exploration vs exploitation: ε-greedy, schedules, Boltzmann, optimism, entropy bonus"
NUM_ARMS = 10


class Rule(NamedTuple):
    """A value-based bandit rule: ε-greedy (boltzmann = 0) or Boltzmann (1), with a linear
    schedule of ε or τ from ``start`` to ``end`` over the first half of the run."""

    boltzmann: float
    start: float
    end: float


BANDIT_RULES = {
    "greedy (ε = 0)": Rule(0.0, 0.0, 0.0),
    "ε = 0.01": Rule(0.0, 0.01, 0.01),
    "ε = 0.1": Rule(0.0, 0.1, 0.1),
    "ε: 0.3 → 0": Rule(0.0, 0.3, 0.0),
    "Boltzmann τ = 0.2": Rule(1.0, 0.2, 0.2),
}
ENTROPY_COEFS = {"softmax policy gradient": 0.0, "… + entropy bonus c = 0.2": 0.2}


def value_bandit_step(carry, t, q_star, rule: Rule, steps: int):
    """One pull of a sample-average learner acting ε-greedily or by Boltzmann."""
    q, counts, key = carry
    key, k_act, k_reward = jax.random.split(key, 3)
    x = linear_schedule(rule.start, rule.end, steps // 2)(t)  # ε or τ at step t
    probs = jnp.where(
        rule.boltzmann > 0,
        boltzmann_probs(q, jnp.maximum(x, 1e-3)),
        epsilon_greedy_probs(q, x),
    )
    a = jax.random.categorical(k_act, jnp.log(probs))
    r = q_star[a] + jax.random.normal(k_reward)
    counts = counts.at[a].add(1.0)
    q = q.at[a].add((r - q[a]) / counts[a])  # sample average of arm a's rewards
    return (q, counts, key), (r, a, categorical_entropy(jnp.log(probs)))


def gradient_bandit_loss(prefs, a, advantage, entropy_coef):
    """Softmax policy gradient with an entropy bonus: −log π(a)·(r − r̄) − c·H(π)."""
    log_probs = jax.nn.log_softmax(prefs)
    pg_loss, _ = policy_gradient_loss(log_probs[a], advantage)
    return pg_loss + entropy_coef * entropy_loss(categorical_entropy(prefs))


def gradient_bandit_step(carry, t, q_star, entropy_coef, step_size: float):
    """One pull of the gradient bandit (Sutton & Barto §2.8) with an entropy bonus."""
    prefs, mean_reward, key = carry
    key, k_act, k_reward = jax.random.split(key, 3)
    a = jax.random.categorical(k_act, prefs)
    r = q_star[a] + jax.random.normal(k_reward)
    mean_reward = mean_reward + (r - mean_reward) / (t + 1)  # the baseline r̄
    grad = jax.grad(gradient_bandit_loss)(prefs, a, r - mean_reward, entropy_coef)
    entropy = categorical_entropy(prefs)
    return (prefs - step_size * grad, mean_reward, key), (r, a, entropy)


def bandit_run(key, kind: str, param, steps: int):
    """One run on a fresh 10-armed testbed problem: q*(a) ~ N(0, 1), r ~ N(q*(a), 1)."""
    k_problem, key = jax.random.split(key)
    q_star = jax.random.normal(k_problem, (NUM_ARMS,))
    zeros = jnp.zeros(NUM_ARMS)
    if kind == "value":
        step = lambda c, t: value_bandit_step(c, t, q_star, param, steps)  # noqa: E731
        carry = (zeros, zeros, key)
    else:
        step = lambda c, t: gradient_bandit_step(c, t, q_star, param, 0.1)  # noqa: E731
        carry = (zeros, jnp.float32(0.0), key)
    _, (r, a, entropy) = jax.lax.scan(step, carry, jnp.arange(steps))
    regret = q_star.max() - q_star[a]
    return {"reward": r, "regret": regret, "optimal": a == q_star.argmax(), "entropy": entropy}


def run_bandits(runs: int, steps: int) -> dict:
    """Every rule × run in two compiled programs (value-based, gradient)."""
    keys = jax.random.split(jax.random.key(0), runs)  # the same problems for every rule
    over_runs = lambda kind: jax.vmap(  # noqa: E731
        lambda p: jax.vmap(lambda k: bandit_run(k, kind, p, steps))(keys)
    )
    rules = jax.tree.map(lambda *x: jnp.array(x), *BANDIT_RULES.values())
    value = jax.jit(over_runs("value"))(rules)
    grad = jax.jit(over_runs("gradient"))(jnp.array(list(ENTROPY_COEFS.values())))
    out = {}
    for i, name in enumerate(BANDIT_RULES):
        out[name] = {k: np.asarray(v[i]) for k, v in value.items()}
    for i, name in enumerate(ENTROPY_COEFS):
        out[name] = {k: np.asarray(v[i]) for k, v in grad.items()}
    return out


GRID_EPSILON = {
    "greedy, Q₀ = 0 (optimistic)": dict(epsilon=0.0, epsilon_end=0.0, q_init=0.0),
    "greedy, Q₀ = −50 (pessimistic)": dict(epsilon=0.0, epsilon_end=0.0, q_init=-50.0),
    "ε = 0.1": dict(epsilon=0.1, epsilon_end=0.1),
    "ε: 0.1 → 0": dict(epsilon=0.1, epsilon_end=0.0),
}
GRID_BOLTZMANN = {
    "Boltzmann τ = 1": dict(temperature=1.0, temperature_end=1.0),
    "Boltzmann τ: 1 → 0.1": dict(temperature=1.0, temperature_end=0.1),
}


def grid_configs(episodes: int) -> dict[str, tuple[str, list[Config]]]:
    base = dict(
        algorithm="q-learning",
        env="CliffWalking",
        num_episodes=episodes,
        alpha=0.5,
        schedule="linear",  # a constant is a linear schedule with start = end
        decay_fraction=0.5,
        track_greedy_value=False,
    )
    eps = [Config(**base, **kw) for kw in GRID_EPSILON.values()]
    boltz = [Config(**base, exploration="boltzmann", **kw) for kw in GRID_BOLTZMANN.values()]
    return {"epsilon": (list(GRID_EPSILON), eps), "boltzmann": (list(GRID_BOLTZMANN), boltz)}


def run_gridworld(seeds: int, episodes: int) -> tuple[dict, float, Config]:
    """Q-learning on Cliff Walking under each exploration setting (settings × seeds vmapped)."""
    task = make_task("CliffWalking")
    start = int(np.argmax(np.asarray(task.mdp.initial)))
    optimal = float(np.asarray(value_iteration(task.mdp).values)[start])
    horizon = task.env_params.max_steps_in_episode
    keys = jax.random.split(jax.random.key(0), seeds)
    evaluate = lambda p: finite_horizon_evaluation(task.mdp, p, horizon)  # noqa: E731
    # the greedy policies' values, [C, seeds, S], in one compiled program per shape
    greedy_values = jax.jit(
        lambda q: jax.vmap(jax.vmap(evaluate))(greedy_policy(q, task.mdp.action_mask))
    )
    out = {}
    for names, configs in grid_configs(episodes).values():
        train = make_train(configs[0])
        over = jax.vmap(jax.vmap(train, in_axes=(0, None)), in_axes=(None, 0))
        state, metrics = jax.jit(over)(keys, stack_configs(configs))
        greedy = np.asarray(greedy_values(state.tables.q))[..., start]
        for i, name in enumerate(names):
            out[name] = {"returns": np.asarray(metrics["episode_return"][i]), "greedy": greedy[i]}
    return out, optimal, configs[0]


def bandit_figure(page, bandit: dict, window: int) -> str:
    plt = _guide.plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, r in bandit.items():
        ls = "--" if name in ENTROPY_COEFS else "-"
        steps = np.arange(1, r["reward"].shape[1] + 1)
        axes[0].plot(steps, _guide.smooth(r["reward"].mean(0), window), ls, label=name)
        axes[1].plot(steps, np.cumsum(r["regret"].mean(0)), ls, label=name)
        axes[2].plot(steps, r["entropy"].mean(0), ls, label=name)
    runs = next(iter(bandit.values()))["reward"].shape[0]
    axes[0].set(xlabel="step", ylabel="reward", title=f"average reward ({runs} problems)")
    axes[1].set(xlabel="step", ylabel="Σ (max q* − q*(aₜ))", title="cumulative regret")
    axes[2].set(xlabel="step", ylabel="nats", title="entropy of the policy that acted")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    return page.save(fig, "bandit")


def grid_figure(page, grid: dict, optimal: float, window: int) -> str:
    plt = _guide.plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, r in grid.items():
        x = np.arange(1, r["returns"].shape[1] + 1)
        ax.plot(x, _guide.smooth(r["returns"].mean(0), window), label=name)
    ax.axhline(optimal, color="k", ls=":", lw=1, label=f"optimal return ({optimal:.0f})")
    seeds = next(iter(grid.values()))["returns"].shape[0]
    ax.set(xlabel="episode", ylabel="online return", ylim=(-120, -5))
    ax.set_title(
        f"Q-learning on Cliff Walking: mean over {seeds} seeds, {window}-episode moving average",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return page.save(fig, "cliff-walking")


def run(quick: bool, out_dir: Path) -> dict:
    page = _guide.Page(__file__, quick, out_dir)
    runs, steps = (200, 300) if quick else (2000, 1000)
    seeds, episodes = (8, 100) if quick else (50, 500)
    bandit = run_bandits(runs, steps)
    grid, optimal, config = run_gridworld(seeds, episodes)
    last = max(1, episodes // 5)

    out = {"bandit": {}, "grid": {}, "optimal": optimal}
    bandit_rows = []
    for name, r in bandit.items():
        row = {
            "reward": float(r["reward"].mean()),
            "regret": float(r["regret"].sum(1).mean()),
            "optimal_late": float(r["optimal"][:, -steps // 10 :].mean()),
            "entropy_end": float(r["entropy"][:, -1].mean()),
        }
        out["bandit"][name] = row
        bandit_rows.append(
            [
                name,
                f"{row['reward']:.3f}",
                f"{row['regret']:.0f}",
                f"{row['optimal_late']:.0%}",
                f"{row['entropy_end']:.2f}",
            ]
        )
    grid_rows = []
    for name, r in grid.items():
        row = {
            "online": float(r["returns"].mean()),
            "online_late": float(r["returns"][:, -last:].mean()),
            "regret": float((optimal - r["returns"]).sum(1).mean()),
            "greedy_optimal": float(np.mean(np.round(r["greedy"]) == round(optimal))),
        }
        out["grid"][name] = row
        grid_rows.append(
            [
                name,
                f"{row['online']:.1f}",
                f"{row['online_late']:.1f}",
                f"{row['regret']:.0f}",
                f"{row['greedy_optimal']:.0%}",
            ]
        )
    bandit_link = bandit_figure(page, bandit, max(1, steps // 50))
    grid_link = grid_figure(page, grid, optimal, max(1, episodes // 50))

    b, g = out["bandit"], out["grid"]
    best_bandit = min(b, key=lambda n: b[n]["regret"])
    pg0, pg1 = (b[n] for n in ENTROPY_COEFS)
    c1 = list(ENTROPY_COEFS.values())[1]
    opt, pess = g["greedy, Q₀ = 0 (optimistic)"], g["greedy, Q₀ = −50 (pessimistic)"]
    fixed, decay = g["ε = 0.1"], g["ε: 0.1 → 0"]
    cost = "costs" if pg1["regret"] > pg0["regret"] else "does not cost"

    sections = [
        """\
An agent that always takes the action it currently believes best (*exploits*) never
finds out that another action is better; one that keeps trying actions at random
(*explores*) pays for it every time. Every method below trades the two off with a
knob, and the numbers show what each knob costs. *Regret* is the reward lost against
always taking the best action: Σₜ (max q* − q*(aₜ)) on a bandit, Σ (optimal return −
episode return) on the gridworld.

| rule | π(a∣s) | in jaxrl.core |
|---|---|---|
| ε-greedy | ε/A + (1 − ε)·1[a = argmax Q] | `epsilon_greedy`, `epsilon_greedy_probs` |
| ε schedule | ε(t) = ε₀ + (ε₁ − ε₀)·min(t/T, 1) | `linear_schedule`, `exponential_schedule` |
| Boltzmann | exp(Q(a)/τ) / Σ_b exp(Q(b)/τ) | `boltzmann`, `boltzmann_probs` |
| entropy bonus | softmax π_θ, loss −log π(a)·A − c·H(π) | `policy_gradient_loss`, `entropy_loss` |
| optimism | Q₀ above every true value: untried actions look best | `Config.q_init` (tabular) |""",
        f"""\
## A 10-armed bandit

The testbed of Sutton & Barto §2.3: {runs} problems, each with q*(a) ~ N(0, 1) for
{NUM_ARMS} arms and rewards r ~ N(q*(a), 1), {steps} pulls each. The value-based
learners keep sample averages Q(a) and act with one of the rules; schedules run
over the first half of the pulls. The gradient bandit (§2.8) learns softmax
preferences by the policy gradient with the running mean reward as baseline
(step size 0.1). Every rule × problem runs in one vmapped program. One step of each:

```python
{_guide.source(value_bandit_step)}


{_guide.source(gradient_bandit_loss)}
```

{
            _guide.table(
                [
                    "learner",
                    "mean reward",
                    "regret",
                    "best arm, last 10% of pulls",
                    "final entropy (nats)",
                ],
                bandit_rows,
            )
        }

{bandit_link}

- Pure greedy gets stuck: an arm whose first rewards were unlucky is never tried
  again (regret {b["greedy (ε = 0)"]["regret"]:.0f}, the best arm in
  {b["greedy (ε = 0)"]["optimal_late"]:.0%} of late pulls). Lowest regret here:
  **{best_bandit}** ({b[best_bandit]["regret"]:.0f}).
- Fixed ε keeps paying: ε = 0.1 finds the best arm fast but still picks a random arm
  one time in ten at the end; ε = 0.01 wastes little but learns slowly. A schedule
  explores early and exploits late, which is what the ε: 0.3 → 0 row's late
  best-arm rate ({b["ε: 0.3 → 0"]["optimal_late"]:.0%}) shows.
- The entropy bonus keeps the softmax policy spread out: its final entropy is
  {pg1["entropy_end"]:.2f} nats with c = {c1} against {pg0["entropy_end"]:.2f} without. On a
  stationary bandit that extra spread {cost} regret ({pg1["regret"]:.0f} vs
  {pg0["regret"]:.0f}); its use is in deep RL, where a policy that collapses early
  (entropy → 0) stops producing the data it would need to recover.""",
        f"""\
## A gridworld: Q-learning on Cliff Walking

`jaxrl.tabular` Q-learning (α = {config.alpha}, γ = {config.gamma}) with the exploration
rule as a Config setting; {seeds} seeds × {episodes} episodes, every setting of one rule in
one program (`stack_configs` + two `vmap`s). Schedules run over the first
{config.decay_fraction:.0%} of the episodes. Every reward is −1 (−100 at the cliff), so
Q₀ = 0 is above every true value: *optimistic*. The optimum (value iteration) is
{optimal:.0f}.

{
            _guide.table(
                [
                    "exploration",
                    "online return",
                    f"last {last} episodes",
                    "regret",
                    "greedy policy optimal (share of seeds)",
                ],
                grid_rows,
            )
        }

{grid_link}

- With optimistic Q₀ = 0 even the greedy agent explores: every action it has not
  tried still looks better than the −1s it has seen, so it walks into each corner
  once and then settles on the optimal path ({opt["greedy_optimal"]:.0%} of seeds, regret
  {opt["regret"]:.0f}). Start it pessimistic (Q₀ = −50) and the first path that reaches the
  goal looks better than anything untried: it stops exploring sooner (regret
  {pess["regret"]:.0f}) and {pess["greedy_optimal"]:.0%} of seeds end on the optimal path; the
  others keep walking a longer one forever.
- A fixed ε = 0.1 finds the optimal path ({fixed["greedy_optimal"]:.0%} of seeds) but walks
  it with ε-greedy falls forever: {fixed["online_late"]:.1f} per episode at the end. Decaying ε
  to 0 keeps the discovery and drops the falls ({decay["online_late"]:.1f}).
- Boltzmann exploration scales the randomness with the value gaps: next to the cliff
  (a gap near 100) it almost never steps off, in the open (gaps near 1) it wanders.

The deep agents use the same functions: DQN's ε is `linear_schedule`, PPO, A2C and
REINFORCE have `ent_coef` for the entropy bonus, SAC tunes its entropy weight α to a
target entropy (guide 4).""",
    ]
    page.write(TITLE, sections)
    return out


if __name__ == "__main__":
    _guide.main(run, __doc__.splitlines()[0])

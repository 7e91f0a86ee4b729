"""Guide 1: on-policy vs off-policy, and why SARSA's target has no max.

    python examples/guides/01_on_off_policy.py [--quick] [--out-dir docs/guides]

Writes docs/guides/01-on-off-policy.md and its figure. The Cliff Walking runs are
``examples/cliff_walking.py``'s ``train`` (all seeds in one ``jax.jit(jax.vmap(...))``),
here for SARSA, Expected SARSA and Q-learning.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guide  # noqa: E402

from jaxrl.run.stats import summarize  # noqa: E402
from jaxrl.tabular import draw_grid, make_task, value_iteration  # noqa: E402

ALGORITHMS = {"sarsa": "SARSA", "expected-sarsa": "Expected SARSA", "q-learning": "Q-learning"}
TITLE = "On-policy vs off-policy: SARSA, Expected SARSA and Q-learning"


def one_transition(epsilon: float, num_samples: int) -> dict:
    """The three TD targets of one transition beside the cliff, computed by jaxrl.core."""
    from jaxrl.core import epsilon_greedy_probs, expected_sarsa, q_learning, sarsa

    q_s = jnp.array([-13.0, -12.0, -14.0, -14.0])  # Q(s, ·) for up, right, down, left
    q_next = jnp.array([-12.0, -11.0, -111.0, -13.0])  # Q(s', ·): down from s' is the cliff
    a, r, discount = jnp.int32(1), -1.0, 1.0  # the agent stepped right, reward −1, γ = 1
    pi_next = epsilon_greedy_probs(q_next, epsilon)  # the behaviour policy at s'

    td_q = q_learning(q_s, a, r, discount, q_next)  # r + γ·max Q(s', ·) − Q(s, a)
    td_exp = expected_sarsa(q_s, a, r, discount, q_next, pi_next)  # r + γ·Σ π Q(s', ·) − Q(s, a)
    # SARSA's target uses the next action the behaviour really takes: draw many of them.
    n = num_samples
    a_next = jax.random.categorical(jax.random.key(0), jnp.log(pi_next), shape=(n,))
    td_sarsa = sarsa(
        jnp.tile(q_s, (n, 1)), jnp.full(n, a), r, discount, jnp.tile(q_next, (n, 1)), a_next
    )

    q_sa = q_s[a]  # target = TD error + Q(s, a)
    return {
        "pi_next": np.asarray(pi_next),
        "q_learning": float(td_q + q_sa),
        "expected_sarsa": float(td_exp + q_sa),
        "sarsa_mean": float((td_sarsa + q_sa).mean()),
        "sarsa_std": float((td_sarsa + q_sa).std()),
        "sarsa_values": sorted({round(float(v), 3) for v in np.asarray(td_sarsa + q_sa)}),
    }


def train_all(seeds: int, episodes: int) -> tuple[dict, object, object]:
    """Runs examples/cliff_walking.py's ``train`` for each algorithm; records its Config."""
    example = _guide.load_example("cliff_walking")
    configs = []
    make_train = example.make_train

    def recording_make_train(config, *args, **kwargs):
        configs.append(config)
        return make_train(config, *args, **kwargs)

    example.make_train = recording_make_train  # to print the settings the runs really used
    task = make_task("CliffWalking")
    results = {a: example.train(a, seeds, episodes, task) for a in ALGORITHMS}
    return results, configs[0], task


def figure(page, results, task, episodes: int, window: int) -> str:
    plt = _guide.plt()
    fig, (ax, ax_grid) = plt.subplots(
        2, 1, figsize=(7.5, 7.2), gridspec_kw={"height_ratios": [1.5, 1]}
    )
    x = np.arange(1, episodes + 1)
    paths = {}
    for algo, name in ALGORITHMS.items():
        r = results[algo]
        ax.plot(x, _guide.smooth(r["returns"].mean(axis=0), window), label=name)
        path, count = collections.Counter(r["paths"]).most_common(1)[0]
        ret = int(round(r["greedy_returns"][r["paths"].index(path)]))
        paths[f"{name} (return {ret}, {count / len(r['paths']):.0%} of seeds)"] = list(path)
    ax.set(xlabel="episode", ylabel="return of the episode (online)", ylim=(-110, -10))
    ax.set_title(
        f"Cliff Walking: mean over {results['sarsa']['returns'].shape[0]} seeds, "
        f"{window}-episode moving average",
        fontsize=10,
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    draw_grid(
        ax_grid,
        np.zeros(task.mdp.num_states),
        task.layout,
        paths=paths,
        title="most common greedy path after training (S bottom left, G bottom right)",
        cmap="Greys",
        annotate=False,
    )
    return page.save(fig, "cliff-walking")


def run(quick: bool, out_dir: Path) -> dict:
    page = _guide.Page(__file__, quick, out_dir)
    seeds, episodes = (8, 100) if quick else (100, 500)
    skip = episodes // 5  # online return is averaged over the episodes after the first fifth
    epsilon = 0.1
    tr = one_transition(epsilon, 2_000 if quick else 100_000)
    results, config, task = train_all(seeds, episodes)
    assert np.isclose(config.epsilon, epsilon), "the example's ε changed; update the excerpt"

    out = {"targets": tr}
    rows = []
    for algo, name in ALGORITHMS.items():
        r = results[algo]
        online = r["returns"][:, skip:].mean(axis=1)  # [seeds]
        greedy = np.round(r["greedy_returns"]).astype(int)
        counts = collections.Counter(greedy.tolist())
        shares = ", ".join(f"{k}: {v / seeds:.0%}" for k, v in sorted(counts.items(), reverse=True))
        s = summarize(online)
        out[algo] = {
            "online_mean": s["mean"],
            "online_iqm": s["iqm"],
            "greedy_median": float(np.median(greedy)),
            "greedy_shares": dict(counts),
        }
        rows.append([name, f"{s['mean']:.1f}", _guide.fmt_ci(s), shares, f"{r['seconds']:.0f} s"])
    fig_link = figure(page, results, task, episodes, max(1, episodes // 50))

    sarsa, q, exp = out["sarsa"], out["q-learning"], out["expected-sarsa"]
    # The optimal return from the start, by value iteration on the MDP's arrays.
    optimal = float(np.asarray(task.mdp.initial) @ np.asarray(value_iteration(task.mdp).values))
    out["optimal_return"] = optimal
    worst = min(ALGORITHMS, key=lambda a: out[a]["online_mean"])
    q_rank = "the worst of the three" if worst == "q-learning" else f"above {ALGORITHMS[worst]}'s"
    q_opt = (
        "it learned Q*, as an off-policy method should"
        if q["greedy_median"] == optimal
        else ("short of it in the median seed")
    )
    pi = tr["pi_next"]
    horizon = task.env_params.max_steps_in_episode
    looping = {
        a: float(np.mean(np.round(results[a]["greedy_returns"]) <= -horizon)) for a in ALGORITHMS
    }
    out["greedy_loops"] = looping
    loops = ""
    if looping["sarsa"] > 0:
        others = [ALGORITHMS[a] for a in ALGORITHMS if a != "sarsa" and looping[a] == 0]
        loops = (
            f"- SARSA's final table is a noisy estimate (α = {config.alpha} and a sampled "
            "next action): "
            f"in {looping['sarsa']:.0%} of seeds its greedy policy contains a loop and never "
            f"reaches the goal (return −{horizon}, the time limit), while the ε-greedy behaviour "
            "that generated the data still does"
            + (f"; {' and '.join(others)} show none." if others else ".")
            + "\n"
        )

    def better(a: dict, b: dict) -> str:
        return "higher" if a["online_mean"] > b["online_mean"] else "not higher"

    rules = _guide.table(
        ["method", "TD error δ (update: Q(s,a) ← Q(s,a) + α·δ)", "learns", "jaxrl.core"],
        [
            [
                "SARSA",
                "r + γ·Q(s′, a′) − Q(s, a), a′ the action the behaviour *will take*",
                "Q^π of the behaviour π (on-policy)",
                "`sarsa`",
            ],
            [
                "Expected SARSA",
                "r + γ·Σₐ′ π(a′∣s′)·Q(s′, a′) − Q(s, a)",
                "Q^π of any π you name (here the behaviour)",
                "`expected_sarsa`",
            ],
            [
                "Q-learning",
                "r + γ·maxₐ′ Q(s′, a′) − Q(s, a)",
                "Q* of the greedy policy (off-policy)",
                "`q_learning`",
            ],
        ],
    )
    header = [
        "method",
        "online return, mean",
        "IQM [95% CI] over seeds",
        "greedy return (share of seeds)",
        "time (incl. compile)",
    ]
    sections = [
        f"""\
Every TD control method nudges Q(s, a) toward a target built from the next reward and
the next state's action values. The three classic ones differ only in which policy
that next value belongs to:

{rules}

(γ becomes γ·(1 − terminated) at a true terminal state; in `jaxrl.core` that product is
the `discount_t` argument.)

**On-policy** means the policy being evaluated and improved is the one generating the
data; **off-policy** means data from one policy (the *behaviour*, here ε-greedy) is used to
learn about another (the *target*, here greedy). SARSA has no max because it estimates
the value of the ε-greedy policy that acts: the next action a′ is a sample from that
policy, so Q(s′, a′) is an unbiased one-sample estimate of Σₐ′ π(a′∣s′)·Q(s′, a′).
Putting a max there would evaluate the greedy policy instead, which is Q-learning.
Expected SARSA takes the expectation over a′ exactly instead of sampling it: with
π = ε-greedy it has SARSA's fixed point with less noise, with π = greedy it *is*
Q-learning.""",
        f"""\
## One transition, three targets

The agent stands beside the cliff, steps right (reward −1, γ = 1) and lands in s′,
where stepping down falls off the cliff. The code that computed the numbers below:

```python
{_guide.source(one_transition)}
```

At s′ the ε-greedy behaviour (ε = {epsilon}) picks right with probability {pi[1]:.3f}
and each other action with {pi[0]:.3f}. The targets:

{
            _guide.table(
                ["method", "target r + γ·(value of s′)"],
                [
                    ["Q-learning", f"{tr['q_learning']:.3f} (the greedy action only)"],
                    ["Expected SARSA", f"{tr['expected_sarsa']:.3f} (the ε-greedy average)"],
                    [
                        "SARSA",
                        f"one of {', '.join(f'{v:g}' for v in tr['sarsa_values'])}; "
                        f"mean {tr['sarsa_mean']:.3f}, std {tr['sarsa_std']:.2f} over the samples",
                    ],
                ],
            )
        }

SARSA's target averages to Expected SARSA's, but one sample in
{1 / pi[2]:.0f} carries the −100 of the cliff into Q(s, a). Q-learning ignores the
chance of falling altogether: it values s′ as if the agent will never explore again.""",
        f"""\
## Cliff Walking (Sutton & Barto, example 6.6)

{seeds} seeds × {episodes} episodes per method, α = {config.alpha}, ε = {config.epsilon},
γ = {config.gamma} (the settings of `examples/cliff_walking.py`, whose `train` this guide
calls). *Online return* is the return of the episodes the agent actually played while
learning, averaged over episodes {skip + 1}–{episodes}; the *greedy return* is the exact
return of the greedy policy of the final Q (the shares are over seeds).

{_guide.table(header, rows)}

{fig_link}

What the numbers show:

- Q-learning's greedy policy walks the cliff edge (median greedy return
  {q["greedy_median"]:.0f}; value iteration on the same MDP gives the optimum, {optimal:.0f}):
  {q_opt}. But it still *acts* ε-greedily on that edge and falls now and then, so its
  online return, {q["online_mean"]:.1f}, is {q_rank}.
- SARSA learned the value of the ε-greedy policy, including its falls, and so prefers
  a path further from the edge (median greedy return {sarsa["greedy_median"]:.0f}). Its online
  return, {sarsa["online_mean"]:.1f}, is {better(sarsa, q)} than Q-learning's.
{loops}- Expected SARSA (online return {exp["online_mean"]:.1f}) learns the same thing as SARSA
  without the sampling noise in its target, so it tolerates α = {config.alpha} better and
  its online return is {better(exp, sarsa)} than SARSA's.

Which one is "right" depends on the question. If exploration will be switched off
after training, Q-learning's path is the better one; if the agent must keep exploring
(or its actions are noisy), SARSA's answer is the safer one. Letting ε decay to 0 makes
SARSA's answer converge to Q* as well (guide 2 shows ε schedules).""",
        """\
## Further

The same TD errors drive the deep agents: `jaxrl.agents.dqn` builds its loss on
`q_learning` / `double_q_learning` over a replay batch (guide 4).
`examples/maximization_bias.py` shows the price of the max itself (Sutton & Barto
figure 6.5: Q-learning vs Double Q-learning).""",
    ]
    page.write(TITLE, sections)
    return out


if __name__ == "__main__":
    _guide.main(run, __doc__.splitlines()[0])

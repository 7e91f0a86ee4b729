"""Report sections and figures of the speed, minatar, tabular and llm suites."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.harness.report_returns import draw_returns_like, returns_like_md

__all__ = [
    "SPEED_TARGETS",
    "draw",
    "llm_decode_md",
    "llm_md",
    "minatar_md",
    "readme_lines",
    "speed_md",
    "speed_summary",
    "tabular_md",
]

# TARGETS.md: (what is compared, bound). "run_ratio": jaxrl run s / rejax run s ≤ bound;
# "speedup": jaxrl steps/s / rejax steps/s ≥ bound.
SPEED_TARGETS = {
    "ppo": ("run_ratio", 0.8),
    "dqn": ("speedup", 8.0),
    "sac": ("speedup", 3.0),
}
PUBLISHED_REJAX = {  # TARGETS.md, measured on this kind of machine
    "ppo": "3.06 s run (164k steps/s)",
    "dqn": "745 steps/s",
    "sac": "580 steps/s",
}


def _f(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if abs(x) >= 10_000:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}f}"


def _median(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def speed_summary(data: dict) -> list[dict]:
    """One entry per (algorithm, seeds): medians over rounds of both sides and the ratios."""
    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in data["rows"]:
        if row.get("kind") == "algo":
            groups[(row["algo"], row["seeds"])][row["impl"]].append(row)
    limits = {
        (r["env_id"], r["num_envs"]): r["steps_per_s"]
        for r in data["rows"]
        if r.get("kind") == "env_limit"
    }
    settings = data.get("settings", {})
    out = []
    for (algo, seeds), sides in groups.items():
        j, x = sides.get("jaxrl", []), sides.get("rejax", [])
        entry = {
            "algo": algo,
            "seeds": seeds,
            "env_id": (j or x)[0]["env_id"],
            "steps": (j or x)[0]["total_timesteps"],
            "rounds": max(len(j), len(x)),
            "jaxrl": {k: _median(j, k) for k in ("compile_s", "run_s", "steps_per_s")},
            "rejax": {k: _median(x, k) for k in ("compile_s", "run_s", "steps_per_s")}
            if x
            else None,
        }
        num_envs = (settings.get(algo, {}).get("jaxrl") or {}).get("num_envs")
        entry["env_limit"] = limits.get((entry["env_id"], num_envs))
        entry["num_envs"] = num_envs
        if x and entry["jaxrl"]["run_s"] and entry["rejax"]["run_s"]:
            entry["run_ratio"] = entry["jaxrl"]["run_s"] / entry["rejax"]["run_s"]
            entry["speedup"] = entry["jaxrl"]["steps_per_s"] / entry["rejax"]["steps_per_s"]
        out.append(entry)
    order = {a: i for i, a in enumerate(["ppo", "a2c", "trpo", "reinforce", "dqn", "sac", "td3"])}
    return sorted(out, key=lambda e: (order.get(e["algo"], 99), e["seeds"]))


def _target_text(entry: dict) -> str:
    if entry["seeds"] != 1 or entry["algo"] not in SPEED_TARGETS or "run_ratio" not in entry:
        return "–"
    kind, bound = SPEED_TARGETS[entry["algo"]]
    if kind == "run_ratio":
        ok = entry["run_ratio"] <= bound
        return f"{'✓' if ok else '✗'} run ratio ≤ {bound} (is {entry['run_ratio']:.2f})"
    ok = entry["speedup"] >= bound
    return f"{'✓' if ok else '✗'} ≥ {bound:g}× rejax (is {entry['speedup']:.2f}×)"


def _vmap_lines(data: dict) -> list[str]:
    rows = [r for r in data["rows"] if r.get("kind") == "vmap"]
    if not rows:
        return []
    lines = [
        "",
        "vmap scaling (jaxrl; seeds under one `jax.vmap`, run time relative to one seed; "
        "TARGETS.md: PPO 8 seeds ≤ 4 × one seed, rejax 7.75 ×):",
        "",
        "| algorithm | env steps per seed | seeds | compile s | run s | steps/s (all seeds) "
        "| run s / one seed's |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {r["algo"]: r["run_s"] for r in rows if r["seeds"] == 1}
    for r in sorted(rows, key=lambda r: (r["algo"], r["seeds"])):
        rel = r["run_s"] / base[r["algo"]] if r["algo"] in base else None
        lines.append(
            f"| {r['algo']} | {r['total_timesteps']:,} | {r['seeds']} | {_f(r['compile_s'], 1)} "
            f"| {_f(r['run_s'])} | {_f(r['steps_per_s'], 0)} | {_f(rel)} |"
        )
    return lines


def _cli_lines(data: dict) -> list[str]:
    """The user's path: ``jaxrl train ALGO`` at its defaults, all seeds in one command beside
    one command per seed (``kind == "cli"`` rows of ``speed.measure_cli``)."""
    rows = [r for r in data["rows"] if r.get("kind") == "cli"]
    if not rows:
        return []
    lines = [
        "",
        "**CLI defaults**: what a user gets, `jaxrl train ALGO --env ENV --total-steps N` at "
        "every other default (networks, 4 seeds, one host device per core, chunks), one process "
        "per command; compile and run time summed over the commands; steps/s over all seeds "
        "(rows `cli/ALGO`: `python -m benchmarks speed --only cli/td3 cli/ddpg cli/sac cli/dqn`):",
        "",
        "| algorithm | env | steps per seed | seeds | one command: compile / run s | steps/s "
        "| one command per seed: compile / run s | steps/s | one command faster |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    pairs: dict[str, dict[bool, dict]] = defaultdict(dict)
    for r in rows:
        pairs[r["algo"]][bool(r["one_by_one"])] = r
    for algo in sorted(pairs):
        together, apart = pairs[algo].get(False), pairs[algo].get(True)
        first = together or apart

        def cells(r):
            if r is None:
                return "– | –"
            return f"{_f(r['compile_s'], 1)} / {_f(r['run_s'])} | {_f(r['steps_per_s'], 0)}"

        faster = "–"
        if together and apart:
            faster = _check(together["steps_per_s"] >= apart["steps_per_s"])
        lines.append(
            f"| {algo} | {first['env_id']} | {first['total_timesteps']:,} | {first['seeds']} "
            f"| {cells(together)} | {cells(apart)} | {faster} |"
        )
    return lines


def _profile_lines(data: dict) -> list[str]:
    """PPO's run time split into a fixed part and a per-epoch part (benchmarks/ppo_profile.py)."""
    prof = data.get("ppo_profile")
    if not prof:
        return []
    fits, e = prof["fit"], max(prof["epochs"])
    lo, hi = prof["load_1min"]
    lines = [
        "",
        f"**Where PPO's run time goes** (one seed at rejax's settings; run time fitted as fixed "
        f"+ epochs × per-epoch over {', '.join(map(str, prof['epochs']))} epochs, "
        f"{prof['rounds']} alternating rounds, each run a fresh process, 1-minute load "
        f"{lo:.1f}–{hi:.1f}, {prof['date']}, `{prof['command']}`):",
        "",
        "| | fixed s (rollouts, advantages, loop) | per epoch s (4 minibatch steps × every "
        f"update) | {e} epochs, fitted run s | largest residual s |",
        "|---|---|---|---|---|",
    ]
    total = {}
    for impl, f in fits.items():
        total[impl] = f["fixed_s"] + e * f["per_epoch_s"]
        lines.append(
            f"| {impl} | {_f(f['fixed_s'])} | {_f(f['per_epoch_s'])} | {_f(total[impl])} "
            f"| {_f(f['max_residual_s'])} |"
        )
    j = fits["jaxrl"]
    lines += [
        "",
        f"The goal of issue 18 (jaxrl ≤ 0.6 × rejax) is {_f(0.6 * total['rejax'])} s at {e} "
        f"epochs; jaxrl's gradient epochs alone take {_f(e * j['per_epoch_s'])} s of its "
        f"{_f(total['jaxrl'])} s and the fixed part {_f(j['fixed_s'])} s.",
    ]
    return lines


_DQN_PARTS = {
    "dqn-collect": "acting, environment steps, replay inserts (learning off)",
    "dqn-sample": "the same plus drawing the replay samples (no learning)",
    "dqn-single": "learning with plain instead of Double DQN (one forward pass fewer)",
    "dqn-relu": "learning with ReLU instead of SiLU",
    "dqn": "the whole run (rejax's settings)",
}


def _dqn_profile_lines(data: dict) -> list[str]:
    """DQN's run time taken apart (benchmarks/offpolicy_speed.py --save): what acting,
    sampling and learning cost, beside the run time the DQN goal needs."""
    prof = data.get("dqn_profile")
    if not prof:
        return []
    runs = {r["run"]: r for r in prof["rows"]}
    lo, hi = prof["load_1min"]
    lines = [
        "",
        f"**Where DQN's run time goes** ({prof['seeds']} seed, rejax's settings, medians of "
        f"{prof['repeats']} calls of one compiled program, 1-minute load {lo:.1f}–{hi:.1f}, "
        f"{prof['date']}, `{prof['command']}`):",
        "",
        "| run | what it does | steps | compile s | run s | CPU s | steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, what in _DQN_PARTS.items():
        if name in runs:
            r = runs[name]
            lines.append(
                f"| {name} | {what} | {r['total_timesteps']:,} | {_f(r['compile_s'], 1)} "
                f"| {_f(r['run_s'])} | {_f(r['cpu_s'])} | {_f(r['steps_per_s'], 0)} |"
            )
    rejax = [
        e["rejax"]["steps_per_s"]
        for e in speed_summary(data)
        if e["algo"] == "dqn" and e["seeds"] == 1 and e["rejax"]
    ]
    if "dqn" in runs and "dqn-collect" in runs and rejax:
        whole, collect = runs["dqn"], runs["dqn-collect"]
        goal_s = whole["total_timesteps"] / (8 * rejax[0])
        lines += [
            "",
            f"The goal of issue 18 (DQN ≥ 8 × rejax's {_f(rejax[0], 0)} steps/s) is a run of "
            f"{_f(goal_s)} s for {whole['total_timesteps']:,} steps; learning (whole run − "
            f"collect) takes {_f(whole['run_s'] - collect['run_s'])} s of the whole run's "
            f"{_f(whole['run_s'])} s and acting with the environment and replay inserts "
            f"{_f(collect['run_s'])} s.",
        ]
    if prof.get("note"):  # written by hand beside the measurement
        lines += ["", prof["note"]]
    return lines


def speed_md(data: dict, figures_rel: Path) -> list[str]:
    lines = [
        "**rejax settings** (the table below: each algorithm at rejax's settings, e.g. 64-64 "
        "networks for SAC and TD3, not the CLI's defaults; those are in the CLI-defaults table "
        "further down). "
        "Medians over the alternating rounds, each measurement in a fresh process; compile "
        "and run time apart; steps/s = seeds × steps / run s. rejax 0.1.3 runs in "
        "benchmarks/.venv-rejax (gymnax 0.0.9) with its evaluation replaced by a no-op. "
        "Env limit: the same environment and environment count stepped with random actions "
        "in one `lax.scan`.",
        "",
        "| algorithm | env (envs) | steps | seeds | jaxrl compile / run s | jaxrl steps/s "
        "| rejax compile / run s | rejax steps/s | jaxrl/rejax run time | target (TARGETS.md) "
        "| env limit steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in speed_summary(data):
        j, x = e["jaxrl"], e["rejax"]
        rejax = f"{_f(x['compile_s'], 1)} / {_f(x['run_s'])}" if x else "no rejax version"
        lines.append(
            f"| {e['algo']} | {e['env_id']} ({e['num_envs']}) | {e['steps']:,} | {e['seeds']} "
            f"| {_f(j['compile_s'], 1)} / {_f(j['run_s'])} | {_f(j['steps_per_s'], 0)} "
            f"| {rejax} | {_f(x['steps_per_s'], 0) if x else '–'} | {_f(e.get('run_ratio'))} "
            f"| {_target_text(e)} | {_f(e['env_limit'], 0)} |"
        )
    ppo = {e["seeds"]: e for e in speed_summary(data) if e["algo"] == "ppo"}
    if 1 in ppo and 8 in ppo:
        jr = ppo[8]["jaxrl"]["run_s"] / ppo[1]["jaxrl"]["run_s"]
        text = f"PPO, 8 seeds under one vmap / one seed, run time: jaxrl {jr:.2f}×"
        if ppo[1]["rejax"] and ppo[8]["rejax"]:
            xr = ppo[8]["rejax"]["run_s"] / ppo[1]["rejax"]["run_s"]
            text += f", rejax {xr:.2f}×"
        lines += ["", text + f" (target ≤ 4×: {'✓' if jr <= 4 else '✗'})."]
    lines += _profile_lines(data)
    lines += _dqn_profile_lines(data)
    lines += [
        "",
        "rejax's numbers in TARGETS.md (same machine type, quiet): "
        + "; ".join(f"{k} {v}" for k, v in PUBLISHED_REJAX.items())
        + ".",
    ]
    lines += _vmap_lines(data)
    lines += _cli_lines(data)
    lines += ["", f"![speed]({figures_rel / 'speed.png'})"]
    return lines


def minatar_md(data: dict, figures_rel: Path) -> list[str]:

    lines = [f"> {n}" for n in data.get("suite_notes", [])]
    lines += [""] if lines else []
    return lines + returns_like_md(data, figures_rel, "minatar")


def _ci(s: dict) -> str:
    if not s or s.get("iqm") is None:
        return "–"
    lo, hi = s["iqm_ci95"]
    return f"{s['iqm']:.1f} [{lo:.1f}, {hi:.1f}]"


def _check(ok: bool) -> str:
    return "✓" if ok else "✗"


def tabular_md(data: dict, figures_rel: Path) -> list[str]:
    rows = {r["name"]: r for r in data["rows"]}
    lines: list[str] = []
    if "cliff-walking" in rows:
        r = rows["cliff-walking"]
        lines += [
            f"**Cliff Walking** (Sutton & Barto ex. 6.6, fig. 6.4): α = {r['alpha']}, "
            f"ε = {r['epsilon']}, {r['seeds']} seeds × {r['episodes']} episodes in one vmap.",
            "",
            "| algorithm | greedy path return, IQM [95% CI] (share of seeds) | published | "
            "online return per episode (after ep. 100), IQM [95% CI] |",
            "|---|---|---|---|",
        ]
        pub = r["published"]
        for algo, p in (("sarsa", pub["sarsa_greedy"]), ("q-learning", pub["q_learning_greedy"])):
            a = r[algo]
            shares = ", ".join(
                f"{k}: {v:.0%}" for k, v in sorted(a["greedy_return_shares"].items())
            )
            lines.append(
                f"| {algo} | {_ci(a['greedy_return'])} ({shares}) | {p} "
                f"| {_ci(a['online_return'])} |"
            )
        c = r["checks"]
        lines += [
            "",
            f"{_check(c['sarsa_greedy_is_safe_path'])} SARSA's greedy path is the safe one (−17); "
            f"{_check(c['q_learning_greedy_is_optimal_path'])} Q-learning's is the optimal one "
            f"(−13); {_check(c['q_learning_online_worse'])} Q-learning's online return is worse "
            "than SARSA's.",
            "",
        ]
    if "maximization-bias" in rows:
        r = rows["maximization-bias"]
        lines += [
            f"**Maximization bias** (ex. 6.7, fig. 6.5): α = {r['alpha']}, ε = {r['epsilon']}, "
            f"{r['seeds']} seeds × {r['episodes']} episodes; share of left actions from A "
            "(optimal under ε-greedy: 5%).",
            "",
            "| algorithm | episodes 1–10 | peak (episode) "
            f"| episodes {r['q-learning'].get('tail_from_episode', '?')}–{r['episodes']} |",
            "|---|---|---|---|",
        ]
        for algo in ("q-learning", "double-q"):
            a = r[algo]
            lines.append(
                f"| {algo} | {a['left_share_first10']:.1%} | {a['left_share_peak']:.1%} "
                f"({a['peak_episode']}) | {a['left_share_tail']:.1%} |"
            )
        c = r["checks"]
        lines += [
            "",
            f"{_check(c['q_learning_peak_far_above_5pct'])} Q-learning's peak is far above 5%; "
            f"{_check(c['double_q_peak_below_q_learning'])} Double Q's peak is below it; "
            f"{_check(c['double_q_tail_near_5pct'])} Double Q ends within 3 points of 5%.",
            "",
        ]
    if "frozenlake-vi" in rows:
        r = rows["frozenlake-vi"]
        lines += [
            "**FrozenLake** (slippery), value iteration; the greedy policy's exact probability "
            "of reaching the goal within the time limit:",
            "",
            "| map | γ | iterations | success rate | published |",
            "|---|---|---|---|---|",
        ]
        for env in ("FrozenLake-4x4", "FrozenLake-8x8"):
            a = r[env]
            pub = r["published"].get(env)
            lines.append(
                f"| {env} (limit {a['time_limit']}) | {a['gamma']:.2f} | {a['iterations']} "
                f"| {a['success_rate']:.4f} | {pub if pub is not None else '–'} |"
            )
        lines += ["", f"Source: {r['published']['source']}.", ""]
    lines.append(f"![tabular]({figures_rel / 'tabular.png'})")
    return lines


def llm_md(data: dict, figures_rel: Path) -> list[str]:
    rows = {r["name"]: r for r in data["rows"]}
    lines: list[str] = []
    if "dpo" in rows:
        r = rows["dpo"]
        lines += [
            f"**DPO** on the preference task: SFT {r['sft_steps']} updates, then DPO "
            f"(β = {r['beta']}) {r['dpo_steps']} updates; numbers before → after.",
            "",
            "| run | hidden score | held-out pref. accuracy | log π(chosen) | log π(rejected) "
            "| margin | KL to ref. |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ("DPO", "RPO"):
            if name not in r:
                continue
            fl = r[name]["first_last"]

            def arrow(k, fl=fl):
                return f"{fl[k][0]:.3f} → {fl[k][1]:.3f}" if k in fl else "–"

            lines.append(
                f"| {name} | {arrow('score')} | {arrow('heldout_pref_accuracy')} "
                f"| {arrow('train_logps_chosen')} | {arrow('train_logps_rejected')} "
                f"| {arrow('train_margin')} | {arrow('kl')} |"
            )
        lines += [
            "",
            "Likelihood displacement under DPO (chosen and rejected log-probs both fall while "
            f"the margin grows): {'yes — RPO shown beside it' if r['displacement'] else 'no'}.",
            "",
        ]
    if "generation" in rows:
        r = rows["generation"]
        lines += [
            f"**Generation** throughput, batch {r['batch']}, prompt {r['prompt_len']} tokens:",
            "",
            "| total length | path | compile s | run s | tokens/s | KV-cache speed-up |",
            "|---|---|---|---|---|---|",
        ]
        for length, e in r["lengths"].items():
            for path in ("kv_cache", "recompute"):
                p = e[path]
                lines.append(
                    f"| {length} | {path} | {p['compile_s']:.2f} | {p['run_s']:.3f} "
                    f"| {_f(p['tokens_per_s'], 0)} | {e['speedup']:.1f}× |"
                )
        lines.append("")
    if "grpo" in rows:
        r = rows["grpo"]
        per_seed = ", ".join(
            f"seed {x['seed']}: {x['greedy_before']:.0%} → {x['greedy_after']:.0%}"
            for x in r["runs"]
        )
        g, kl = r["greedy_gain_points"], r["kl_ref_after"]
        lines += [
            f"**GRPO** on 2-digit addition: SFT {r['sft_steps']} updates, then GRPO "
            f"{r['grpo_steps']} steps, {len(r['runs'])} seeds. Greedy exact match {per_seed}; "
            f"gain {_f(g.get('mean'), 1)} points (95% CI of the mean "
            f"[{_f((g.get('mean_ci95') or [None])[0], 1)}, "
            f"{_f((g.get('mean_ci95') or [None, None])[1], 1)}]); KL to the reference "
            f"{_f(kl.get('mean'), 2)} nats. Target +30 points: "
            f"{_check(r['checks']['gain_at_least_30_points'])}.",
            "",
        ]
    if "rlhf" in rows:
        r = rows["rlhf"]
        per_seed = ", ".join(
            f"seed {x['seed']}: {x['score_before']:.3f} → {x['score_after']:.3f} "
            f"(KL {x['kl_ref_after']:.2f})"
            for x in r["runs"]
        )
        g = r["score_gain"]
        lines += [
            f"**RLHF-PPO** on the preference task (β = {r.get('kl_coef')}): SFT "
            f"{r['sft_steps']}, reward model {r['rm_steps']}, PPO {r['ppo_steps']} steps. "
            f"Hidden true score {per_seed}; mean gain {_f(g.get('mean'), 3)}. "
            f"{_check(r['checks']['rlhf_raises_hidden_score'])} hidden score raised.",
            "",
        ]
    if "rl-speed" in rows:
        r = rows["rl-speed"]
        lines += [
            "**Throughput** of one compiled step (default sizes):",
            "",
            "| step | completions | s per step | steps/s | tokens/s | share of time per stage |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("grpo", "rlhf"):
            if name not in r:
                continue
            e = r[name]
            shares = ", ".join(
                f"{k} {v:.0%}"
                for k, v in sorted(e["stages"]["share"].items(), key=lambda kv: -kv[1])
            )
            lines.append(
                f"| {name} | {e['completions_per_step']} | {e['step_s_median']:.3f} "
                f"| {e['steps_per_s']:.2f} | {_f(e['tokens_per_s'], 0)} | {shares} |"
            )
        lines.append("")
    return lines


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(data: dict, fig_dir: Path) -> list[Path]:
    """The suite's figures (speed bars, MinAtar curves, tabular curves)."""
    suite = data["suite"]
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    if suite == "speed":
        return [_draw_speed(data, fig_dir / "speed.png")]
    if suite == "minatar":
        return draw_returns_like(data, fig_dir, "minatar")
    if suite == "tabular":
        return [_draw_tabular(data, fig_dir / "tabular.png")]
    return []


def _draw_speed(data: dict, path: Path):
    summary = [e for e in speed_summary(data) if e["seeds"] == 1]
    vmap = [r for r in data["rows"] if r.get("kind") == "vmap"]
    if not summary:
        return None
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(summary))
    ax.bar(x - 0.2, [e["jaxrl"]["steps_per_s"] for e in summary], 0.4, label="jaxrl")
    rej = [e["rejax"]["steps_per_s"] if e["rejax"] else 0 for e in summary]
    ax.bar(x + 0.2, rej, 0.4, label="rejax 0.1.3")
    ax.set_xticks(x, [e["algo"] for e in summary])
    ax.set_yscale("log")
    ax.set_ylabel("environment steps / s (one seed)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    for algo in sorted({r["algo"] for r in vmap}):
        rs = sorted((r for r in vmap if r["algo"] == algo), key=lambda r: r["seeds"])
        ax2.plot([r["seeds"] for r in rs], [r["steps_per_s"] for r in rs], "o-", label=algo)
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("seeds under one vmap")
    ax2.set_ylabel("steps / s (all seeds)")
    if vmap:
        ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_tabular(data: dict, path: Path):
    rows = {r["name"]: r for r in data["rows"]}
    panels = [n for n in ("cliff-walking", "maximization-bias") if n in rows]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, name in zip(axes.flat, panels, strict=True):
        r = rows[name]
        if name == "cliff-walking":
            for algo in ("sarsa", "q-learning"):
                y = np.asarray(r[algo]["curve_mean"])
                ax.plot(np.linspace(0, r["episodes"], y.size), y, label=algo)
            ax.set_ylim(-100, -10)
            ax.set_ylabel("online return (mean over seeds)")
            ax.set_title("Cliff Walking (S&B fig. 6.4)", fontsize=10)
        else:
            for algo in ("q-learning", "double-q"):
                y = 100 * np.asarray(r[algo]["curve"])
                ax.plot(np.linspace(0, r["episodes"], y.size), y, label=algo)
            ax.axhline(5, color="k", ls="--", lw=1, label="optimal (5%)")
            ax.set_ylabel("% left actions from A")
            ax.set_title("Maximization bias (S&B fig. 6.5)", fontsize=10)
        ax.set_xlabel("episodes")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cli_speed_lines(data: dict) -> list[str]:
    """One phrase per algorithm of the ``cli`` rows: steps/s (median over rounds) of the
    seeds in one command vs the same seeds one command after another."""
    groups: dict[str, dict[bool, list]] = defaultdict(lambda: defaultdict(list))
    for r in data["rows"]:
        if r.get("kind") == "cli":
            groups[r["algo"]][bool(r["one_by_one"])].append(r)
    return [
        f"{algo} {sides[False][0]['env_id']} ({sides[False][0]['total_timesteps']:,} steps per "
        f"seed) {_f(_median(sides[False], 'steps_per_s'), 0)} vs "
        f"{_f(_median(sides[True], 'steps_per_s'), 0)}"
        for algo, sides in groups.items()
        if sides[False] and sides[True]
    ]


def readme_lines(data: dict) -> list[str]:
    """A line or two per suite for the README's results section."""
    suite = data["suite"]
    if suite == "speed":
        lines = []
        for e in speed_summary(data):
            if e["seeds"] == 1 and e["rejax"]:
                lines.append(
                    f"{e['algo']} {_f(e['jaxrl']['steps_per_s'], 0)} steps/s vs rejax "
                    f"{_f(e['rejax']['steps_per_s'], 0)} ({e['speedup']:.2f}×)"
                )
        out = [
            "Speed on 2 CPU cores, one seed, beside rejax 0.1.3, both at rejax's settings (SAC and "
            "TD3 with 64-64 networks): " + "; ".join(lines) + ".",
            "",
        ]
        cli = _cli_speed_lines(data)
        if cli:
            out += [
                "At the defaults a user gets (`jaxrl train ALGO`, 4 seeds in one command vs the "
                "same 4 seeds as 4 commands, env steps/s summed over seeds): "
                + "; ".join(cli)
                + ".",
                "",
            ]
        return out
    if suite == "minatar":
        parts = []
        for r in data["rows"]:
            s, pub = r["final_return"], r.get("published") or {}
            iqm = "–" if s.get("iqm") is None else f"{s['iqm']:.1f}"
            game = r.get("game", r["env_id"]).replace("-MinAtar", "")
            parts.append(
                f"{game} {iqm} at {r['total_timesteps'] / 1e6:g}M "
                f"steps (gymnax-blines {pub.get('value', '–'):g} at 10M)"
            )
        return ["MinAtar PPO (no sticky actions): " + "; ".join(parts) + ".", ""]
    if suite == "tabular":
        ok = all(all(r["checks"].values()) for r in data["rows"])
        return [
            "Tabular: Sutton & Barto's Cliff Walking and maximization-bias figures and "
            f"FrozenLake's optimum reproduced ({'all checks pass' if ok else 'see the report'}).",
            "",
        ]
    if suite == "llm":
        rows = {r["name"]: r for r in data["rows"]}
        parts = []
        if "grpo" in rows:
            g = rows["grpo"]
            parts.append(
                f"GRPO on addition {_f(g['greedy_gain_points'].get('mean'), 0)} exact-match "
                f"points over SFT ({len(g['runs'])} seeds)"
            )
        if "rlhf" in rows:
            r = rows["rlhf"]
            parts.append(
                f"RLHF-PPO hidden score gain {_f(r['score_gain'].get('mean'), 3)} "
                f"({len(r['runs'])} seeds)"
            )
        if "dpo" in rows:
            fl = rows["dpo"]["DPO"]["first_last"]["score"]
            parts.append(f"DPO hidden score {fl[0]:.3f} → {fl[1]:.3f}")
        return ["Language models (small, from scratch): " + "; ".join(parts) + ".", ""]
    return []


def llm_decode_md(data: dict) -> list[str]:
    """RESULTS.md's ``llm_decode`` section from ``benchmarks/results/llm_decode.json``
    (written by ``python benchmarks/llm_decode.py``, which is not a harness suite)."""
    m = data["model"]
    lines = [
        "## llm_decode",
        "",
        f"`python benchmarks/llm_decode.py`: a random {m['architecture']} model "
        f"({m['params'] / 1e6:.1f}M parameters: width {m['d_model']}, {m['num_layers']} layers, "
        f"{m['num_heads']} query / {m['num_kv_heads']} KV heads, MLP {m['d_ff']}, vocabulary "
        f"{m['vocab']}) loaded from one Hugging Face directory by each side in its own process; "
        f"greedy, batch {data['batch']}, prompt {data['prompt_len']}, {data['new_tokens']} new "
        f"tokens, KV cache on. {data['machine']}. {data.get('note', '')}",
        "",
        "| impl | dtype | compile s | prefill tok/s | decode tok/s | decode tok per CPU-s "
        "| peak RSS MB | load before/after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['impl']} | {r['dtype']} | {r['compile_s']:.1f} | "
            f"{r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.1f} | "
            f"{r['decode_tokens_per_cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['loadavg_1min_before']:.1f} / {r['loadavg_1min_after']:.1f} |"
        )
    wall = data["decode_speedup_jaxrl_over_transformers"]
    cpu = data.get("decode_speedup_per_cpu_second", {})
    ratios = ", ".join(
        f"{k} {v:.1f}×" + (f" ({cpu[k]:.1f}× per CPU second)" if k in cpu else "")
        for k, v in wall.items()
    )
    lines += ["", f"Decode ratio jaxrl / transformers: {ratios}; the goal is ≥ 2×.", ""]
    return lines

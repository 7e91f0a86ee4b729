"""The tables and figures of a suite of learning runs (returns, minatar) and their judgement.

Used by ``report`` (the returns suite) and ``report_suites`` (minatar), so neither
imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import figures

__all__ = ["draw_returns_like", "judged", "returns_like_md", "verdict"]


def _f(x: Any, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, int | float):
        return f"{x:,.{digits}f}".replace(",", " ") if abs(x) >= 1000 else f"{x:.{digits}f}"
    return str(x)


def _steps(n: int) -> str:
    """500000 -> "500k", 10000000 -> "10M"."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1e6:g}M"
    return f"{n / 1000:.0f}k" if n >= 1000 else str(n)


def _g(x: Any) -> str:
    return "–" if x is None else f"{x:g}"


def verdict(stats: dict, published: dict | None, random: float | None = None) -> str:
    """Whether an IQM meets a published number, else by how much it falls short.

    Args:
      stats: ``summarize_scores`` output (``iqm``, ``iqm_ci95``).
      published: ``{"value", "spread", ...}`` or None.
      random: the random policy's return, to express a shortfall as a share of the
        random→published range.
    """
    if published is None:
        return "no published number"
    if not stats or stats.get("iqm") is None:
        return "no finished episode"
    value, spread = published["value"], published.get("spread") or 0.0
    bar = value - spread
    iqm = stats["iqm"]
    bar_text = f"{_g(value)} − {_g(spread)}" if spread else _g(value)
    if iqm >= bar:
        return f"meets (IQM {_f(iqm)} ≥ {bar_text})"
    gap = bar - iqm
    share = ""
    if random is not None and value != random:
        share = f", {gap / abs(value - random):.0%} of the random→published range"
    reach = " (95% CI reaches it)" if stats["iqm_ci95"][1] >= bar else ""
    return f"short by {_f(gap)}{share}{reach}"


def judged(row: dict) -> tuple[dict, str]:
    """The statistics a row is judged on, and which they are.

    Published numbers (the SB3 zoo's, CleanRL's) are evaluations of the deterministic
    policy after training, so a row that carries its own evaluation (``eval_return``:
    episodes of the deterministic policy of every seed's final state) is judged on it;
    rows measured before the suite evaluated fall back to the training return and say so.
    """
    ev = row.get("eval_return") or {}
    if ev.get("n"):
        return ev, "evaluation"
    return row["final_return"], "training"


def _target(stats: dict, target: dict | None) -> str:
    if target is None:
        return "–"
    if not stats or stats.get("iqm") is None:
        return "✗ (no episode)"
    ok = stats["iqm"] >= target["value"]
    return f"{'✓' if ok else '✗'} ≥ {_g(target['value'])}"


def _iqm_ci(stats: dict | None) -> str:
    if not stats or not stats.get("n"):
        return "–"
    ci = stats.get("iqm_ci95") or [None, None]
    return f"{_f(stats['iqm'])} [{_f(ci[0])}, {_f(ci[1])}]"


def _load_note(row: dict) -> str:
    load = (row.get("provenance") or {}).get("load_avg") or [0.0]
    return f"{load[0]:.1f}"


def returns_like_md(data: dict, figures_rel: Path, prefix: str) -> list[str]:
    """The table of a suite of learning runs (returns, minatar), the aggregate and figures."""
    randoms = data.get("random_returns", {})
    lines = [
        "Final return = mean return of the *training* episodes over the last 5% of updates, "
        "per seed. The updates of all seeds of a run are one `jax.jit(jax.vmap(...))` program "
        "(each seed's `init` runs on its own first, see `benchmarks/harness/common.py`: "
        "a batched LAPACK QR in the orthogonal initialisation deadlocks jaxlib 0.10.2 on "
        "2 CPU threads). IQM and its 95% "
        "stratified bootstrap CI over seeds (Agarwal et al. 2021). Published numbers are "
        "evaluations (the SB3 zoo's of the deterministic policy), so they sit above training "
        "returns where exploration costs reward. Evaluation = episodes of the deterministic "
        "policy (argmax / mean action) of every seed's final parameters, after training "
        "(`jaxrl.run.evaluate`); a row is judged on its evaluation where it has one, else on "
        "its training return (the *judged on* column says which).",
        "",
        "| run | env steps | seeds | training: mean ± std | training: IQM [95% CI] "
        "| evaluation: IQM [95% CI] | published (budget; source) | judged on | vs published "
        "| issue target | compile / run s | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        s = row["final_return"]
        pub = row.get("published")
        rand = (randoms.get(row["env_id"]) or {}).get("mean")
        if pub:
            spread = f" ± {_g(pub['spread'])}" if pub.get("spread") else ""
            budget = f"{_steps(pub['budget'])}; " if pub.get("budget") else ""
            pub_text = f"{_g(pub['value'])}{spread} ({budget}{pub['source']})"
            if pub.get("budget") and pub["budget"] != row["total_timesteps"]:
                pub_text += f" — budget differs: ours {_steps(row['total_timesteps'])}"
        else:
            pub_text = "–"
        judge, basis = judged(row)
        lines.append(
            f"| {row['name']} | {_steps(row['total_timesteps'])} | {s['n']} "
            f"| {_f(s['mean'])} ± {_f(s['std'])} | {_iqm_ci(s)} "
            f"| {_iqm_ci(row.get('eval_return'))} | {pub_text} | {basis} "
            f"| {verdict(judge, pub, rand)} | {_target(judge, row.get('target'))} "
            f"| {_f(row['compile_s'])} / {_f(row['run_s'])} | {_load_note(row)} |"
        )
    notes = [(row["name"], _note(row)) for row in data["rows"] if _note(row)]
    notes += [
        (row["name"], f"final return over the last {row['final_window']:.0%} of updates "
         "(no episode ended in the last 5% for some seed)")
        for row in data["rows"]
        if row.get("final_window", 0.05) > 0.05
    ]  # fmt: skip
    if notes:
        lines += ["", "Notes on the runs:", ""]
        lines += [f"- **{name}**: {note}" for name, note in notes]
    if randoms:
        lines += [
            "",
            "Random policy (0 of the normalised scores): "
            + ", ".join(
                f"{k.removesuffix('-flat')} {_f(v.get('mean'))}" for k, v in sorted(randoms.items())
            )
            + ".",
        ]
    agg = figures.aggregate_scores(data["rows"], randoms)
    if agg:
        lines += [
            "",
            "Aggregate over environments, per algorithm: IQM of (score − random) / "
            "(published − random), 95% stratified bootstrap CI (strata = environments):",
            "",
            "| algorithm | environments | IQM of normalised score [95% CI] |",
            "|---|---|---|",
        ]
        for k, a in sorted(agg.items()):
            lines.append(
                f"| {k} | {', '.join(e.removesuffix('-flat') for e in sorted(a['strata']))} "
                f"| {a['iqm']:.2f} "
                f"[{a['ci95'][0]:.2f}, {a['ci95'][1]:.2f}] |"
            )
    lines += [
        "",
        f"![learning curves]({figures_rel / (prefix + '_curves.png')})",
        f"![aggregate]({figures_rel / (prefix + '_aggregate.png')})",
    ]
    return lines


def _note(row: dict) -> str:
    """The row's note, or (for rows written before notes existed) its run's current note."""
    if row.get("note"):
        return row["note"]
    from benchmarks.harness.returns import RUNS

    return next((r.note for r in RUNS if r.name == row["name"]), "")


def draw_returns_like(data: dict, fig_dir: Path, prefix: str) -> list[Path]:
    """Learning curves and the aggregate interval plot of a suite of learning runs."""
    fig_dir = Path(fig_dir)
    curves = figures.plot_learning_curves(
        data["rows"], fig_dir / f"{prefix}_curves.png", f"{prefix} suite: training return"
    )
    agg = figures.aggregate_scores(data["rows"], data.get("random_returns", {}))
    return [curves, figures.plot_aggregate(agg, fig_dir / f"{prefix}_aggregate.png")]

"""The guides (docs/guides/*.md): each script's --quick mode writes its page and figures,
and the claim its page makes holds in the numbers of that run.

Each test runs one ``python examples/guides/NN_name.py --quick`` (tiny budgets) inside the
test process (tests/in_process.py: the script as ``__main__``, without a new interpreter
importing jax first) and checks the direction of the guide's claim on the numbers it wrote
(``--results``). It compiles as every test does (tests/conftest.py: XLA's expensive
optimisations off); the numbers change only by float rounding.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from tests.in_process import run_in_process

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ROOT / "examples" / "guides"


def run_quick(name: str, tmp_path: Path, monkeypatch) -> tuple[dict, str]:
    """Runs a guide's quick mode; checks the page names its command and its figures exist."""
    results = tmp_path / "results.json"
    command = ["python", f"examples/guides/{name}.py", "--quick"]
    command += ["--out-dir", str(tmp_path), "--results", str(results)]
    run_in_process(command, ROOT, monkeypatch, " ".join(command), quick=False)
    out = json.loads(results.read_text())
    page = tmp_path / f"{name.replace('_', '-')}.md"
    text = page.read_text()
    assert f"`python examples/guides/{name}.py --quick`" in text
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", text)
    assert links, "the page shows no figure"
    for link in links:
        assert (tmp_path / link).stat().st_size > 10_000, link
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), "a number on the page is NaN"
    return out, text


def test_guide_01_sarsa_beats_q_learning_online(tmp_path, monkeypatch):
    out, text = run_quick("01_on_off_policy", tmp_path, monkeypatch)
    # One transition: the three targets, against the formulas by hand (ε = 0.1, 4 actions).
    t = out["targets"]
    pi = np.full(4, 0.1 / 4)
    pi[1] += 0.9
    q_next = np.array([-12.0, -11.0, -111.0, -13.0])
    np.testing.assert_allclose(t["pi_next"], pi, rtol=1e-6)
    np.testing.assert_allclose(t["q_learning"], -1.0 + q_next.max(), rtol=1e-6)
    np.testing.assert_allclose(t["expected_sarsa"], -1.0 + pi @ q_next, rtol=1e-5)
    # SARSA's sampled target is unbiased for Expected SARSA's (4 standard errors).
    stderr = t["sarsa_std"] / np.sqrt(2_000)
    assert abs(t["sarsa_mean"] - t["expected_sarsa"]) < 4 * stderr
    # Cliff Walking: online return SARSA > Q-learning, Expected SARSA > Q-learning,
    # while Q-learning's greedy policy is the optimal one.
    assert out["sarsa"]["online_mean"] > out["q-learning"]["online_mean"]
    assert out["expected-sarsa"]["online_mean"] > out["q-learning"]["online_mean"]
    assert out["q-learning"]["greedy_median"] == out["optimal_return"] == -13.0
    assert "Q-learning" in text and "-13" in text


def test_guide_02_exploration_trade_offs(tmp_path, monkeypatch):
    out, _ = run_quick("02_exploration", tmp_path, monkeypatch)
    b, g = out["bandit"], out["grid"]
    # Bandit: pure greedy gets stuck; ε-greedy and a decaying ε lose less.
    assert b["ε = 0.1"]["regret"] < b["greedy (ε = 0)"]["regret"]
    assert b["ε: 0.3 → 0"]["regret"] < b["greedy (ε = 0)"]["regret"]
    assert b["greedy (ε = 0)"]["entropy_end"] == 0.0
    # The entropy bonus keeps the softmax policy more random.
    assert (
        b["… + entropy bonus c = 0.2"]["entropy_end"] > b["softmax policy gradient"]["entropy_end"]
    )
    # Gridworld: a fixed ε keeps falling off the cliff; decaying it to 0 stops that.
    assert g["ε: 0.1 → 0"]["online_late"] > g["ε = 0.1"]["online_late"]
    assert g["ε = 0.1"]["greedy_optimal"] >= 0.5
    assert out["optimal"] == -13.0


def test_guide_03_baseline_and_critic_lower_variance(tmp_path, monkeypatch):
    out, _ = run_quick("03_why_a_critic", tmp_path, monkeypatch)
    for update, row in out["variance"].items():
        v = {k: row[k]["variance"] for k in ("none", "constant", "learned", "gae", "td")}
        assert v["learned"] < v["none"], (update, v)
        assert v["gae"] < v["learned"], (update, v)
        # A baseline does not change the expected gradient: same direction (up to noise).
        assert row["none"]["cosine"] > 0.8, row
    assert out["ratios"]["learned"] < 1.0


def test_guide_04_actor_finds_its_critics_argmax(tmp_path, monkeypatch):
    out, _ = run_quick("04_dqn_and_continuous", tmp_path, monkeypatch)
    for name in ("DDPG", "TD3", "SAC"):
        # What the actor's action leaves below its critic's max over a dense grid of
        # actions, as a share of what a uniformly random action leaves: well below 1.
        assert out[name]["relative_gap"] < 0.5, (name, out[name])
    for row in out.values():
        assert np.isfinite(row["final_mean"])


def test_guide_05_trpo_kl_bounded_ppo_varies(tmp_path, monkeypatch):
    out, _ = run_quick("05_pg_trpo_ppo", tmp_path, monkeypatch)
    meta = out["_meta"]
    trpo = out[meta["trpo"]]
    ppo_default, ppo_clipped, ppo_unclipped = (out[k] for k in meta["ppo"])
    # TRPO's KL on its own batch never exceeds δ; on fresh states it stays near δ.
    assert trpo["batch_kl_max"] <= meta["delta"] * (1 + 1e-4)
    assert 0.2 * meta["delta"] < trpo["kl_median"] < 2 * meta["delta"]
    # PPO's KL per update varies more than TRPO's, and removing the clip raises its tail.
    spread = lambda r: r["kl_p90"] / r["kl_p10"]  # noqa: E731
    assert spread(ppo_clipped) > spread(trpo)
    assert ppo_unclipped["kl_max"] > ppo_clipped["kl_max"]
    assert ppo_default["kl_median"] < ppo_clipped["kl_median"]
    # A plain gradient step's KL grows with the learning rate.
    pg = [out[k]["kl_median"] for k in meta["pg"]]
    assert pg[0] < pg[1] < pg[2]


def test_guide_06_rlhf_grpo_dpo_costs(tmp_path, monkeypatch):
    out, text = run_quick("06_rlhf_dpo_grpo", tmp_path, monkeypatch)
    steps = out["step_seconds"]
    # DPO needs no generation and no critic; GRPO needs no critic: both cheaper per step.
    assert steps["DPO"] < steps["RLHF-PPO"], steps
    assert steps["GRPO"] < steps["RLHF-PPO"], steps
    for name, r in out["results"].items():
        assert all(np.isfinite(v) for v in r.values()), (name, r)
    assert out["results"]["SFT (start)"]["kl"] == 0.0
    assert 0.0 <= min(out["best_of_n"]["score"].values()) <= 1.0
    assert "reward hacking" in text.lower() and "best-of-n" in text.lower()
    assert set(out["hacked"]) == {"RLHF-PPO", "GRPO"}


def test_guide_07_dpo_margin_rises_rpo_keeps_chosen(tmp_path, monkeypatch):
    out, text = run_quick("07_dpo_likelihood", tmp_path, monkeypatch)
    dpo, rpo = out["dpo"], out["rpo"]
    assert dpo["train_margin"][-1] > dpo["train_margin"][0]
    # The NLL term holds the chosen responses' likelihood above plain DPO's.
    assert rpo["train_logps_chosen"][-1] > dpo["train_logps_chosen"][-1]
    # The page says what happened, whichever way it went.
    both_fell = bool(
        dpo["train_logps_chosen"][-1] < dpo["train_logps_chosen"][0]
        and dpo["train_logps_rejected"][-1] < dpo["train_logps_rejected"][0]
    )
    assert out["displaced"] == (both_fell and dpo["train_margin"][-1] > dpo["train_margin"][0])
    assert ("**Both fell.**" in text) == out["displaced"]
    # Same margin, same DPO loss; equal and opposite gradients on the two log-probs.
    toy = out["toy"]
    np.testing.assert_allclose(toy["loss_chosen_up"], toy["loss_both_down"], rtol=1e-6)
    grad = np.asarray(toy["grad_both_down"])
    np.testing.assert_allclose(grad[0], -grad[1], rtol=1e-6)


def test_quick_runs_never_write_over_the_committed_pages():
    sys.path.insert(0, str(GUIDES))
    try:
        import _guide
    finally:
        sys.path.remove(str(GUIDES))
    quick = _guide.parse_args("guide", ["--quick"]).out_dir
    assert quick == ROOT / "runs" / "guides-quick"
    assert not quick.resolve().is_relative_to((ROOT / "docs").resolve())
    assert _guide.parse_args("guide", []).out_dir == ROOT / "docs" / "guides"
    assert _guide.parse_args("guide", ["--quick", "--out-dir", "x"]).out_dir == Path("x")

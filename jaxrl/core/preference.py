"""Losses on preference pairs: Bradley–Terry reward models, DPO and its variants, SimPO.

Shapes: ``B`` stands for any leading axes (usually ``[B]`` pairs). Inputs are
sequence log-probabilities ``log π(y | x) = Σ_t log π(y_t | x, y_<t)`` of the chosen
(preferred) response ``y_c`` and the rejected one ``y_r``, under the policy and under
the frozen reference. Each loss is averaged over all pairs and returns
``(loss, metrics)`` with scalar metrics.

With the log-ratio difference
    Δ = [log π(y_c|x) − log π_ref(y_c|x)] − [log π(y_r|x) − log π_ref(y_r|x)]
and implicit rewards r̂(y) = β·(log π(y|x) − log π_ref(y|x)), the kinds of ``dpo_loss`` are
    sigmoid: −(1 − ε)·log σ(βΔ) − ε·log σ(−βΔ)           DPO; ε > 0 is conservative DPO (cDPO)
    robust:  [−(1 − ε)·log σ(βΔ) + ε·log σ(−βΔ)] / (1 − 2ε)  unbiased under label-flip rate ε
    hinge:   max(0, 1 − βΔ)                              SLiC-HF
    ipo:     (Δ − 1/(2β))²                               IPO (β plays the role of τ)
and an optional NLL term on the chosen response, ``α · (−log π(y_c|x) / |y_c|)``, gives RPO.

References: Rafailov et al. 2023, DPO, https://arxiv.org/abs/2305.18290;
Mitchell 2023, cDPO, https://ericmitchell.ai/cdpo.pdf;
Chowdhury et al. 2024, robust DPO, https://arxiv.org/abs/2403.00409;
Zhao et al. 2023, SLiC-HF, https://arxiv.org/abs/2305.10425;
Azar et al. 2023, IPO, https://arxiv.org/abs/2310.12036;
Pang et al. 2024, RPO (iterative reasoning preference optimisation),
https://arxiv.org/abs/2404.19733; Meng et al. 2024, SimPO, https://arxiv.org/abs/2405.14734.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from jaxrl.core._checks import as_float, check_same_shape

__all__ = ["DPO_KINDS", "dpo_loss", "simpo_loss", "bradley_terry_loss"]

DPO_KINDS = ("sigmoid", "robust", "hinge", "ipo")


def _check_scalar(value, name: str, low: float, high: float, high_open: bool, low_open=False):
    """Range check for a concrete Python number (traced values pass unchecked)."""
    if not isinstance(value, numbers.Real):
        return
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"`{name}` must be in {lo}{low}, {high}{hi}, got {value!r}")


def _smoothed_sigmoid_loss(h, eps):
    return -(1.0 - eps) * jax.nn.log_sigmoid(h) - eps * jax.nn.log_sigmoid(-h)


def dpo_loss(
    chosen_logps,
    rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta=0.1,
    kind: str = "sigmoid",
    label_smoothing=0.0,
    nll_coef=0.0,
    chosen_lengths=None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Direct preference optimisation loss and its variants (see the module docstring).

        Δ = (log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))
        sigmoid: L = mean[−(1 − ε) log σ(βΔ) − ε log σ(−βΔ)] + α · mean[−log π(y_c) / |y_c|]

    When the policy equals the reference, Δ = 0 and the sigmoid loss is ln 2.
    See Rafailov et al. 2023, https://arxiv.org/abs/2305.18290.

    Args:
        chosen_logps: ``[*B]`` policy log π(y_c|x), summed over the response tokens.
        rejected_logps: ``[*B]`` policy log π(y_r|x).
        ref_chosen_logps: ``[*B]`` reference log π_ref(y_c|x) (no gradient flows into it).
        ref_rejected_logps: ``[*B]`` reference log π_ref(y_r|x).
        beta: β > 0, strength of the implicit KL constraint (scalar, may be traced).
        kind: one of ``DPO_KINDS``: "sigmoid", "robust", "hinge", "ipo".
        label_smoothing: ε, the assumed rate of flipped labels; sigmoid: [0, 0.5],
            robust: [0, 0.5); must be 0 for hinge and ipo.
        nll_coef: α ≥ 0, weight of the NLL term on the chosen response (RPO).
        chosen_lengths: ``[*B]`` token counts |y_c| that normalise the NLL term; ``None``
            uses the summed (unnormalised) log-probability.

    Returns:
        ``(loss, metrics)``: scalar loss; metrics (scalars, means over pairs):
        ``rewards_chosen`` r̂(y_c), ``rewards_rejected`` r̂(y_r), ``margin`` r̂(y_c) − r̂(y_r),
        ``accuracy`` share with r̂(y_c) > r̂(y_r), ``logps_chosen``, ``logps_rejected``,
        ``preference_loss``, ``nll_loss``.
    """
    if kind not in DPO_KINDS:
        raise ValueError(f"`kind` must be one of {DPO_KINDS}, got {kind!r}")
    _check_scalar(beta, "beta", 0.0, float("inf"), True, low_open=True)
    _check_scalar(nll_coef, "nll_coef", 0.0, float("inf"), True)
    if kind in ("hinge", "ipo"):
        if not isinstance(label_smoothing, numbers.Real) or label_smoothing != 0:
            raise ValueError(
                f"`label_smoothing` must be 0 for kind={kind!r}, got {label_smoothing!r} "
                "(it applies to 'sigmoid' and 'robust')"
            )
    else:
        _check_scalar(label_smoothing, "label_smoothing", 0.0, 0.5, kind == "robust")
    arrays = {
        "chosen_logps": as_float(chosen_logps, "chosen_logps"),
        "rejected_logps": as_float(rejected_logps, "rejected_logps"),
        "ref_chosen_logps": as_float(ref_chosen_logps, "ref_chosen_logps"),
        "ref_rejected_logps": as_float(ref_rejected_logps, "ref_rejected_logps"),
    }
    if chosen_lengths is not None:
        arrays["chosen_lengths"] = as_float(chosen_lengths, "chosen_lengths")
    check_same_shape(arrays)
    pc, pr = arrays["chosen_logps"], arrays["rejected_logps"]
    rc = jax.lax.stop_gradient(arrays["ref_chosen_logps"])
    rr = jax.lax.stop_gradient(arrays["ref_rejected_logps"])
    delta = (pc - rc) - (pr - rr)
    if kind == "sigmoid":
        per_pair = _smoothed_sigmoid_loss(beta * delta, label_smoothing)
    elif kind == "robust":
        eps = label_smoothing
        per_pair = (
            -(1.0 - eps) * jax.nn.log_sigmoid(beta * delta)
            + eps * jax.nn.log_sigmoid(-beta * delta)
        ) / (1.0 - 2.0 * eps)
    elif kind == "hinge":
        per_pair = jax.nn.relu(1.0 - beta * delta)
    else:
        per_pair = jnp.square(delta - 1.0 / (2.0 * beta))
    preference = jnp.mean(per_pair)
    lengths = 1.0 if chosen_lengths is None else jnp.maximum(arrays["chosen_lengths"], 1.0)
    nll = jnp.mean(-pc / lengths)
    loss = preference + nll_coef * nll
    metrics = {
        **_pair_metrics(beta * (pc - rc), beta * (pr - rr), pc, pr),
        "preference_loss": preference,
        "nll_loss": nll,
    }
    return loss, metrics


def simpo_loss(
    chosen_logps,
    rejected_logps,
    chosen_lengths,
    rejected_lengths,
    beta=2.0,
    gamma=0.5,
    label_smoothing=0.0,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """SimPO: reference-free, length-normalised preference loss with a target margin γ.

        h = β·log π(y_c|x) / |y_c| − β·log π(y_r|x) / |y_r| − γ
        L = mean[−(1 − ε) log σ(h) − ε log σ(−h)]

    See Meng et al. 2024, https://arxiv.org/abs/2405.14734.

    Args:
        chosen_logps: ``[*B]`` summed log π(y_c|x).
        rejected_logps: ``[*B]`` summed log π(y_r|x).
        chosen_lengths: ``[*B]`` token counts |y_c| (≥ 1).
        rejected_lengths: ``[*B]`` token counts |y_r| (≥ 1).
        beta: β > 0, scale of the length-normalised reward.
        gamma: γ ≥ 0, the target reward margin.
        label_smoothing: ε in [0, 0.5].

    Returns:
        ``(loss, metrics)``: scalar loss; metrics ``rewards_chosen`` β·log π(y_c)/|y_c|,
        ``rewards_rejected``, ``margin``, ``accuracy``, ``logps_chosen``, ``logps_rejected``.
    """
    _check_scalar(beta, "beta", 0.0, float("inf"), True, low_open=True)
    _check_scalar(gamma, "gamma", 0.0, float("inf"), True)
    _check_scalar(label_smoothing, "label_smoothing", 0.0, 0.5, False)
    arrays = {
        "chosen_logps": as_float(chosen_logps, "chosen_logps"),
        "rejected_logps": as_float(rejected_logps, "rejected_logps"),
        "chosen_lengths": as_float(chosen_lengths, "chosen_lengths"),
        "rejected_lengths": as_float(rejected_lengths, "rejected_lengths"),
    }
    check_same_shape(arrays)
    pc, pr = arrays["chosen_logps"], arrays["rejected_logps"]
    reward_c = beta * pc / jnp.maximum(arrays["chosen_lengths"], 1.0)
    reward_r = beta * pr / jnp.maximum(arrays["rejected_lengths"], 1.0)
    loss = jnp.mean(_smoothed_sigmoid_loss(reward_c - reward_r - gamma, label_smoothing))
    return loss, _pair_metrics(reward_c, reward_r, pc, pr)


def bradley_terry_loss(
    chosen_rewards, rejected_rewards, margin=0.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Reward-model loss under the Bradley–Terry model ``P(y_c ≻ y_r) = σ(r(y_c) − r(y_r))``.

        L = mean[−log σ(r(y_c) − r(y_r) − m)]

    See Bradley & Terry 1952; Ouyang et al. 2022, https://arxiv.org/abs/2203.02155
    (``m`` > 0 is the margin of Touvron et al. 2023, https://arxiv.org/abs/2307.09288).

    Args:
        chosen_rewards: ``[*B]`` scalar rewards of the preferred responses.
        rejected_rewards: ``[*B]`` rewards of the rejected responses.
        margin: ``m``, scalar or ``[*B]``, required reward gap.

    Returns:
        ``(loss, metrics)``: scalar loss; metrics ``accuracy`` (share with r(y_c) > r(y_r)),
        ``margin`` mean of r(y_c) − r(y_r), ``rewards_chosen``, ``rewards_rejected``.
    """
    rc = as_float(chosen_rewards, "chosen_rewards")
    rr = as_float(rejected_rewards, "rejected_rewards")
    check_same_shape({"chosen_rewards": rc, "rejected_rewards": rr})
    gap = rc - rr
    loss = jnp.mean(-jax.nn.log_sigmoid(gap - margin))
    gap = jax.lax.stop_gradient(gap)
    metrics = {
        "accuracy": jnp.mean((gap > 0).astype(jnp.float32)),
        "margin": jnp.mean(gap),
        "rewards_chosen": jnp.mean(jax.lax.stop_gradient(rc)),
        "rewards_rejected": jnp.mean(jax.lax.stop_gradient(rr)),
    }
    return loss, metrics


def _pair_metrics(reward_c, reward_r, pc, pr) -> dict[str, jax.Array]:
    """The implicit rewards of the chosen and rejected answers ``[*B]`` (their means, margin
    and how often the chosen one wins) and the mean log-likelihoods, without gradients."""
    reward_c, reward_r = jax.lax.stop_gradient(reward_c), jax.lax.stop_gradient(reward_r)
    return {
        "rewards_chosen": jnp.mean(reward_c),
        "rewards_rejected": jnp.mean(reward_r),
        "margin": jnp.mean(reward_c - reward_r),
        "accuracy": jnp.mean((reward_c > reward_r).astype(jnp.float32)),
        "logps_chosen": jnp.mean(jax.lax.stop_gradient(pc)),
        "logps_rejected": jnp.mean(jax.lax.stop_gradient(pr)),
    }

"""Value learning: single-step TD errors, n-step Q targets and regression losses.

Shapes: ``B`` stands for any number of leading batch axes (``[*B]`` may be
``[]``, ``[B]`` or ``[T, B]``), ``A`` for the number of discrete actions and
``n`` for the length of an n-step window. Every leading axis is a batch axis.

The single-step functions take ``discount_t = γ·(1 − terminated_t)``: the
caller folds a true terminal into the discount, while a time-limit truncation
keeps ``discount_t = γ`` and bootstraps from the value of the real next state
(``info["final_observation"]``).

TD errors are returned as ``target − prediction``, so a loss is
``squared_loss(td)`` or ``huber_loss(td)`` and its gradient moves the prediction
towards the target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core._checks import as_float, check_min_rank, check_same_shape

__all__ = [
    "td_error",
    "q_learning",
    "double_q_learning",
    "sarsa",
    "expected_sarsa",
    "n_step_q_target",
    "huber_loss",
    "squared_loss",
    "clipped_value_loss",
]


def _check_like(x, shape: tuple[int, ...], name: str, target: str) -> None:
    """Raises ``ValueError`` unless ``x`` is a scalar or has ``len(shape)`` axes broadcasting to it.

    Requiring equal rank (not only NumPy broadcasting) catches the silent bug of a
    ``[B]`` array meeting a ``[T, B]`` one along the wrong axis.
    """
    xshape = np.shape(x)
    if len(xshape) == 0:
        return
    ok = len(xshape) == len(shape) and all(a in (1, b) for a, b in zip(xshape, shape, strict=True))
    if not ok:
        raise ValueError(
            f"`{name}` has shape {xshape}; it must be a scalar or have the shape {tuple(shape)} "
            f"of `{target}` (size-1 axes broadcast)"
        )


def _check_actions(a, batch: tuple[int, ...], name: str, target: str) -> jax.Array:
    """Checks that ``a`` holds integer actions of shape ``batch`` and returns it as an array."""
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.integer):
        raise ValueError(f"`{name}` must hold integer actions, got dtype {a.dtype}")
    if a.shape != tuple(batch):
        raise ValueError(
            f"`{name}` has shape {a.shape} but must have the batch shape {tuple(batch)} "
            f"of `{target}` (all axes but the last)"
        )
    return a


def _check_q(q_tm1, q_t, r_t, discount_t, q_t_name: str = "q_t"):
    """Shared checks of the Q-learning family; returns the float arrays."""
    q_tm1, q_t = as_float(q_tm1, "q_tm1"), as_float(q_t, q_t_name)
    r_t, discount_t = as_float(r_t, "r_t"), as_float(discount_t, "discount_t")
    check_min_rank(q_tm1, 1, "q_tm1")
    check_same_shape({"q_tm1": q_tm1, q_t_name: q_t})
    batch = q_tm1.shape[:-1]
    _check_like(r_t, batch, "r_t", "q_tm1[..., 0]")
    _check_like(discount_t, batch, "discount_t", "q_tm1[..., 0]")
    return q_tm1, q_t, r_t, discount_t


def _select(q: jax.Array, a: jax.Array) -> jax.Array:
    """q[..., a] for a batch of actions: [*B, A], [*B] -> [*B]."""
    return jnp.take_along_axis(q, a[..., None], axis=-1)[..., 0]


def _maybe_stop(x: jax.Array, stop: bool) -> jax.Array:
    return jax.lax.stop_gradient(x) if stop else x


def td_error(v_tm1, r_t, discount_t, v_t, stop_target_gradients: bool = True) -> jax.Array:
    """TD(0) error of a state-value estimate.

        δ = rₜ + discountₜ · v(sₜ) − v(sₜ₋₁),  discountₜ = γ·(1 − terminatedₜ)

    See Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed.), §6.1:
    http://incompleteideas.net/book/the-book-2nd.html

    Args:
      v_tm1: values of the states the transitions start from, ``[*B]``.
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      v_t: values of the real next states, ``[*B]`` or scalar.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      TD errors, ``[*B]``.
    """
    v_tm1, v_t = as_float(v_tm1, "v_tm1"), as_float(v_t, "v_t")
    r_t, discount_t = as_float(r_t, "r_t"), as_float(discount_t, "discount_t")
    for x, name in ((r_t, "r_t"), (discount_t, "discount_t"), (v_t, "v_t")):
        _check_like(x, v_tm1.shape, name, "v_tm1")
    target = _maybe_stop(r_t + discount_t * v_t, stop_target_gradients)
    return target - v_tm1


def q_learning(q_tm1, a_tm1, r_t, discount_t, q_t, stop_target_gradients: bool = True) -> jax.Array:
    """Q-learning TD error.

        δ = rₜ + discountₜ · maxₐ q(sₜ, a) − q(sₜ₋₁, aₜ₋₁)

    See Watkins & Dayan, Q-learning (1992):
    https://link.springer.com/article/10.1007/BF00992698

    Args:
      q_tm1: action values at the start states, ``[*B, A]``.
      a_tm1: actions taken, integer ``[*B]``.
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      q_t: action values at the real next states, ``[*B, A]``.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      TD errors, ``[*B]``.
    """
    q_tm1, q_t, r_t, discount_t = _check_q(q_tm1, q_t, r_t, discount_t)
    a_tm1 = _check_actions(a_tm1, q_tm1.shape[:-1], "a_tm1", "q_tm1")
    target = _maybe_stop(r_t + discount_t * jnp.max(q_t, axis=-1), stop_target_gradients)
    return target - _select(q_tm1, a_tm1)


def double_q_learning(
    q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector, stop_target_gradients: bool = True
) -> jax.Array:
    """Double Q-learning TD error: one network picks the next action, the other evaluates it.

        a* = argmaxₐ q_selector(sₜ, a)
        δ = rₜ + discountₜ · q_value(sₜ, a*) − q(sₜ₋₁, aₜ₋₁)

    In Double DQN the selector is the online network and the value is the target
    network. See van Hasselt et al., Deep Reinforcement Learning with Double
    Q-learning: https://arxiv.org/abs/1509.06461

    Args:
      q_tm1: action values at the start states, ``[*B, A]``.
      a_tm1: actions taken, integer ``[*B]``.
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      q_t_value: action values at the next states used to evaluate, ``[*B, A]``.
      q_t_selector: action values at the next states used to pick the action, ``[*B, A]``.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      TD errors, ``[*B]``.
    """
    q_tm1, q_t_value, r_t, discount_t = _check_q(q_tm1, q_t_value, r_t, discount_t, "q_t_value")
    q_t_selector = as_float(q_t_selector, "q_t_selector")
    check_same_shape({"q_tm1": q_tm1, "q_t_selector": q_t_selector})
    a_tm1 = _check_actions(a_tm1, q_tm1.shape[:-1], "a_tm1", "q_tm1")
    a_star = jnp.argmax(q_t_selector, axis=-1)
    target = _maybe_stop(r_t + discount_t * _select(q_t_value, a_star), stop_target_gradients)
    return target - _select(q_tm1, a_tm1)


def sarsa(q_tm1, a_tm1, r_t, discount_t, q_t, a_t, stop_target_gradients: bool = True) -> jax.Array:
    """SARSA TD error: bootstraps from the action actually taken next.

        δ = rₜ + discountₜ · q(sₜ, aₜ) − q(sₜ₋₁, aₜ₋₁)

    See Rummery & Niranjan, On-line Q-learning using connectionist systems (1994),
    and Sutton & Barto (2nd ed.), §6.4: http://incompleteideas.net/book/the-book-2nd.html

    Args:
      q_tm1: action values at the start states, ``[*B, A]``.
      a_tm1: actions taken, integer ``[*B]``.
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      q_t: action values at the next states, ``[*B, A]``.
      a_t: actions taken at the next states, integer ``[*B]``.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      TD errors, ``[*B]``.
    """
    q_tm1, q_t, r_t, discount_t = _check_q(q_tm1, q_t, r_t, discount_t)
    a_tm1 = _check_actions(a_tm1, q_tm1.shape[:-1], "a_tm1", "q_tm1")
    a_t = _check_actions(a_t, q_t.shape[:-1], "a_t", "q_t")
    target = _maybe_stop(r_t + discount_t * _select(q_t, a_t), stop_target_gradients)
    return target - _select(q_tm1, a_tm1)


def expected_sarsa(
    q_tm1, a_tm1, r_t, discount_t, q_t, probs_t, stop_target_gradients: bool = True
) -> jax.Array:
    """Expected SARSA TD error: bootstraps from the expectation under the policy.

        δ = rₜ + discountₜ · Σₐ π(a|sₜ) q(sₜ, a) − q(sₜ₋₁, aₜ₋₁)

    See van Seijen et al., A Theoretical and Empirical Analysis of Expected Sarsa (2009):
    https://ieeexplore.ieee.org/document/4927542

    Args:
      q_tm1: action values at the start states, ``[*B, A]``.
      a_tm1: actions taken, integer ``[*B]``.
      r_t: rewards, ``[*B]`` or scalar.
      discount_t: ``γ·(1 − terminated)``, ``[*B]`` or scalar.
      q_t: action values at the next states, ``[*B, A]``.
      probs_t: action probabilities π(·|sₜ) at the next states, ``[*B, A]``.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      TD errors, ``[*B]``.
    """
    q_tm1, q_t, r_t, discount_t = _check_q(q_tm1, q_t, r_t, discount_t)
    probs_t = as_float(probs_t, "probs_t")
    check_same_shape({"q_t": q_t, "probs_t": probs_t})
    a_tm1 = _check_actions(a_tm1, q_tm1.shape[:-1], "a_tm1", "q_tm1")
    v_t = jnp.sum(probs_t * q_t, axis=-1)
    target = _maybe_stop(r_t + discount_t * v_t, stop_target_gradients)
    return target - _select(q_tm1, a_tm1)


def n_step_q_target(
    rewards,
    bootstrap_values,
    terminated,
    done,
    gamma,
    stop_target_gradients: bool = True,
) -> jax.Array:
    """n-step bootstrapped target for the first transition of a window, cut at episode ends.

        m = 1 + min{k : doneₖ}   (m = n when no step of the window is done)
        G = Σ_{k<m} γᵏ rₖ + γᵐ (1 − terminated_{m−1}) · bootstrap_values_{m−1}

    A window of n consecutive transitions starting at step 0 (as sampled from a
    replay buffer for n-step DQN). ``bootstrap_values[k]`` is the value of the
    real next state of step k, e.g. ``maxₐ Q_target(s'ₖ, a)``; only the one at
    the last step used is read. A truncated step ends the sum and bootstraps, a
    terminated one ends it without bootstrapping. A step flagged ``terminated``
    counts as done even if ``done`` is not set. ``gamma`` may vary per batch
    element (``[*B]``) or per step (``[n, *B]``), then γᵏ reads Π_{j<k} γⱼ.

    See Sutton & Barto (2nd ed.), §7.1 (n-step TD), and Hessel et al., Rainbow:
    https://arxiv.org/abs/1710.02298

    Args:
      rewards: rewards of the window, ``[n, *B]``.
      bootstrap_values: values of the real next state of each step, ``[n, *B]``.
      terminated: 0/1 or bool, true terminals, ``[n, *B]``.
      done: 0/1 or bool, terminated or truncated, ``[n, *B]``.
      gamma: discount, a scalar, ``[*B]`` or ``[n, *B]``.
      stop_target_gradients: if True, no gradient flows through the target.

    Returns:
      Targets for step 0, ``[*B]``.
    """
    rewards = as_float(rewards, "rewards")
    check_min_rank(rewards, 1, "rewards")
    bootstrap_values = as_float(bootstrap_values, "bootstrap_values")
    terminated, done = as_float(terminated, "terminated"), as_float(done, "done")
    check_same_shape(
        {
            "rewards": rewards,
            "bootstrap_values": bootstrap_values,
            "terminated": terminated,
            "done": done,
        }
    )
    gamma = as_float(gamma, "gamma")
    if gamma.ndim > 0:
        # A [*B] gamma is broadcast against [n, *B] from the right; only a full
        # [n, *B] (or size-1) layout is unambiguous, so accept exactly that or [*B].
        if gamma.shape == rewards.shape[1:]:
            gamma = gamma[None]
        _check_like(gamma, rewards.shape, "gamma", "rewards")
    gamma = jnp.broadcast_to(gamma, rewards.shape).astype(rewards.dtype)

    done = jnp.maximum(done, terminated)
    # discount_before[k] = Π_{j<k} γⱼ (= γᵏ); alive[k] = 1 while no earlier step was done.
    ones = jnp.ones_like(rewards[:1])
    discount_before = jnp.cumprod(jnp.concatenate([ones, gamma[:-1]]), axis=0)
    alive = jnp.cumprod(jnp.concatenate([ones, 1.0 - done[:-1]]), axis=0)
    # The bootstrap is read at the last step used: done there, or the window's end.
    is_last = jnp.concatenate([done[:-1], ones], axis=0)
    boot_weight = alive * is_last * discount_before * gamma * (1.0 - terminated)
    # where() rather than a product: a non-finite value at a step after the cut must not leak in.
    rsum = jnp.sum(jnp.where(alive > 0, alive * discount_before * rewards, 0.0), axis=0)
    bsum = jnp.sum(jnp.where(boot_weight != 0, boot_weight * bootstrap_values, 0.0), axis=0)
    return _maybe_stop(rsum + bsum, stop_target_gradients)


def huber_loss(x, delta: float = 1.0) -> jax.Array:
    """Elementwise Huber loss: quadratic near zero, linear beyond ``delta``.

        L(x) = ½x²              if |x| ≤ δ
               δ·(|x| − ½δ)     otherwise

    Its gradient is x clipped to [−δ, δ] (DQN's error clipping). See Huber,
    Robust Estimation of a Location Parameter (1964):
    https://projecteuclid.org/euclid.aoms/1177703732

    Args:
      x: errors, any shape.
      delta: positive threshold between the quadratic and the linear part.

    Returns:
      Losses, same shape as ``x``.
    """
    if isinstance(delta, (int, float)) and not delta > 0:
        raise ValueError(f"`delta` must be > 0, got {delta}")
    x = as_float(x, "x")
    abs_x = jnp.abs(x)
    quadratic = jnp.minimum(abs_x, delta)
    # |x| − min(|x|, δ) instead of max(|x| − δ, 0): one branch carries the gradient at |x| = δ.
    return 0.5 * quadratic**2 + delta * (abs_x - quadratic)


def squared_loss(x) -> jax.Array:
    """Elementwise squared loss ½x².

    Args:
      x: errors, any shape.

    Returns:
      Losses, same shape as ``x``.
    """
    x = as_float(x, "x")
    return 0.5 * jnp.square(x)


def clipped_value_loss(values, old_values, targets, clip_eps) -> jax.Array:
    """PPO's clipped value loss, elementwise.

        v_clip = v_old + clip(v − v_old, −ε, ε)
        L = ½ · max((v − G)², (v_clip − G)²)

    The targets are treated as constants (no gradient flows into them). See the
    OpenAI baselines PPO2 implementation and Andrychowicz et al., What Matters in
    On-Policy RL: https://arxiv.org/abs/2006.05990

    Args:
      values: current value predictions, ``[*B]``.
      old_values: value predictions of the policy that collected the data, ``[*B]``.
      targets: value targets G, ``[*B]``.
      clip_eps: ε ≥ 0, scalar or broadcastable to ``[*B]``.

    Returns:
      Losses, ``[*B]``.
    """
    if isinstance(clip_eps, (int, float)) and not clip_eps >= 0:
        raise ValueError(f"`clip_eps` must be >= 0, got {clip_eps}")
    values = as_float(values, "values")
    old_values, targets = as_float(old_values, "old_values"), as_float(targets, "targets")
    _check_like(old_values, values.shape, "old_values", "values")
    _check_like(targets, values.shape, "targets", "values")
    old_values, targets = jax.lax.stop_gradient(old_values), jax.lax.stop_gradient(targets)
    v_clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.maximum(jnp.square(values - targets), jnp.square(v_clipped - targets))

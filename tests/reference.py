"""Slow, obvious NumPy references for the core estimators.

Each works on one column ``[T]`` of a rollout and follows the textbook
definition directly (sums written out step by step), not the recursions the
library uses, so an agreement between the two means something.
"""

from __future__ import annotations

import numpy as np


def episode_end(done: np.ndarray, t: int) -> int:
    """Index of the last step of the segment that starts at t (episode end or rollout end)."""
    T = len(done)
    k = t
    while k < T - 1 and not done[k]:
        k += 1
    return k


def n_step_return(rewards, next_values, terminated, done, gamma, t, n):
    """Σ γ^k r_{t+k} for up to n steps, then γ^m (1 − term) V(s') of the last step taken."""
    end = min(episode_end(done, t), t + n - 1)
    g = 0.0
    for k in range(t, end + 1):
        g += gamma ** (k - t) * rewards[k]
    g += gamma ** (end - t + 1) * (1.0 - terminated[end]) * next_values[end]
    return g


def discounted_returns(rewards, next_values, terminated, done, gamma):
    T = len(rewards)
    return np.array(
        [n_step_return(rewards, next_values, terminated, done, gamma, t, T) for t in range(T)]
    )


def n_step_returns(rewards, next_values, terminated, done, gamma, n):
    T = len(rewards)
    return np.array(
        [n_step_return(rewards, next_values, terminated, done, gamma, t, n) for t in range(T)]
    )


def lambda_returns(rewards, next_values, terminated, done, gamma, lam):
    """G^λ_t = (1 − λ) Σ_{n<m} λ^{n−1} G^(n)_t + λ^{m−1} G^(m)_t, m = steps left in the segment."""
    T = len(rewards)
    out = np.zeros(T)
    for t in range(T):
        m = episode_end(done, t) - t + 1
        g = 0.0
        for n in range(1, m):
            g += (
                (1 - lam)
                * lam ** (n - 1)
                * n_step_return(rewards, next_values, terminated, done, gamma, t, n)
            )
        g += lam ** (m - 1) * n_step_return(rewards, next_values, terminated, done, gamma, t, m)
        out[t] = g
    return out


def gae(rewards, values, next_values, terminated, done, gamma, lam):
    """A_t = Σ_k (γλ)^k δ_{t+k} over the rest of the segment."""
    T = len(rewards)
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    adv = np.zeros(T)
    for t in range(T):
        end = episode_end(done, t)
        adv[t] = sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, end + 1))
    return adv, adv + values


def vtrace(values, next_values, rewards, terminated, done, log_rhos, gamma, lam, clip_rho, clip_c):
    """vs_t = V(s_t) + Σ_k γ^{k−t} (Π_{i<k} c_i) δ_k over the rest of the segment."""
    T = len(rewards)
    rhos = np.exp(log_rhos)
    crho = np.minimum(clip_rho, rhos)
    cs = lam * np.minimum(clip_c, rhos)
    deltas = crho * (rewards + gamma * (1.0 - terminated) * next_values - values)
    vs = np.zeros(T)
    for t in range(T):
        end = episode_end(done, t)
        acc, coef = 0.0, 1.0
        for k in range(t, end + 1):
            acc += gamma ** (k - t) * coef * deltas[k]
            coef *= cs[k]
        vs[t] = values[t] + acc
    adv = np.zeros(T)
    for t in range(T):
        end = episode_end(done, t)
        if t < end:
            q = lam * vs[t + 1] + (1 - lam) * next_values[t]
        else:
            q = next_values[t]
        adv[t] = crho[t] * (rewards[t] + gamma * (1.0 - terminated[t]) * q - values[t])
    return vs, adv

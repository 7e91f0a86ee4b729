"""Replay storage for off-policy agents: uniform and prioritised, on flashbax.

Shapes: ``B`` is the number of environments adding one transition each per
step (``num_envs``), ``C`` the capacity in transitions over all environments,
``N`` the sample batch size, ``n`` the sampled sequence length (1 for
one-step targets, n for n-step targets), ``*O`` one observation's shape.

Layout. The buffer keeps one row per environment and a time axis of length
``C // B`` per row (flashbax's trajectory buffer), so the transitions of one
environment stay in time order. Each stored element is a whole
:class:`Transition` with the *real* next observation (the final observation
where the episode ended, not the auto-reset one) and both episode-end flags,
so a target bootstraps a truncated step and not a terminated one. A sample is
N windows of n consecutive transitions of one environment (``n = 1``: single
transitions); a window never spans the write position, and n-step targets cut
it at the first ``terminated or truncated`` step
(:func:`jaxrl.core.value.n_step_q_target`).

Prioritised replay (Schaul et al., Prioritized Experience Replay:
https://arxiv.org/abs/1511.05952) samples window i with probability

    P(i) = pᵢ^α / Σₖ pₖ^α,    pᵢ = |δᵢ| + ε

new windows enter with the largest priority seen so far, and the importance
weights correct the bias of the non-uniform sampling:

    wᵢ = (N_valid · P(i))^(−β) / maxⱼ (N_valid · P(j))^(−β) = (P(i) / minⱼ P(j))^(−β)

(normalised by the largest weight in the sampled batch, so N_valid cancels and
the weights lie in (0, 1]). α and β are arguments of the functions rather than
settings of the buffer (flashbax is given the exponent 1 and the buffer stores
pᵢ^α), so both may be traced and swept under ``vmap``.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, NamedTuple

import flashbax
import jax
import jax.numpy as jnp
from flashbax.buffers import prioritised_trajectory_buffer as _pbuf
from flashbax.buffers import trajectory_buffer as _tbuf

__all__ = [
    "ReplayBuffer",
    "ReplaySample",
    "Transition",
    "importance_weights",
    "make_replay_buffer",
]


class Transition(NamedTuple):
    """One environment step, as stored (leaves gain leading axes: ``[B]`` when added,
    ``[N]`` or ``[N, n]`` when sampled)."""

    obs: jax.Array  # [*O] observation the action was taken in
    action: jax.Array  # [] int32 (discrete) or [D] float32 (continuous)
    reward: jax.Array  # [] float32
    next_obs: jax.Array  # [*O] real next observation (the final one where the episode ended)
    terminated: jax.Array  # [] bool: true terminal, never bootstrap
    truncated: jax.Array  # [] bool: time limit, bootstrap from next_obs

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class ReplaySample(NamedTuple):
    """A batch drawn from a :class:`ReplayBuffer`."""

    transitions: Transition  # leaves [N, *] (sequence_length 1) or [N, n, *]
    weights: jax.Array  # [N] float32 importance weights (all 1 for uniform replay)
    indices: jax.Array  # [N] int32 window ids, for update_priorities (0 for uniform replay)


def _backend_device() -> str:
    backend = jax.default_backend()
    return {"cuda": "gpu", "rocm": "gpu", "gpu": "gpu", "tpu": "tpu"}.get(backend, "cpu")


def importance_weights(probabilities: jax.Array, beta) -> jax.Array:
    """Prioritised-replay importance weights, normalised by the batch maximum.

        wᵢ = (P(i) / minⱼ P(j))^(−β)

    which equals (N·P(i))^(−β) / maxⱼ (N·P(j))^(−β) for any buffer size N. See
    Schaul et al., Prioritized Experience Replay, §3.4: https://arxiv.org/abs/1511.05952

    Args:
      probabilities: sampling probabilities P(i) of the sampled items, ``[N]``.
      beta: exponent β in [0, 1], scalar (annealed to 1 over training).

    Returns:
      Weights in (0, 1], ``[N]`` float32.
    """
    # Log space: P can be ~1e-7 for big buffers, and P^(−β) for small P overflows nothing here.
    log_p = jnp.log(jnp.maximum(jnp.asarray(probabilities, jnp.float32), 1e-30))
    return jnp.exp(-jnp.asarray(beta, jnp.float32) * (log_p - jnp.min(log_p)))


@dataclasses.dataclass(frozen=True)
class ReplayBuffer:
    """A replay buffer's static settings and its pure functions.

    Build with :func:`make_replay_buffer`; the state is a flashbax buffer state
    (a pytree), so it lives in a ``lax.scan`` carry and under ``vmap``.
    """

    capacity: int  # C, transitions over all environments (a multiple of num_envs)
    num_envs: int  # B, transitions added per call of ``add``
    batch_size: int  # N, windows per sample
    sequence_length: int = 1  # n, transitions per window
    prioritized: bool = False

    @property
    def rows_length(self) -> int:
        """Length of each environment's time axis, ``C // B``."""
        return self.capacity // self.num_envs

    def _flashbax(self):
        common = dict(
            add_batch_size=self.num_envs,
            sample_batch_size=self.batch_size,
            sample_sequence_length=self.sequence_length,
            period=1,
            min_length_time_axis=self.sequence_length,
            max_length_time_axis=self.rows_length,
        )
        if self.prioritized:
            return flashbax.make_prioritised_trajectory_buffer(
                **common, priority_exponent=1.0, device=_backend_device()
            )
        return flashbax.make_trajectory_buffer(**common)

    def init(self, example: Transition) -> Any:
        """An empty buffer state for transitions shaped like ``example`` (one, unbatched)."""
        return self._flashbax().init(example)

    def add(self, state: Any, transitions: Transition) -> Any:
        """Appends one transition per environment: leaves ``[B, *]``.

        When a row is full the oldest transitions of that row are overwritten.
        """
        leading = {jnp.shape(x)[:1] for x in jax.tree.leaves(transitions)}
        if leading != {(self.num_envs,)}:
            shapes = [jnp.shape(x) for x in jax.tree.leaves(transitions)]
            raise ValueError(
                f"ReplayBuffer.add: every leaf of `transitions` needs the leading axis "
                f"num_envs ({self.num_envs}); got shapes {shapes}"
            )
        return self._flashbax().add(state, jax.tree.map(lambda x: x[:, None], transitions))

    def sample(self, state: Any, key: jax.Array, beta=1.0) -> ReplaySample:
        """Draws N windows: uniformly, or ∝ pᵢ^α with importance weights of exponent β.

        Sample only once ``size(state) >= sequence_length * num_envs``.
        """
        squeeze = self.sequence_length == 1
        if not self.prioritized:
            rows, times = self._uniform_windows(state, key)
            transitions = jax.tree.map(lambda x: x[rows, times], state.experience)
            transitions = jax.tree.map(lambda x: x[:, 0] if squeeze else x, transitions)
            weights = jnp.ones((self.batch_size,), jnp.float32)
            return ReplaySample(transitions, weights, jnp.zeros((self.batch_size,), jnp.int32))
        out = self._flashbax().sample(state, key)
        transitions = jax.tree.map(lambda x: x[:, 0] if squeeze else x, out.experience)
        weights = importance_weights(out.probabilities, beta)
        return ReplaySample(transitions, weights, out.indices.astype(jnp.int32))

    def _uniform_windows(self, state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Rows ``[N, 1]`` and time indices ``[N, n]`` of N windows drawn uniformly.

        The same windows as flashbax's uniform sampler (those that do not span the write
        position), drawn with one random word per window instead of two ``randint`` calls:
        the draw is ``bits mod M`` for M valid windows, whose bias (< M / 2³²) is far below
        sampling error. Sampling is the costliest part of an environment step after the
        network update, so it is kept lean.
        """
        length, n = self.rows_length, self.sequence_length
        filled = jnp.where(state.is_full, length, state.current_index)
        head = jnp.where(state.is_full, state.current_index, 0)
        per_row = jnp.maximum(filled - n + 1, 1).astype(jnp.uint32)
        bits = jax.random.bits(key, (self.batch_size,), jnp.uint32)
        flat = bits % (per_row * self.num_envs)
        rows = (flat // per_row).astype(jnp.int32)
        starts = (flat % per_row).astype(jnp.int32)
        times = (head + starts[:, None] + jnp.arange(n)) % length
        return rows[:, None], times

    def update_priorities(
        self, state: Any, indices: jax.Array, td_errors: jax.Array, alpha, eps=1e-6
    ) -> Any:
        """Sets the priorities of sampled windows from their TD errors: stores (|δ| + ε)^α.

        Args:
          state: a prioritised buffer state.
          indices: window ids from :meth:`sample`, ``[N]``.
          td_errors: TD errors δ of those windows, ``[N]``.
          alpha: priority exponent α in [0, 1] (0 is uniform), scalar.
          eps: ε > 0, keeps every stored window sampleable.

        Returns:
          The buffer state with new priorities (and the maximum priority updated).
        """
        if not self.prioritized:
            raise ValueError("ReplayBuffer.update_priorities: this buffer is not prioritized")
        priorities = (jnp.abs(jnp.asarray(td_errors, jnp.float32)) + eps) ** alpha
        return _pbuf.set_priorities(state, indices, priorities, 1.0, _backend_device())

    def size(self, state: Any) -> jax.Array:
        """Transitions stored, over all environments (int32 scalar)."""
        filled = jnp.where(state.is_full, self.rows_length, state.current_index)
        return (filled * self.num_envs).astype(jnp.int32)

    def fill(self, state: Any) -> jax.Array:
        """Fraction of the capacity in use (float32 scalar)."""
        return self.size(state).astype(jnp.float32) / self.capacity

    def can_sample(self, state: Any) -> jax.Array:
        """Whether every row holds at least one full window (bool scalar)."""
        return _tbuf.can_sample(state, self.sequence_length)


def _check_int(value, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"make_replay_buffer: `{name}` must be an integer >= {low}, got {value!r}")


def make_replay_buffer(
    capacity: int,
    num_envs: int,
    batch_size: int,
    sequence_length: int = 1,
    prioritized: bool = False,
) -> ReplayBuffer:
    """Builds a uniform or prioritised replay buffer.

    Args:
      capacity: C, transitions kept over all environments; must be a multiple of ``num_envs``
        with at least 2 transitions per environment and at least ``sequence_length``.
      num_envs: B, environments adding one transition each per ``add``.
      batch_size: N, windows per ``sample``.
      sequence_length: n, consecutive transitions per window (n-step targets); 1 by default.
      prioritized: sample ∝ pᵢ^α (see the module docstring) instead of uniformly.

    Returns:
      A :class:`ReplayBuffer`.
    """
    _check_int(num_envs, "num_envs", 1)
    _check_int(batch_size, "batch_size", 1)
    _check_int(sequence_length, "sequence_length", 1)
    _check_int(capacity, "capacity", 2 * num_envs)
    if capacity % num_envs:
        raise ValueError(
            f"make_replay_buffer: `capacity` ({capacity}) must be a multiple of num_envs "
            f"({num_envs})"
        )
    if capacity // num_envs < sequence_length:
        raise ValueError(
            f"make_replay_buffer: capacity // num_envs ({capacity // num_envs}) must be at least "
            f"sequence_length ({sequence_length})"
        )
    return ReplayBuffer(
        capacity=int(capacity),
        num_envs=int(num_envs),
        batch_size=int(batch_size),
        sequence_length=int(sequence_length),
        prioritized=bool(prioritized),
    )

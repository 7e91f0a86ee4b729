"""Frames of Gymnasium and Brax episodes for ``jaxrl eval --video``.

Gymnasium environments step on the host, so their episode is recorded on the host too:
the compiled policy acts, a ``render_mode="rgb_array"`` copy of the environment steps and
draws itself. Where Gymnasium's renderer needs a package that is not installed (pygame for
the classic-control ids), the classic-control ids are drawn by jaxrl from the unwrapped
state, with the same drawers as their gymnax twins.

Brax environments step inside the compiled rollout like gymnax ones; their frames are a
side view (x right, z up) of the system's geometries placed by the recorded link frames:
capsules and cylinders as thick segments, spheres as discs, boxes as rotated rectangles,
planes as the ground line. The view follows the bodies' mean x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxrl.run import video

__all__ = ["brax_frames", "find_brax_state", "gymnasium_env", "record_gymnasium"]

PX_PER_M = 110.0
BODY = (0, 102, 204)
# MuJoCo geometry types (mujoco.mjtGeom) that Brax systems use.
PLANE, SPHERE, CAPSULE, CYLINDER, BOX = 0, 2, 3, 5, 6


def gymnasium_env(env: Any):
    """The :class:`jaxrl.envs.gymnasium.GymnasiumEnv` inside ``env``'s wrappers, or None."""
    from jaxrl.envs.gymnasium import GymnasiumEnv

    while env is not None and not isinstance(env, GymnasiumEnv):
        env = getattr(env, "_env", None)
    return env


def _classic_frame(env_id: str, state: np.ndarray) -> np.ndarray | None:
    """jaxrl's drawing of a Gymnasium classic-control state (same physics as gymnax)."""
    s = [float(v) for v in np.ravel(state)]
    if env_id.startswith("CartPole"):
        return video.draw_cartpole(s[0], s[2])
    if env_id.startswith("Acrobot"):
        return video._draw_acrobot(s[0], s[1])
    if env_id.startswith("Pendulum"):
        return video._draw_pendulum(s[0])
    if env_id.startswith("MountainCar"):
        return video._draw_mountain_car(s[0])
    return None


def record_gymnasium(policy, params: Any, key, deterministic: bool = True):
    """One episode of ``policy`` in its Gymnasium environment, stepped and drawn on the host.

    Returns:
      ``(frames, states, rewards)``: a frame before every step, the unwrapped states
      ``[T, ...]`` where the environment exposes one (else None) and the rewards ``[T]``.

    Raises:
      ValueError: the environment can be drawn neither by Gymnasium (a package missing) nor
        by jaxrl.
    """
    import gymnasium
    import jax

    host_env = gymnasium_env(policy.env)
    env_id = host_env.env_id
    env = gymnasium.make(env_id, render_mode="rgb_array", **host_env.make_kwargs)
    act = jax.jit(lambda p, o, k: policy.act(p, o[None], k, deterministic)[0])
    seed = int(np.asarray(jax.random.randint(key, (), 0, 2**31 - 1)))
    obs, _ = env.reset(seed=seed)
    own_renderer = True
    frames, states, rewards = [], [], []
    limit = getattr(env.spec, "max_episode_steps", None) or 10_000
    for t in range(limit):
        state = getattr(env.unwrapped, "state", None)
        states.append(None if state is None else np.asarray(state, np.float64))
        frame = None
        if own_renderer:
            try:
                frame = env.render()
            except gymnasium.error.DependencyNotInstalled as e:
                own_renderer, missing = False, (str(e).splitlines() or [""])[0]
        if frame is None and state is not None:
            frame = _classic_frame(env_id, state)
        if frame is None:
            env.close()
            why = missing if not own_renderer else "render() returned no frame"
            raise ValueError(f"--video: cannot draw gymnasium:{env_id} ({why})")
        frames.append(video._label(np.asarray(frame, np.uint8), f"step {t + 1}"))
        key, step_key = jax.random.split(key)
        action = np.asarray(act(params, np.asarray(obs, np.float32), step_key))
        if policy.discrete:
            action = int(action) + int(host_env._act_start)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    env.close()
    known = all(s is not None for s in states)
    return frames, (np.stack(states) if known else None), np.asarray(rewards, np.float32)


def find_brax_state(states: Any):
    """The :class:`jaxrl.envs.brax.BraxState` inside (possibly wrapped) recorded states."""
    from jaxrl.envs.brax import BraxState

    while states is not None and not isinstance(states, BraxState):
        states = getattr(states, "env_state", None)
    return states


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotates vectors ``v [..., 3]`` by unit quaternions ``q [..., 4]`` (w, x, y, z)."""
    w, u = q[..., :1], q[..., 1:]
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def _brax_frame(sys, pos: np.ndarray, rot: np.ndarray, label: str) -> np.ndarray:
    """A side view of one physics state: link positions ``pos [L, 3]``, rotations ``rot [L, 4]``."""
    img, d = video._canvas()
    cam_x = float(np.mean(pos[:, 0])) if len(pos) else 0.0
    z0 = video.H * 0.7

    def px(p):
        return (video.W / 2 + (p[0] - cam_x) * PX_PER_M, z0 - p[2] * PX_PER_M)

    body = np.asarray(sys.geom_bodyid)
    kinds = np.asarray(sys.geom_type)
    sizes = np.asarray(sys.geom_size, np.float64)
    gpos = np.asarray(sys.geom_pos, np.float64)
    gquat = np.asarray(sys.geom_quat, np.float64)
    for g in range(len(body)):
        b = int(body[g]) - 1  # body 0 is the world; links are the other bodies
        bpos = pos[b] if b >= 0 else np.zeros(3)
        brot = rot[b] if b >= 0 else np.array([1.0, 0.0, 0.0, 0.0])
        centre = bpos + _rotate(brot, gpos[g])
        kind, size = int(kinds[g]), sizes[g]
        if kind == PLANE:
            y = px(centre)[1]
            d.line([(0, y), (video.W, y)], fill=video.INK, width=2)
        elif kind in (CAPSULE, CYLINDER):
            axis = _rotate(brot, _rotate(gquat[g], np.array([0.0, 0.0, 1.0])))
            ends = [px(centre - size[1] * axis), px(centre + size[1] * axis)]
            width = max(2, int(round(2 * size[0] * PX_PER_M)))
            d.line(ends, fill=BODY, width=width)
        elif kind == SPHERE:
            (cx, cy), r = px(centre), size[0] * PX_PER_M
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=BODY)
        elif kind == BOX:
            corners = [np.array([sx * size[0], 0.0, sz * size[2]]) for sx, sz in
                       ((-1, -1), (1, -1), (1, 1), (-1, 1))]  # fmt: skip
            q = gquat[g]
            d.polygon([px(centre + _rotate(brot, _rotate(q, c))) for c in corners], fill=BODY)
    d.text((4, 2), label, fill=(90, 90, 90))
    return np.asarray(img)


def brax_frames(env: Any, states: Any) -> list[np.ndarray]:
    """One side-view frame per recorded step of a Brax environment (``states`` ``[T, ...]``)."""
    inner_env = env
    while inner_env is not None and not hasattr(inner_env, "brax_name"):
        inner_env = getattr(inner_env, "_env", None)
    brax_state = find_brax_state(states)
    if inner_env is None or brax_state is None:
        raise ValueError("--video: the recorded states hold no Brax state")
    x = brax_state.inner.pipeline_state.x
    pos, rot = np.asarray(x.pos, np.float64), np.asarray(x.rot, np.float64)
    sys = inner_env._env.sys
    return [_brax_frame(sys, pos[t], rot[t], f"step {t + 1}") for t in range(len(pos))]

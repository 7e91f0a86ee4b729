"""Watching a trained policy: one episode recorded in a compiled rollout, drawn on the host.

``record_episode`` runs one episode of a :class:`jaxrl.run.evaluate.Policy` under
``jax.jit`` (a ``lax.scan`` over the env's time limit) and keeps the environment
state and observation before every step; the frames are drawn afterwards with
Pillow from those recorded states, one frame per step, and ``write_video``
saves them as a GIF (Pillow) or an MP4 (imageio with imageio-ffmpeg).

Drawn environments: CartPole, Acrobot, Pendulum, MountainCar (both), MinAtar
(from the observation channels) and the tabular grid worlds; Gymnasium and Brax
environments through :mod:`jaxrl.run.video_envs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CARTPOLE",
    "DRAWABLE",
    "Recording",
    "draw_cartpole",
    "frames_for",
    "record_episode",
    "record_video",
    "write_video",
]

W, H = 400, 300
BACKGROUND = (255, 255, 255)
POLE = (202, 152, 101)
INK = (40, 40, 40)
# CartPole geometry in pixels: the pivot's height, pixels per metre along the track and
# the drawn pole length (the tests find the pole's tip from these).
CARTPOLE = {"pivot_y": 200, "scale": W / 4.8, "pole_px": 120, "pole_width": 8}


def _canvas():
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H), BACKGROUND)
    return img, ImageDraw.Draw(img)


def draw_cartpole(x: float, theta: float) -> np.ndarray:
    """A CartPole frame ``[H, W, 3]`` uint8: the cart at ``x`` metres, the pole at ``theta``
    radians from upright (positive: clockwise, to the right, as in gymnax)."""
    img, d = _canvas()
    c = CARTPOLE
    cx = W / 2 + x * c["scale"]
    py = c["pivot_y"]
    d.line([(0, py + 15), (W, py + 15)], fill=INK, width=1)
    d.rectangle([cx - 25, py - 15, cx + 25, py + 15], fill=INK)
    tip = (cx + c["pole_px"] * math.sin(theta), py - c["pole_px"] * math.cos(theta))
    d.line([(cx, py), tip], fill=POLE, width=c["pole_width"])
    d.ellipse([cx - 4, py - 4, cx + 4, py + 4], fill=(129, 132, 203))
    return np.asarray(img)


def _draw_acrobot(theta1: float, theta2: float) -> np.ndarray:
    img, d = _canvas()
    link = 70
    p0 = (W / 2, H / 2)
    p1 = (p0[0] + link * math.sin(theta1), p0[1] + link * math.cos(theta1))
    p2 = (p1[0] + link * math.sin(theta1 + theta2), p1[1] + link * math.cos(theta1 + theta2))
    d.line([(0, H / 2 - 2 * link), (W, H / 2 - 2 * link)], fill=INK, width=1)  # the goal line
    d.line([p0, p1], fill=(0, 102, 204), width=8)
    d.line([p1, p2], fill=(0, 102, 204), width=8)
    for p in (p0, p1):
        d.ellipse([p[0] - 5, p[1] - 5, p[0] + 5, p[1] + 5], fill=(204, 204, 0))
    return np.asarray(img)


def _draw_pendulum(theta: float) -> np.ndarray:
    img, d = _canvas()
    length = 110
    p0 = (W / 2, H / 2)
    # gymnax Pendulum: θ = 0 is upright.
    p1 = (p0[0] + length * math.sin(theta), p0[1] - length * math.cos(theta))
    d.line([p0, p1], fill=(204, 77, 77), width=14)
    d.ellipse([p0[0] - 6, p0[1] - 6, p0[0] + 6, p0[1] + 6], fill=INK)
    return np.asarray(img)


def _draw_mountain_car(position: float) -> np.ndarray:
    img, d = _canvas()
    lo, hi = -1.2, 0.6
    xs = np.linspace(lo, hi, 100)

    def px(x, y):
        return ((x - lo) / (hi - lo) * (W - 20) + 10, H - 40 - (y + 1.0) * 110)

    d.line([px(x, math.sin(3 * x)) for x in xs], fill=INK, width=2)
    fx, fy = px(0.5, math.sin(1.5))
    d.line([(fx, fy), (fx, fy - 40)], fill=INK, width=2)
    d.polygon([(fx, fy - 40), (fx + 20, fy - 34), (fx, fy - 28)], fill=(204, 204, 0))
    cx, cy = px(position, math.sin(3 * position))
    d.ellipse([cx - 10, cy - 18, cx + 10, cy + 2], fill=(0, 102, 204))
    return np.asarray(img)


def _draw_minatar(obs: np.ndarray) -> np.ndarray:
    obs = np.asarray(obs)
    channels = obs.shape[-1]
    palette = np.array(
        [[int(255 * c) for c in _hsv(i / max(channels, 1))] for i in range(channels)], np.uint8
    )
    grid = np.full(obs.shape[:2] + (3,), 255, np.uint8)
    active = obs > 0.5
    for ch in range(channels - 1, -1, -1):  # the first channel drawn on top
        grid[active[..., ch]] = palette[ch]
    return np.kron(grid, np.ones((25, 25, 1), np.uint8))


def _hsv(h: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, 0.7, 0.9)


def _draw_grid(layout, state: int) -> np.ndarray:
    rows, cols = layout.shape
    cell = max(10, min(40, 400 // cols))
    colours = {"S": (200, 230, 200), "G": (250, 215, 90), "H": (60, 60, 90), "C": (60, 60, 90)}
    grid = np.full((rows * cell, cols * cell, 3), 235, np.uint8)
    for r, line in enumerate(layout.tiles):
        for c, ch in enumerate(line):
            grid[r * cell + 1 : (r + 1) * cell - 1, c * cell + 1 : (c + 1) * cell - 1] = (
                colours.get(ch, (245, 245, 245))
            )
    r, c = divmod(int(state), cols)
    if r < rows:
        q = cell // 4
        grid[r * cell + q : (r + 1) * cell - q, c * cell + q : (c + 1) * cell - q] = (204, 50, 50)
    return grid


DRAWABLE = (
    "CartPole", "Acrobot", "Pendulum", "MountainCar", "MinAtar", "tabular grid worlds",
    "gymnasium:ID (its own renderer; classic control also without pygame)", "brax:NAME",
)  # fmt: skip


def frames_for(env: Any, env_id: str, states: Any, obs: np.ndarray) -> list[np.ndarray]:
    """One frame per recorded step of ``env_id`` (``states`` leaves and ``obs`` are ``[T, ...]``).

    Raises:
      ValueError: the environment cannot be drawn (names the ones that can).
    """
    get = lambda name: np.asarray(getattr(states, name))  # noqa: E731
    steps = len(obs)
    draw: Callable[[int], np.ndarray]
    if env_id.startswith("CartPole"):
        x, th = get("x"), get("theta")
        draw = lambda t: draw_cartpole(float(x[t]), float(th[t]))  # noqa: E731
    elif env_id.startswith("Acrobot"):
        a1, a2 = get("joint_angle1"), get("joint_angle2")
        draw = lambda t: _draw_acrobot(float(a1[t]), float(a2[t]))  # noqa: E731
    elif env_id.startswith("Pendulum"):
        th = get("theta")
        draw = lambda t: _draw_pendulum(float(th[t]))  # noqa: E731
    elif env_id.startswith("MountainCar"):
        pos = get("position")
        draw = lambda t: _draw_mountain_car(float(pos[t]))  # noqa: E731
    elif "MinAtar" in env_id:
        draw = lambda t: _draw_minatar(obs[t])  # noqa: E731
    elif getattr(env, "layout", None) is not None:
        s = get("state")
        draw = lambda t: _draw_grid(env.layout, int(s[t]))  # noqa: E731
    else:
        raise ValueError(f"--video: cannot draw {env_id!r}; drawable: {', '.join(DRAWABLE)}")
    return [_label(draw(t), f"step {t + 1}") for t in range(steps)]


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    """Writes ``text`` in the top-left corner (it also keeps the GIF writer from merging two
    identical consecutive frames into one)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.asarray(frame, np.uint8))
    ImageDraw.Draw(img).text((4, 2), text, fill=(90, 90, 90))
    return np.asarray(img)


def record_episode(policy, params: Any, key, deterministic: bool = True):
    """One episode of ``policy`` (parameters of one run), recorded inside one compiled scan.

    Returns:
      ``(states, obs, rewards)``: the environment state and the observation before every
      step of the episode (leaves ``[T, ...]``, NumPy) and the rewards ``[T]``.
    """
    import jax
    import jax.numpy as jnp

    env, env_params = policy.env, policy.env_params
    limit = int(getattr(env_params, "max_steps_in_episode", 1000))

    def run(params, key):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, env_params)

        def step(carry, step_key):
            state, obs, done = carry
            act_key, env_key = jax.random.split(step_key)
            action = policy.act(params, obs[None], act_key, deterministic)[0]
            next_obs, next_state, reward, term, trunc, _ = env.step(
                env_key, state, action, env_params
            )
            out = (state, obs, reward, done)
            return (next_state, next_obs, done | term | trunc), out

        carry = (state, obs, jnp.bool_(False))
        _, (states, obs, rewards, before) = jax.lax.scan(step, carry, jax.random.split(key, limit))
        return states, obs, rewards, before

    states, obs, rewards, before = jax.device_get(jax.jit(run)(params, key))
    steps = int(np.sum(~np.asarray(before)))  # steps taken before the episode had ended
    cut = lambda x: np.asarray(x)[:steps]  # noqa: E731
    return jax.tree.map(cut, states), cut(obs), cut(rewards)


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    """Writes ``frames`` (each ``[H, W, 3]`` uint8) as a GIF, or an MP4 with imageio-ffmpeg."""
    path = Path(path)
    if not frames:
        raise ValueError(f"--video {path}: the episode has no frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
            optimize=False,
        )
        return path
    if suffix == ".mp4":
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401
        except ImportError as e:
            raise ValueError(
                f"--video {path}: mp4 needs imageio-ffmpeg: pip install 'jaxrl[video]' "
                "(or write a .gif)"
            ) from e
        imageio.mimwrite(path, [np.asarray(f, np.uint8) for f in frames], fps=fps)
        return path
    raise ValueError(f"--video {path}: the name must end in .gif or .mp4")


class Recording(NamedTuple):
    """What :func:`record_video` wrote and what it drew it from."""

    path: Path
    frames: int  # T, one per step
    states: Any  # the environment state before every step, leaves [T, ...]
    rewards: np.ndarray  # [T]


def record_video(restored, path, deterministic: bool = True, seed: int = 0) -> Recording:
    """Records one episode of the first run of a restored run directory into ``path``."""
    import jax

    from jaxrl.run.evaluate import _env_of

    policy = restored.policies[0]
    env_id = _env_of(restored.config)
    params = jax.tree.map(lambda x: x[0], policy.params)
    key = jax.random.PRNGKey(seed)
    if env_id.startswith("gymnasium:"):  # stepped on the host: recorded there too
        from jaxrl.run.video_envs import record_gymnasium

        frames, states, rewards = record_gymnasium(policy, params, key, deterministic)
        return Recording(write_video(frames, path), len(frames), states, rewards)
    states, obs, rewards = record_episode(policy, params, key, deterministic)
    if env_id.startswith("brax:"):
        from jaxrl.run.video_envs import brax_frames

        frames = brax_frames(policy.env, states)
    else:
        frames = frames_for(policy.env, env_id, states, obs)
    return Recording(write_video(frames, path), len(frames), states, rewards)

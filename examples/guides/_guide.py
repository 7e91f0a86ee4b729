"""Shared pieces of the guide scripts: arguments, the page writer, figures, small statistics.

Every guide script ``examples/guides/NN_name.py`` exposes ``run(quick, out_dir) -> dict``
(the numbers its page states, for ``tests/test_guides.py`` to check) and ``main()``. The
page it writes, ``<out_dir>/NN-name.md``, is a template filled with the numbers of the
run; figures go to ``<out_dir>/figures/``. Nothing in a page is typed by hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np

from jaxrl.run import stack_configs

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "docs" / "guides"
# --quick numbers are tiny-budget ones: never over the committed pages and figures.
QUICK_OUT = REPO / "runs" / "guides-quick"

__all__ = [
    "REPO",
    "Page",
    "fmt_ci",
    "load_example",
    "main",
    "parse_args",
    "plt",
    "run_seeds",
    "smooth",
    "source",
    "table",
    "to_json",
]


def parse_args(description: str, argv=None) -> argparse.Namespace:
    """``--quick`` (tiny budgets), ``--out-dir`` (default docs/guides, or runs/guides-quick
    with ``--quick``, so a quick run never replaces a committed page), ``--results FILE``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny budgets (seconds), for tests")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help=f"where the page and figures go (default {DEFAULT_OUT.relative_to(REPO)}; "
        f"{QUICK_OUT.relative_to(REPO)} with --quick)",
    )
    parser.add_argument("--results", type=Path, help="also write the page's numbers as JSON")
    args = parser.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = QUICK_OUT if args.quick else DEFAULT_OUT
    return args


def to_json(x):
    """The numbers a guide returns, as JSON-able Python (arrays to lists, keys to str)."""
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_json(v) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return to_json(np.asarray(x).tolist())
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating | float):
        return float(x)
    return x


def main(run, description: str, argv=None) -> dict:
    """Parses the arguments, runs the guide, writes ``--results`` if asked; returns the numbers."""
    args = parse_args(description, argv)
    out = run(args.quick, args.out_dir)
    print(f"page and figures written to {args.out_dir}")
    if args.results is not None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(to_json(out), allow_nan=True))
    return out


def plt():
    """matplotlib.pyplot with the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def load_example(name: str):
    """Imports ``examples/<name>.py`` as a module (examples/ is not a package)."""
    path = REPO / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"jaxrl_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_seeds(agent, configs, keys):
    """Every config × seed of an ``Agent`` in one compiled program; each ``init`` unbatched.

    The same numbers as ``jax.jit(jax.vmap(make_train(config)))(keys)`` per config; the
    configs must share their static fields (their traced numbers are stacked, as in
    ``jaxrl.run.stack_configs``). The network initialisation runs once per (config, key)
    in a ``lax.map`` (a loop), not under ``vmap``: on this jax (0.10.2, CPU) a vmapped
    orthogonal initialiser is a batched LAPACK QR, and two batched QRs running at once on
    a 2-thread CPU pool can deadlock (both workers wait for work only they could run);
    unbatched ones cannot. Initialisation and training are one program: one compile.

    Args:
      agent: an ``Agent`` (``init``, ``update``, ``num_updates``), e.g. ``ppo.make_agent(c)``.
      configs: a Config or a list of Configs.
      keys: ``[S]`` PRNG keys.

    Returns:
      ``(states, metrics)`` with leading axes ``[C, S]`` (``[S]`` for a single Config).
    """
    single = not isinstance(configs, list | tuple)
    configs = [configs] if single else list(configs)
    stacked = stack_configs(configs)

    def updates(state, config):
        step = lambda s, _: agent.update(s, config)  # noqa: E731
        return jax.lax.scan(step, state, None, length=agent.num_updates)

    def train(keys, configs):
        init_seeds = lambda c: jax.lax.map(lambda k: agent.init(k, c), keys)  # noqa: E731
        states = jax.lax.map(init_seeds, configs)  # [C, S], one init at a time
        out = jax.vmap(jax.vmap(updates, in_axes=(0, None)))(states, configs)
        return jax.tree.map(lambda x: x[0], out) if single else out

    return jax.jit(train)(keys, stacked)


def source(fn) -> str:
    """The source code of ``fn``, dedented: code excerpts in a page are the code that ran."""
    return textwrap.dedent(inspect.getsource(fn)).strip()


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis (shorter windows at the start)."""
    x = np.asarray(x, np.float64)
    c = np.cumsum(np.concatenate([np.zeros(x.shape[:-1] + (1,)), x], axis=-1), axis=-1)
    idx = np.arange(1, x.shape[-1] + 1)
    lo = np.maximum(idx - window, 0)
    return (c[..., idx] - c[..., lo]) / (idx - lo)


def fmt_ci(summary: dict, digits: int = 1) -> str:
    """``IQM x [lo, hi]`` from ``jaxrl.run.stats.summarize``."""
    lo, hi = summary["iqm_ci95"]
    return f"{summary['iqm']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Page:
    """One guide page: where its figures go, and the header that says how it was made."""

    def __init__(self, script: str, quick: bool, out_dir: Path):
        self.script = Path(script).name  # e.g. 01_on_off_policy.py
        self.stem = self.script.removesuffix(".py").replace("_", "-")  # 01-on-off-policy
        self.quick = quick
        self.out_dir = Path(out_dir)
        self.start = time.perf_counter()
        (self.out_dir / "figures").mkdir(parents=True, exist_ok=True)

    def figure(self, name: str) -> tuple[Path, str]:
        """(path to save a figure to, its link relative to the page)."""
        file = f"{self.stem}-{name}.png"
        return self.out_dir / "figures" / file, f"figures/{file}"

    def save(self, fig, name: str) -> str:
        """Saves a matplotlib figure and returns its Markdown image link."""
        path, link = self.figure(name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt().close(fig)
        return f"![{name}]({link})"

    def header(self, title: str) -> str:
        seconds = time.perf_counter() - self.start
        flag = " --quick" if self.quick else ""
        cpu = f"{os.cpu_count()}-core {platform.machine()} CPU"
        lines = [
            f"<!-- Generated by examples/guides/{self.script}; edit the script, not this page. -->",
            f"# {title}",
            "",
            f"> Made by `python examples/guides/{self.script}{flag}` in {seconds:.0f} s "
            f"({jax.default_backend()}, {cpu}, jax {jax.__version__}). Every number and figure "
            "on this page comes from that run.",
        ]
        if self.quick:
            lines.append("> **Quick mode**: tiny budgets for the tests; the numbers mean little.")
        return "\n".join(lines)

    def write(self, title: str, sections: list[str]) -> Path:
        """Writes the page: the header, then the sections (Markdown strings) in order."""
        path = self.out_dir / f"{self.stem}.md"
        text = self.header(title) + "\n\n" + "\n\n".join(s.strip() for s in sections) + "\n"
        path.write_text(text)
        print(f"wrote {path} ({time.perf_counter() - self.start:.0f} s)")
        return path

"""Every documented command runs as written, at small budgets.

The README is parsed when the tests run, so a section added later is covered too:
- every command of its ```bash blocks that starts with ``jaxrl`` or ``python``, split at
  ``&&`` and without comments (the install steps, ``python3 -m venv``, ``pip``, ``.`` and
  ``pytest``, are CI's own steps and are left out; ``python -m benchmarks`` runs on
  demand, never in CI). Commands that share a run directory (``--out X`` then
  ``--from X``, ``--resume X``, ``--reward-model X`` or ``X`` itself) run in one test, in
  README order, in one temporary directory;
- every ```python block, with ``total_timesteps=N`` lowered to at most 4,096;
- every ``examples/*.py`` (the guides have tests/test_guides.py), with no arguments.

Small budgets come from ``JAXRL_QUICK=1``, which the ``jaxrl`` command (2 updates, ≤ 2
seeds, 20 tabular episodes, tiny LLM stages) and the examples (their ``QUICK`` defaults,
output under ``runs/examples-quick``) honour. Subprocesses compile with LLVM at -O0: at
these budgets compiling is most of the time.

The README's first command, ``jaxrl train ppo``, and the Python snippets run in their own
processes (a snippet once hung in a LAPACK deadlock: the timeout catches that). The other
``jaxrl`` commands run ``jaxrl.cli.main(argv)`` (the ``jaxrl`` script's function) and the
scripts ``runpy`` (as ``python SCRIPT`` would) inside the test process, in the command's
directory and with ``JAXRL_QUICK=1``: a new process would spend about 2.5 s importing jax,
matplotlib and the rest before each command, and in one process a program that an earlier
command compiled for the same shapes is not traced or compiled again.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.in_process import run_in_process

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT_S = 300
QUICK_STEPS = 4_096  # at most this many total_timesteps in the README's Python snippets
SKIPPED_PROGRAMS = ("pip", ".", "source", "pytest", "cd")
MAIN_JOB = "jaxrl train ppo"  # the install line's command: run by the installed entry point


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.M | re.S)


def _commands() -> list[str]:
    """The runnable commands of the README's bash blocks, in order."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            for part in (p.strip() for p in line.split("&&")):
                words = shlex.split(part)
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words.pop(0)  # VAR=value prefixes
                if not words or words[0] in SKIPPED_PROGRAMS:
                    continue
                if words[0] in ("python", "python3") and words[1:2] == ["-m"]:
                    continue  # venv, pip, pytest, benchmarks: CI's steps or on-demand runs
                commands.append(part)  # jaxrl, python SCRIPT, or anything else (to be noticed)
    return commands


def _chains(commands: list[str]) -> list[list[str]]:
    """Commands grouped by the run directories they share (union-find), README order kept."""
    outs = {}
    for i, c in enumerate(commands):
        words = shlex.split(c)
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "--out":
                outs.setdefault(value.rstrip("/"), i)
    parent = list(range(len(commands)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i, c in enumerate(commands):
        for word in shlex.split(c):
            j = outs.get(word.rstrip("/"))
            if j is not None:
                parent[find(i)] = find(j)
    groups: dict[int, list[str]] = {}
    for i, c in enumerate(commands):
        groups.setdefault(find(i), []).append(c)
    return list(groups.values())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["JAXRL_QUICK"] = "1"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    env["MPLBACKEND"] = "Agg"
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: no answer within {TIMEOUT_S} s")
    assert done.returncode == 0, f"{what}: exit {done.returncode}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, f"{what}\n{done.stderr[-3000:]}"


def _argv(command: str, env: dict[str, str]) -> list[str]:
    """The subprocess argv of a README command: ``jaxrl`` from this interpreter, example
    scripts from the repository, ``VAR=value`` prefixes into ``env``."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = f"{env.get(name, '')} {value}".strip() if name == "XLA_FLAGS" else value
    if words[0] == "jaxrl":
        return [sys.executable, "-m", "jaxrl.cli", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *(str(ROOT / w) if (ROOT / w).is_file() else w for w in words[1:])]
    return words


def _id(chain: list[str]) -> str:
    text = chain[0] + (f" (+{len(chain) - 1})" if len(chain) > 1 else "")
    return re.sub(r"[^\w.=+-]+", "_", text)[:60]


CHAINS = _chains(_commands())
SNIPPETS = _blocks("python")
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_the_readme_is_parsed():
    commands = [c for chain in CHAINS for c in chain]
    assert MAIN_JOB in commands  # the install line's command, on its own
    assert not any(c.startswith(("pip", "python3 -m venv")) for c in commands)
    assert any("--resume" in c for c in commands) and len(SNIPPETS) >= 2
    assert any(len(chain) > 1 for chain in CHAINS)  # run directories chain commands


def _in_process(command: str) -> list[str] | None:
    """The words of a command that can run in this process: ``jaxrl ...`` or ``python
    SCRIPT ...`` of this repository, without ``VAR=value`` prefixes."""
    words = shlex.split(command)
    if words[0] == "jaxrl" or (words[0] == "python" and (ROOT / words[1]).is_file()):
        return words
    return None


@pytest.mark.parametrize("chain", CHAINS, ids=[_id(c) for c in CHAINS])
def test_readme_command(chain, tmp_path, monkeypatch):
    for command in chain:
        assert "<" not in command, f"{command!r}: a placeholder cannot run as written"
        words = _in_process(command)
        if command == MAIN_JOB or words is None:  # the main job: the installed command, whole
            env = _env()
            _run(_argv(command, env), tmp_path, env, command)
        else:
            run_in_process(words, tmp_path, monkeypatch, command)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_python_snippet(index, tmp_path):
    code = re.sub(
        r"total_timesteps=([\d_]+)",
        lambda m: f"total_timesteps={min(int(m.group(1)), QUICK_STEPS)}",
        SNIPPETS[index],
    )
    script = tmp_path / "snippet.py"
    script.write_text(code)
    _run([sys.executable, str(script)], tmp_path, _env(), f"README python block {index + 1}")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example(path, tmp_path, monkeypatch):
    name = f"examples/{path.name}"
    run_in_process(["python", name], tmp_path, monkeypatch, f"python {name}")

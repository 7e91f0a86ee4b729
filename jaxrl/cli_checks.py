"""What the ``jaxrl`` command checks before jax is imported: the names it knows, the counts.

Importing jax takes seconds (more on a loaded machine), so a typo in an algorithm,
environment or method name, or a bad count, is answered at once from the lists here
(tests/test_cli.py checks them against the live registries). A mistake is a
:class:`UsageError`: one line naming what is allowed, exit status 2.
"""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """A mistake in what the user asked for: one line, exit status 2."""


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects field=value, got {item!r}")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


# Names known without importing jax (which takes seconds): a typo is answered at once.
# tests/test_cli.py checks them against the live registries (jaxrl.agents, jaxrl.envs,
# jaxrl.tabular); a name missing here but present there still works (see _known_algorithm).
DEEP_ALGORITHMS = ("a2c", "ddpg", "dqn", "ppo", "pqn", "reinforce", "sac", "td3", "trpo")
TABULAR_ALGORITHMS = ("q-learning", "sarsa", "expected-sarsa", "double-q", "n-step-sarsa")
SOLVE_METHODS = ("value-iteration", "policy-iteration")
TABULAR_ENVS = (
    "CliffWalking",
    "FrozenLake-4x4",
    "FrozenLake-4x4-nonslippery",
    "FrozenLake-8x8",
    "FrozenLake-8x8-nonslippery",
    "MaximizationBias",
    "RandomMDP",
    "WindyGridworld",
)
ENVS = (
    *("Acrobot-v1", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"),
    *(f"{g}-MinAtar" for g in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")),
    *(
        f"{e}-bsuite"
        for e in (
            "Catch",
            "DeepSea",
            "DiscountingChain",
            "MNISTBandit",
            "MemoryChain",
            "SimpleBandit",
            "UmbrellaChain",
        )
    ),
    *(
        f"{e}-misc"
        for e in (
            "BernoulliBandit",
            "FourRooms",
            "FrozenLake",
            "GaussianBandit",
            "MetaMaze",
            "PointRobot",
            "Pong",
            "Reacher",
            "Swimmer",
        )
    ),
    *(f"Probe{i}{c}-v0" for i in (1, 2, 3, 4, 5, "Truncation") for c in ("", "Continuous")),
)


def _suggest(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, ignoring case, or ``""``."""
    import difflib

    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def _known_algorithm(name: str) -> bool:
    """A deep-RL algorithm name, checked without importing jax.

    A name missing from ``DEEP_ALGORITHMS`` whose module file exists (an algorithm
    added since) is left to the live registry."""
    if name in DEEP_ALGORITHMS:
        return True
    module = Path(__file__).parent / "agents" / f"{name}.py"
    internal = ("base", "on_policy", "off_policy")
    return name.isidentifier() and name not in internal and module.exists()


def _parse_count(flag: str, text: str) -> int:
    """A whole number >= 1 written as ``100000``, ``100_000`` or ``1e5``."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not (value >= 1 and value.is_integer() and value < 2**62):
        raise UsageError(f"{flag} must be a whole number >= 1 (e.g. 100000 or 1e5), got {text!r}")
    return int(text.replace("_", "")) if text.replace("_", "").isdigit() else int(value)


def _precheck_train(args) -> None:
    """Checks what ``jaxrl train`` can check without importing jax: names and counts."""
    for flag, value in (("--seeds", args.seeds), ("--chunk", args.chunk), ("--keep", args.keep)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.total_steps is not None:
        args.total_steps = _parse_count("--total-steps", args.total_steps)
    if args.resume is not None:
        if not args.resume.is_dir():
            raise UsageError(f"--resume {args.resume}: no such directory")
        if not (args.resume / "config.json").exists():
            raise UsageError(f"--resume {args.resume}: no config.json there (not a run directory)")
        return
    algo = args.algo
    tabular = algo in TABULAR_ALGORITHMS
    if not tabular and not _known_algorithm(algo):
        known = (*DEEP_ALGORITHMS, *TABULAR_ALGORITHMS)
        raise UsageError(
            f"unknown algorithm {algo!r}{_suggest(algo, known)}; known: {', '.join(known)}"
        )
    if tabular and args.total_steps is not None:
        raise UsageError("--total-steps: this algorithm counts episodes; use --set num_episodes=N")
    env = args.env
    for item in args.set or []:
        name, _, value = item.partition("=")
        if name.strip() in ("env_id", "env") and value.strip():
            env = value.strip()
    if env is None or ":" in env:  # gymnasium:ID, brax:NAME: the live registry decides
        return
    if tabular and env not in TABULAR_ENVS:
        if env in ENVS:
            raise UsageError(
                f"{env} is not a tabular environment: {algo} runs on {', '.join(TABULAR_ENVS)}; "
                f"for {env} use {', '.join(DEEP_ALGORITHMS)}"
            )
        raise UsageError(
            f"unknown tabular environment {env!r}{_suggest(env, TABULAR_ENVS)}; "
            f"known: {', '.join(TABULAR_ENVS)}"
        )
    if not tabular and env not in ENVS:
        if env in TABULAR_ENVS:
            raise UsageError(
                f"{env} is a tabular environment: use {', '.join(TABULAR_ALGORITHMS)} "
                f"(or jaxrl solve value-iteration --env {env})"
            )
        raise UsageError(
            f"unknown environment {env!r}{_suggest(env, ENVS)}; known: {', '.join(ENVS)}"
        )


def _quick() -> bool:
    """``JAXRL_QUICK=1``: tiny budgets, so that tests/test_docs.py can run every documented
    command as written (the README's, the examples')."""
    import os

    return os.environ.get("JAXRL_QUICK") == "1"


def _check_env(env_id: str, field: str) -> None:
    if field == "env_id" and env_id.startswith(("gymnasium:", "brax:")):
        return  # jaxrl.envs.make checks these (registered id, installed extra)
    if field == "env":
        from jaxrl.tabular import TABULAR_ENVS

        known = sorted(TABULAR_ENVS)
    else:
        from jaxrl import envs

        known = envs.registered_envs()
    if env_id not in known:
        hint = _suggest(env_id, known)
        raise UsageError(f"unknown environment {env_id!r}{hint}; known: {', '.join(known)}")

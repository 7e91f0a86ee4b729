"""Every public name of every package is importable and documented by its author."""

import importlib
import re
import typing
from collections import namedtuple
from dataclasses import dataclass

import pytest

PACKAGES = [
    "jaxrl.core",
    "jaxrl.envs",
    "jaxrl.nets",
    "jaxrl.tabular",
    "jaxrl.agents",
    "jaxrl.llm",
    "jaxrl.run",
    "jaxrl.buffers",
    "jaxrl.agents.on_policy",
    "jaxrl.agents.off_policy",
    "jaxrl.agents.ppo",
    "jaxrl.agents.a2c",
    "jaxrl.agents.reinforce",
    "jaxrl.agents.trpo",
    "jaxrl.agents.dqn",
    "jaxrl.agents.ddpg",
    "jaxrl.agents.td3",
    "jaxrl.agents.sac",
]


def own_docstring(obj) -> str | None:
    """The docstring its author wrote, or None where there is none or Python made it up.

    Python writes ``Name(field, ...)`` for NamedTuples and ``Name(field: type = …)``
    for dataclasses (flax.struct too); a typing alias or an instance (a partial, a
    registry entry) answers with its class's docstring.
    """
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if not doc:
        return None
    if typing.get_origin(obj) is not None:  # Callable[...], dict[...] aliases
        return None
    if isinstance(obj, type):
        name = re.escape(obj.__name__)
        if re.match(rf"{name}\(.*\)$", doc, re.S):
            return None
    elif doc == (type(obj).__doc__ or "").strip():
        return None
    return doc


def test_own_docstring_rejects_generated_ones():
    @dataclass
    class Made:
        x: int = 1

    class Written(typing.NamedTuple):
        """Said by hand."""

        x: int

    assert own_docstring(namedtuple("Pair", "a b")) is None
    assert own_docstring(typing.NamedTuple("Pair", [("a", int)])) is None
    assert own_docstring(Made) is None
    assert own_docstring(typing.Callable[[int], int]) is None
    assert own_docstring(Written) == "Said by hand."
    assert own_docstring(own_docstring).startswith("The docstring")


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_have_docstrings(package):
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} has no __all__"
    assert len(names) == len(set(names)), f"{package}.__all__ repeats a name"
    missing = []
    for name in names:
        obj = getattr(module, name)  # AttributeError if __all__ names something absent
        if (callable(obj) or isinstance(obj, type)) and own_docstring(obj) is None:
            missing.append(name)
    assert not missing, f"{package}: undocumented public names {missing}"


def test_core_contract_names():
    core = importlib.import_module("jaxrl.core")
    for name in [
        "discounted_returns",
        "n_step_returns",
        "lambda_returns",
        "gae",
        "vtrace",
        "q_learning",
        "double_q_learning",
        "sarsa",
        "expected_sarsa",
        "ppo_clip_loss",
        "kl_estimate",
        "dpo_loss",
        "group_advantages",
    ]:
        assert name in core.__all__, name

"""Every public name of every package is importable and documented."""

import importlib

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
]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_have_docstrings(package):
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} has no __all__"
    assert len(names) == len(set(names)), f"{package}.__all__ repeats a name"
    missing = []
    for name in names:
        obj = getattr(module, name)  # AttributeError if __all__ names something absent
        if callable(obj) or isinstance(obj, type):
            if not (getattr(obj, "__doc__", None) or "").strip():
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

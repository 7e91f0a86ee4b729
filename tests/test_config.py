"""Config dataclasses: static vs traced fields, validation, parsing of --set values."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from jaxrl._config import (
    ConfigError,
    config,
    config_from_overrides,
    config_to_dict,
    positive,
    positive_int,
    probability,
    require,
    static,
    static_fields,
    traced_fields,
)


@config
class Example:
    num_envs: int = static(4)
    hidden: tuple[int, ...] = static((8, 8))
    normalize: bool = static(False)
    name: str = static("x")
    learning_rate: float = 1e-3
    gamma: float = 0.99

    def validate(self):
        require(self, "num_envs", positive_int)
        require(self, "learning_rate", positive)
        require(self, "gamma", probability)


def test_static_fields_are_metadata_and_the_rest_are_leaves():
    c = Example()
    assert static_fields(c) == ["num_envs", "hidden", "normalize", "name"]
    assert traced_fields(c) == ["learning_rate", "gamma"]
    assert jax.tree.leaves(c) == [1e-3, 0.99]
    doubled = jax.vmap(lambda c: c.learning_rate * c.num_envs)(
        Example(learning_rate=jnp.array([1.0, 2.0]), gamma=jnp.array([0.9, 0.9]))
    )
    assert doubled.tolist() == [4.0, 8.0]


def test_validation_names_field_value_and_allowed():
    with pytest.raises(
        ConfigError, match=r"Example.learning_rate = -0.1 is not allowed: use a number > 0"
    ):
        Example(learning_rate=-0.1)
    with pytest.raises(ConfigError, match=r"Example.gamma = 1.5 .* in \[0, 1\]"):
        Example(gamma=1.5)
    with pytest.raises(ConfigError, match=r"num_envs = 0 .* integer > 0"):
        Example(num_envs=0)
    with pytest.raises(ConfigError, match=r"nan"):
        Example(learning_rate=float("nan"))


def test_overrides_parse_each_type():
    c = config_from_overrides(
        Example,
        {
            "num_envs": "8",
            "hidden": "32,32",
            "normalize": "true",
            "learning_rate": "3e-4",
            "name": "y",
        },
    )
    assert (c.num_envs, c.hidden, c.normalize, c.learning_rate, c.name) == (
        8,
        (32, 32),
        True,
        3e-4,
        "y",
    )
    assert config_to_dict(c)["hidden"] == [32, 32]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_env": "8"}, r"unknown field 'num_env'.*did you mean 'num_envs'"),
        ({"num_envs": "2.5"}, r"cannot read '2.5' as int"),
        ({"learning_rate": "fast"}, r"cannot read 'fast' as float"),
        ({"normalize": "maybe"}, r"cannot read 'maybe' as bool"),
        ({"gamma": "2"}, r"gamma = 2.0 is not allowed"),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_from_overrides(Example, overrides)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Example().gamma = 0.5


def test_a_config_extending_another_validates_once_with_both_checks():
    calls = []

    @config
    class Base:
        n: int = static(2, "a size")
        rate: float = 0.1

        def validate(self):
            calls.append("base")
            require(self, "n", positive_int)

    @config
    class Child(Base):
        n: int = static(3, "a size")  # a new default, same place
        coef: float = 0.5

        def validate(self):
            calls.append("child")
            require(self, "coef", positive)
            super().validate()

    child = Child()
    assert calls == ["child", "base"]  # once each, not once per @config layer
    assert [f.name for f in dataclasses.fields(child)] == ["n", "rate", "coef"]
    assert child.n == 3 and jax.tree.leaves(child) == [0.1, 0.5]
    with pytest.raises(ValueError, match=r"Child.n = 0"):
        Child(n=0)
    with pytest.raises(ValueError, match=r"Child.coef = -1"):
        Child(coef=-1)

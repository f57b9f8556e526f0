import pytest

from ferristor.errors import ConfigError
from ferristor.rule.config import RuleConfig


@pytest.mark.parametrize("field,value", [("k", 0), ("k", -3), ("k", 2.5), ("p", 0.0), ("p", 1.5), ("p", -0.1),
                                         ("lr", 0.0), ("lr", -1.0), ("rounding", "up"), ("hidden_lsb", 0),
                                         ("init_scale", 0), ("init_scale", 2.0), ("lr", float("nan"))])
def test_rejected_values_name_field_value_and_allowed(field, value):
    with pytest.raises(ConfigError) as e:
        RuleConfig(**{field: value})
    msg = str(e.value)
    assert field in msg and repr(value) in msg and "expected" in msg


def test_defaults_are_the_papers():
    c = RuleConfig()
    assert (c.lr, c.p, c.k, c.rounding) == (0.1, 0.2, 100, "stochastic")

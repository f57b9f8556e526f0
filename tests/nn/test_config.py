"""HybridConfig: what a layer is made of is checked when the config is made, named."""
import pytest

from ferristor import HybridConfig
from ferristor.errors import ConfigError
from ferristor.rule import compose
from ferristor.rule.schemes import SchemeConfig


def test_a_composed_rule_as_scheme_is_refused_by_name():
    """HybridConfig(scheme=<a compose.Rule>) had been accepted, then the layer died of
    AttributeError: 'Rule' object has no attribute 'is_hybrid'."""
    for scheme in (compose.hybrid_rule(), compose.memristor_sgd()):
        with pytest.raises(ConfigError) as e:
            HybridConfig(mode="hm-var", scheme=scheme)
        assert e.value.field == "scheme" and e.value.value == "Rule"
        assert "SchemeConfig(rule=...)" in str(e.value) and "for analysis, driven by hand" in str(e.value)
    with pytest.raises(ConfigError, match="scheme='str': expected a SchemeConfig"):
        HybridConfig(scheme="tiki-taka")
    assert HybridConfig(mode="hm-var", scheme=SchemeConfig(rule="tiki-taka")).scheme.rule == "tiki-taka"


def test_a_training_config_refuses_it_too():
    from ferristor.experiments.config import TrainConfig
    with pytest.raises(ConfigError, match="scheme='Rule'"):
        TrainConfig(scheme=compose.tiki_taka())

import pytest


def test_every_config_path_refuses_a_wrong_value_with_a_config_error():
    """Any value a spec file or --set can carry, at any path: a named refusal (or a valid config),
    never another exception (a list for the dataset, a huge ECG window, a number for the sizes had
    each crashed)."""
    import warnings

    from ferristor.errors import FerristorError
    from ferristor.sweeps import configs
    crashes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in configs.config_paths():
            for value in (-1, 0, 1.5, "abc", [], {}, None, True, [1, 2], 1e308, [1, "a"]):
                try:
                    configs.resolve({path: value})
                except FerristorError:
                    pass
                except Exception as e:  # noqa: BLE001 — what the test is for
                    crashes.append(f"{path}={value!r}: {type(e).__name__}: {e}")
    assert crashes == []


def test_the_bit_widths_are_config_paths_and_their_cells_follow():
    """A device researcher could not change the synapse's bits (layout was not a config path):
    --set layout.hidden_bits=8 alone now gives an 8-bit synapse, its cells derived; what models only
    3 analogue bits is refused naming both settings; a 10-bit lsb on fewer bits warns."""
    import warnings

    from ferristor.errors import ConfigError, FerristorWarning
    from ferristor.experiments.train import build_model
    from ferristor.sweeps import configs
    from ferristor.experiments.preflight import _check_lsb
    cfg = configs.resolve({"layout.hidden_bits": 8})  # a saved config reloads without a warning
    assert (cfg.layout.lsb_cells, cfg.layout.max_hidden) == (4, 127)
    with pytest.warns(FerristorWarning, match=r"with rule.hidden_lsb at its 10-bit default.*rule.hidden_lsb=0.0078125") as w:
        _check_lsb(cfg)  # at the start of training (preflight.check_data)
    assert (w[0].message.field, w[0].message.value) == ("layout.hidden_bits", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = configs.resolve({"layout.hidden_bits": 8, "layout.analogue_magnitude_bits": 2, "rule.hidden_lsb": 2 ** -7,
                               "network.sizes": [6, 5, 3]})
        _check_lsb(cfg)
    model = build_model(cfg)
    assert model.layers[0].config.layout.max_level == 3 and model.config.level_step == 2 ** -7 * 2 ** 5
    with pytest.raises(ConfigError, match=r"transfer.model='circuit' is not allowed with layout.analogue_magnitude_bits=2"):
        configs.resolve({"layout.analogue_magnitude_bits": 2, "transfer.model": "circuit"})
    with pytest.raises(ConfigError, match=r"transfer.level_means='measured' is not allowed with layout.analogue_magnitude_bits=2"):
        configs.resolve({"layout.analogue_magnitude_bits": 2, "transfer.level_means": "measured"})
    assert configs.resolve({}).layout == configs.resolve({"layout.hidden_bits": 10}).layout


def test_the_circuit_transfer_refuses_cells_it_does_not_model():
    """The chain's capacitors are the paper's 4:2:1 MSB cells: other cells had been accepted and the
    chain had run with (4, 2, 1) while the ledger counted the others."""
    from ferristor.errors import ConfigError
    from ferristor.sweeps import configs
    with pytest.raises(ConfigError, match=r"transfer.model='circuit' is not allowed with layout.sign_cells=1 with "
                                          r"layout.msb_cells=\[8, 4, 2\]"):
        configs.resolve({"transfer.model": "circuit", "layout.msb_cells": [8, 4, 2]})
    assert configs.resolve({"layout.msb_cells": [8, 4, 2]}).layout.msb_cells == (8, 4, 2)  # the table model: fine


def test_a_path_default_follows_a_section_that_overrides_its_class_default():
    """Fig6Config pretrains a LeNet for 2 epochs; its PretrainConfig class says MobileNet-V2, 1 epoch:
    the listed default must be what the figure runs, read without building a config."""
    from ferristor.sweeps import configs
    from ferristor.transfer_learning.fig6 import Fig6Config
    from ferristor.transfer_learning.pretrain import PretrainConfig
    assert PretrainConfig().arch != "lenet"
    assert configs.default("pretrain.arch", Fig6Config) == Fig6Config().pretrain.arch == "lenet"
    assert configs.default("pretrain.epochs", Fig6Config) == Fig6Config().pretrain.epochs
    assert configs.default("rule.k") == 100
    assert configs.find_leaf("pretrain", Fig6Config) is None and configs.find_leaf("rule.k") is not None
    assert configs.default("layout.lsb_cells") is None  # derived by the layout, not a fixed 6


def test_an_integral_float_is_taken_for_an_int_field_and_only_that():
    """--set rule.k=1e9 had been refused as "expected an integer" (JSON reads 1e9 as 1000000000.0): an
    integral float is the int it equals, in a tuple of ints too; 1.5 and true stay refused."""
    from ferristor.errors import ConfigError
    from ferristor.sweeps import configs
    k = configs.coerce("rule.k", 1e9)
    assert k == 1_000_000_000 and type(k) is int
    assert configs.resolve({"rule.k": 1e2}).rule.k == 100
    assert configs.resolve({"layout.msb_cells": [4.0, 2.0, 1.0]}).layout.msb_cells == (4, 2, 1)
    assert configs.coerce("ledger.memristor_ops_unselected", 1.0) == 1  # int | None
    for bad in (1.5, True, float("inf")):
        with pytest.raises(ConfigError, match="expected an integer"):
            configs.resolve({"rule.k": bad})
    assert type(configs.coerce("epochs", 10)) is float  # an int for a float field, as before


def test_an_infinity_for_a_float_field_is_refused_as_not_finite():
    """--set transfer.sigma_levels=inf had been refused as "expected a number" (JSON does not read 'inf', so
    it stayed a string): it is the float it names, and the check says it wants a finite number."""
    import math

    from ferristor.errors import ConfigError
    from ferristor.sweeps import configs
    for text in ("inf", "-inf", "Infinity", "nan"):
        value = configs.coerce("transfer.sigma_levels", text)
        assert isinstance(value, float) and not math.isfinite(value)
        with pytest.raises(ConfigError, match=r"sigma_levels=.* is not allowed: expected a finite number"):
            configs.resolve({"transfer.sigma_levels": text})
    assert configs.coerce("transfer.level_means", "inf") == "inf"  # a string field keeps its string
    assert configs.coerce("transfer.sigma_levels", "abc") == "abc"  # and any other word stays refused as not a number

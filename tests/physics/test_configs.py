"""Invalid parameters fail at construction with a ConfigError naming the field."""
import pytest

from ferristor.circuit.array import ArrayConfig, HybridArray
from ferristor.circuit.charge_transfer import ChargeTransferConfig, TransferLineConfig
from ferristor.config_base import describe
from ferristor.errors import ConfigError
from ferristor.physics import fecap, memristor, transistor

BAD = [
    (fecap.FeCAPConfig, {"c_d_ff": -1.0}, "FeCAPConfig.c_d_ff"),
    (fecap.FeCAPConfig, {"c_bl_ff": 0.0}, "FeCAPConfig.c_bl_ff"),
    (fecap.FeCAPConfig, {"pr_sigma_ln": -0.1}, "FeCAPConfig.pr_sigma_ln"),
    (fecap.SwitchingConfig, {"model": "kai"}, "SwitchingConfig.model"),
    (fecap.SenseAmpConfig, {"vref_v": -0.1}, "SenseAmpConfig.vref_v"),
    (fecap.SenseAmpConfig, {"vref_v": 2.0}, "SenseAmpConfig.vref_v"),
    (fecap.FatigueConfig, {"condition": "C"}, "FatigueConfig.condition"),
    (fecap.WakeUpConfig, {"pristine_fraction": 1.5}, "WakeUpConfig.pristine_fraction"),
    (memristor.FormingConfig, {"p_form": 0.0}, "FormingConfig.p_form"),
    (memristor.SwitchingCurveConfig, {"sigma_c2c": -0.01}, "SwitchingCurveConfig.sigma_c2c"),
    (memristor.SwitchingCurveConfig, {"level_icc_ua": (5.0, 3.0)}, "SwitchingCurveConfig.level_icc_ua"),
    (memristor.EnduranceConfig, {"n_close": 0}, "EnduranceConfig.n_close"),
    (memristor.MemristorReadConfig, {"sigma_rel": float("nan")}, "MemristorReadConfig.sigma_rel"),
    (transistor.AccessTransistorConfig, {"k_ua_per_v2": -5.0}, "AccessTransistorConfig.k_ua_per_v2"),
    (TransferLineConfig, {"c_tl_ff": -400.0}, "TransferLineConfig.c_tl_ff"),
    (ChargeTransferConfig, {"reference_means_us": (5.0, 1.0)}, "ChargeTransferConfig.reference_means_us"),
    (ArrayConfig, {"lines": 0}, "ArrayConfig.lines"),
]


@pytest.mark.parametrize("cls,kwargs,field", BAD, ids=[b[2] for b in BAD])
def test_invalid_parameter_is_rejected(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        cls(**kwargs)


def test_too_many_synapses_per_line_rejected():
    with pytest.raises(ConfigError, match="synapses_per_line"):
        HybridArray(ArrayConfig(synapses_per_line=10))


@pytest.mark.parametrize("cls", [fecap.FeCAPConfig, fecap.SwitchingConfig, fecap.WakeUpConfig, fecap.FatigueConfig,
                                 fecap.SenseAmpConfig, memristor.FormingConfig, memristor.SwitchingCurveConfig,
                                 memristor.EnduranceConfig, memristor.MemristorReadConfig,
                                 transistor.AccessTransistorConfig, TransferLineConfig, ArrayConfig])
def test_every_field_states_its_source(cls):
    for row in describe(cls):
        assert row["source"], f"{cls.__name__}.{row['name']} has no source"
        assert "[P]" in row["source"] or "[I]" in row["source"] or "[D]" in row["source"]

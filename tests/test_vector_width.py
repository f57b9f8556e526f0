"""The vector-width choice (ferristor.vector_width): what it asks LLVM for, and how it refuses."""
import pytest

from ferristor import vector_width as V
from ferristor.errors import ConfigError

AVX512 = "+64bit,+avx2,+avx512f,+avx512bw,+fma"
AVX2 = "+64bit,+avx2,-avx512f,+fma"


def test_512_lifts_llvms_256_bit_preference_only_where_the_cpu_has_avx512():
    assert V.features_for(AVX512, "512") == AVX512 + ",-prefer-256-bit"
    assert V.features_for(AVX2, "512") is None  # "-avx512f" is not "+avx512f"
    assert V.features_for(AVX512, "llvm") is None
    assert V.features_for(AVX512, "512", "emeraldrapids") == AVX512 + ",-prefer-256-bit"
    assert V.features_for(AVX512, "512", "cascadelake") is None  # its 512-bit clock drop: LLVM's choice


def test_the_default_is_512_and_an_unknown_value_names_the_variable(monkeypatch):
    monkeypatch.delenv(V.ENV, raising=False)
    assert V.choice() == "512"
    monkeypatch.setenv(V.ENV, "1024")
    with pytest.raises(ConfigError, match="FERRISTOR_VECTOR_WIDTH='1024' is not allowed: expected '512'"):
        V.choice()


def test_configure_leaves_numbas_own_settings_and_a_built_target_alone(monkeypatch):
    from numba.core import config
    monkeypatch.setattr(config, "CPU_FEATURES", "+sse2")
    assert V.configure() is None and config.CPU_FEATURES == "+sse2"
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(config, "CPU_NAME", None)
    from numba import njit
    njit(lambda x: x + 1)(1)  # numba's CPU target is built now
    assert V.configure() is None and config.CPU_FEATURES is None


def test_an_unknown_value_warns_at_import_time_instead_of_failing(monkeypatch):
    from ferristor.errors import FerristorWarning
    monkeypatch.setenv(V.ENV, "wide")
    with pytest.warns(FerristorWarning, match="numba keeps its own vector width"):
        assert V.configure() is None


def test_the_cli_refuses_an_unknown_value_before_any_work(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    monkeypatch.setenv(V.ENV, "wide")
    r = CliRunner().invoke(cli, ["train", "--dataset", "mnist", "--epochs", "0.01", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2
    assert "FERRISTOR_VECTOR_WIDTH='wide' is not allowed" in r.output
    assert not (tmp_path / "run").exists()


def test_runs_record_the_cpu_and_the_width_their_kernels_were_built_for(monkeypatch):
    from numba.core import config

    from ferristor.experiments.results import versions
    monkeypatch.setattr(config, "CPU_FEATURES", AVX512 + ",-prefer-256-bit")
    assert V.in_effect() == "512" and versions()["vector_width"] == "512"
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    assert V.in_effect() == "llvm" and versions()["vector_width"] == "llvm"
    assert versions()["cpu"]  # LLVM's name for this core, e.g. 'emeraldrapids'

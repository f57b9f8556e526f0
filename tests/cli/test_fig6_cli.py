"""``ferristor fig6`` and ``reproduce fig6`` at the command line: options refused or named, before any
work (``run_fig6`` is replaced where nothing should run)."""
import pytest
from click.testing import CliRunner

from ferristor.cli.main import cli


@pytest.fixture
def no_run(monkeypatch):
    import ferristor.cli.fig6 as fig6
    monkeypatch.setattr(fig6, "run_fig6", lambda **_: pytest.fail("fig6 ran"))


@pytest.mark.parametrize("extra, flag", [
    (["--workers", "2"], "--workers"), (["--workers", "1"], "--workers"),
    (["--preset", "stochastic"], "--preset"), (["--preset", "paper"], "--preset"),
    (["--seeds", "0"], "--seeds"), (["--k", "8"], "--k"), (["--rounding", "nearest"], "--rounding"),
    (["--level-means", "measured"], "--level-means"), (["--settings", "mnist-online"], "--settings"),
    (["--device", "cpu"], "--device")])
def test_reproduce_fig6_refuses_the_options_it_would_ignore(no_run, tmp_path, extra, flag):
    """--workers and --preset had been accepted and ignored, while --seeds, --k… were refused."""
    r = CliRunner().invoke(cli, ["reproduce", "fig6", *extra, "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert f"{flag} does not apply to fig6: its options are those of 'ferristor fig6'" in r.output


def test_reproduce_fig6_passes_the_options_it_reads(monkeypatch, tmp_path):
    import ferristor.cli.fig6 as fig6
    calls = []
    monkeypatch.setattr(fig6, "run_fig6", lambda **kw: calls.append(kw))
    r = CliRunner().invoke(cli, ["reproduce", "fig6", "--epoch-scale", "0.5", "--threads", "1", "--fresh",
                                 "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert calls == [dict(out=str(tmp_path / "fig6"), pretrain_epochs=1.0, threads=1, data_dir=None, progress=False,
                          fresh=True)]

"""The skip ledger of tests/conftest.py, run on tiny suites (pytester, in this process): only full_data
tests may skip, and with FERRISTOR_STRICT_SKIPS=1 (.ci/run) any other skip fails the run."""
import tomllib
from pathlib import Path

import pytest
# imported before the inner runs: pytester drops the modules they import, and torch imports once per process
import torch  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
import pytest

@pytest.mark.full_data("mitdb")
def test_needs_mitdb():
    pass

@pytest.mark.full_data("fashion-mnist")
def test_needs_fashion():
    pass

def test_plain():
    pass
'''


@pytest.fixture
def suite(pytester, monkeypatch):
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    # the project's own markers; no Hypothesis plugin: its summary imported hypothesis anew in each run (~3 s)
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider -p no:hypothesispytest\nmarkers =\n"
                     + "".join(f"    {m}\n" for m in markers))
    data = pytester.mkdir("data")
    (data / "fashion-mnist").mkdir()  # present: its test runs; mitdb/ absent: its test skips
    monkeypatch.setenv("FERRISTOR_TEST_DATA", str(data))
    monkeypatch.delenv("FERRISTOR_STRICT_SKIPS", raising=False)
    return pytester


def test_full_data_skips_are_counted_and_allowed(suite, monkeypatch):
    suite.makepyfile(test_suite=SUITE)
    monkeypatch.setenv("FERRISTOR_STRICT_SKIPS", "1")
    r = suite.runpytest()
    assert r.ret == 0
    r.assert_outcomes(passed=2, skipped=1)
    r.stdout.fnmatch_lines(["1 skipped: 1 that need a full dataset* (allowed), 0 that should have run",
                            "  1 x needs the full MIT-BIH * (no mitdb/ in *): set FERRISTOR_TEST_DATA *"])


def test_any_other_skip_fails_a_strict_run(suite, monkeypatch):
    suite.makepyfile(test_suite=SUITE + '''
def test_skips_for_want_of_something():
    pytest.skip("no frobnicator")
''', test_gone="import pytest\npytest.importorskip('no_such_module_here')\n")
    r = suite.runpytest()
    assert r.ret == 0  # not strict: said, not failed
    r.stdout.fnmatch_lines(["3 skipped: 1 that need a full dataset* (allowed), 2 that should have run",
                            "*1 x should have run: no frobnicator", "*test_suite.py::test_skips_for_want_of_something",
                            "FERRISTOR_STRICT_SKIPS=1 (as in .ci/run) fails the run on these."])
    monkeypatch.setenv("FERRISTOR_STRICT_SKIPS", "1")
    r = suite.runpytest()
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    r.stdout.fnmatch_lines(["*should have run: could not import 'no_such_module_here'*",
                            "FERRISTOR_STRICT_SKIPS=1: failing the run, since only full_data tests may skip."])


def test_a_full_data_fixture_needs_the_marker(suite):
    suite.makepyfile(test_suite='''
import pytest

@pytest.fixture
def full_mitdb():
    return None

def test_forgot_the_marker(full_mitdb):
    pass
''')
    r = suite.runpytest()
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*test_forgot_the_marker uses mitdb in full but is not marked @pytest.mark.full_data(...)"])

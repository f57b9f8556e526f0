"""The kernels' numba cache follows every kernel source, not only the file a kernel is in."""
import numba
import pytest

from ferristor import kernel_cache as KC


def test_every_module_a_kernel_reads_is_a_kernel_source():
    sources = set(KC.kernel_sources())
    kernels = {p for p in KC.PACKAGE.rglob("*.py") if "@njit" in p.read_text(encoding="utf-8")}
    assert len(kernels) >= 7 and kernels <= sources
    # what each kernel module imports, followed on: random_cpu freezes random_math's constants, the
    # chunks inline kernels_cpu, a relative import from two levels up, a package's __init__ it runs
    for name in ("rule/random_math.py", "rule/kernels_cpu.py", "rule/random_cpu.py", "errors.py", "rule/__init__.py",
                 "vector_width.py"):
        assert KC.PACKAGE / name in sources
    for path in sources:
        assert set(KC.package_imports(path)) <= sources


def test_modules_no_kernel_reads_keep_the_compiled_kernels():
    """Editing the CLI, the layers or the experiments must not recompile every kernel (minutes)."""
    sources = set(KC.kernel_sources())
    for name in ("cli/__init__.py", "nn/hybrid.py", "experiments/fit.py", "experiments/fast_step.py", "warmup.py"):
        assert KC.PACKAGE / name not in sources


def test_package_imports_resolves_every_form(tmp_path, monkeypatch):
    pkg = tmp_path / "ferristor"
    for name in ("a.py", "b.py", "sub/__init__.py", "sub/c.py", "sub/d.py", "e.py"):
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text("")
    (pkg / "sub/c.py").write_text("from ..a import x\nfrom . import d\nimport ferristor.b\nimport numpy\n"
                                  "def f():\n    from ferristor.e import y\n")
    monkeypatch.setattr(KC, "PACKAGE", pkg)
    found = {p.relative_to(pkg).as_posix() for p in KC.package_imports(pkg / "sub/c.py")}
    assert found == {"a.py", "sub/__init__.py", "sub/d.py", "b.py", "e.py"}


def test_ferristor_kernels_carry_the_digest_and_other_functions_do_not():
    from ferristor.rule import kernels_cpu
    from ferristor.nn import train_cpu
    for fn in (kernels_cpu._hybrid_rank1, train_cpu.mlp_train_chunk):
        stamp = fn._cache._impl.locator.get_source_stamp()
        assert stamp[1] == KC.kernel_digest()

    def outside(x):
        return x + 1
    outside.__module__ = "someone_else"
    loc_classes = numba.core.caching.CacheImpl._locator_classes
    ours = [c for c in loc_classes if c.__name__.startswith("Ferristor")]
    assert ours and all(c.from_function(outside, __file__) is None for c in ours)


def test_the_digest_changes_with_any_kernel_source(tmp_path, monkeypatch):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    monkeypatch.setattr(KC, "PACKAGE", tmp_path)
    monkeypatch.setattr(KC, "kernel_sources", lambda: [a, b])
    KC.kernel_digest.cache_clear()
    try:
        before = KC.kernel_digest()
        b.write_text("y = 3\n")
        KC.kernel_digest.cache_clear()
        assert KC.kernel_digest() != before
    finally:
        KC.kernel_digest.cache_clear()


def test_a_serial_twin_is_the_same_kernel_without_parallel_and_with_its_own_cache_name():
    import numpy as np

    from ferristor.rule import kernels_cpu as K
    from ferristor.nn import train_cpu as T
    twin = T._hybrid_rank1_serial
    assert "parallel" not in twin.targetoptions and K._hybrid_rank1.targetoptions.get("parallel")
    assert twin.py_func.__qualname__ == "_hybrid_rank1_serial" and twin.py_func.__code__ is K._hybrid_rank1.py_func.__code__
    rng = np.random.default_rng(0)
    delta, x = rng.standard_normal((2, 20)).astype(np.float32), rng.standard_normal((2, 9)).astype(np.float32)
    consts = K.update_constants(fp=False, sampler="dense", lr=0.5, lsb=2 ** -9, p=0.3, max_hidden=511)
    outs = []
    for kernel in (K._hybrid_rank1, twin):
        h, pend = np.zeros((2, 9, 20), np.float32), np.zeros((2, 9, 20), np.uint8)
        kernel(h, pend, delta, x, np.array([[1, 2], [3, 4]], np.uint32), np.int64(7), *consts)
        outs.append((h, pend))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1]) and outs[0][1].any()


def test_every_twin_keeps_its_kernels_disk_cache():
    """``cache`` is the dispatcher's, not a target option: the twins had been built without it, so the
    CLI's dense chunk and every serial kernel compiled anew in each process (~10 s per train)."""
    from ferristor.nn import train_cpu as T
    twins = [T._hybrid_rank1_serial, T._fp_rank1_serial, T._hybrid_rank1_steps_serial, T.mlp_train_chunk_dense]
    assert KC.is_cached(T.mlp_train_chunk) and all(KC.is_cached(t) for t in twins)
    index = T.mlp_train_chunk_dense._cache._cache_file._index_path
    assert "mlp_train_chunk_dense" in str(index)  # its own entries, not the sparse chunk's


_FLAG = True


def _toy(a):
    if _FLAG and a.shape[0] > 0:
        return _toy_heavy(a)
    return a.sum()


def test_a_constant_twin_never_compiles_what_its_false_flag_leaves_out():
    """``constant_twin`` (``train_cpu.mlp_train_chunk_dense``): the flag's branch is dropped before typing."""
    import numpy as np
    from numba import njit
    global _toy_heavy
    _toy_heavy = njit(lambda a: np.sin(a).sum() + 1.0)
    kernel = njit(_toy)
    twin = KC.constant_twin(kernel, "_off", _FLAG=False)
    a = np.ones(3)
    assert twin(a) == 3.0 and len(_toy_heavy.signatures) == 0  # typed and run without the heavy branch
    assert twin.py_func.__qualname__ == "_toy_off" and twin.py_func.__code__ is _toy.__code__
    assert kernel(a) == np.sin(a).sum() + 1.0 and len(_toy_heavy.signatures) == 1
    from ferristor.nn import train_cpu as T
    assert T.mlp_train_chunk_dense.py_func.__globals__["_WITH_SPARSE"] is False and T._WITH_SPARSE is True


WIDTH_WARNING = ("FERRISTOR_VECTOR_WIDTH='256': not allowed (expected '512' (512-bit vectors where the CPU has "
                 "AVX-512) or 'llvm' (LLVM's own choice)); numba keeps its own vector width")


def test_a_bad_vector_width_is_one_cli_line_at_import_and_a_warning_for_python(monkeypatch, capsys):
    """``register`` runs at import, before the CLI's warning handler: under the CLI the warning is said
    as the CLI says warnings, not printed by Python with kernel_cache.py's path and source line."""
    import sys
    import warnings

    from ferristor.errors import FerristorWarning
    monkeypatch.setenv("FERRISTOR_VECTOR_WIDTH", "256")
    monkeypatch.delitem(sys.modules, "ferristor.cli.main", raising=False)
    with pytest.warns(FerristorWarning) as caught:  # Python users: an ordinary warning, theirs to filter
        KC._configure_width()
    assert [str(w.message) for w in caught] == [WIDTH_WARNING]
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "ferristor.cli.main", sys.modules[__name__])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KC._configure_width()
    assert caught == [] and capsys.readouterr().err == f"warning: {WIDTH_WARNING}\n"


@pytest.mark.slow  # a fresh interpreter (~4 s); the fast tier's in-process twin is the test above
def test_the_cli_says_a_bad_vector_width_in_one_clean_line():
    import os
    import subprocess
    import sys
    env = {**os.environ, "FERRISTOR_VECTOR_WIDTH": "256", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", "from ferristor.cli.main import main; main()", "params"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "FeCAPConfig" in r.stdout
    assert r.stderr == f"warning: {WIDTH_WARNING}\n"  # no path, no source line

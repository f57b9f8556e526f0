"""numba's on-disk cache of ferristor's kernels, invalidated when any kernel source changes.

numba checks a cached function against its own file only. A kernel inlines functions and freezes
constants from other files (``train_cpu``'s chunk inlines ``kernels_cpu``, which inlines
``random_cpu`` and reads ``random_math``), so after an edit or a ``git pull`` of those files alone
an editable install would go on running the old machine code — a silent wrong result as soon as
the change is one of meaning. Here every ferristor kernel's cache stamp also carries a digest of
all kernel sources: any change recompiles every kernel once. Other packages' numba caches are
untouched (the locators below decline functions outside ferristor).

Every module that defines kernels calls :func:`register` before its first ``@njit``.
"""
from __future__ import annotations

import ast
import hashlib
import sys
import warnings
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# modules that shape the machine code without defining kernels: the vector width numba builds for
CODEGEN_MODULES = ("vector_width.py",)


def kernel_sources() -> list[Path]:
    """The files whose change must recompile the kernels: every module that defines one (names
    ``njit``), every package module those import, transitively (a kernel inlines the functions and
    freezes the constants it reads from them), and ``CODEGEN_MODULES``. Editing any other module — the
    CLI, the layers, the experiments — keeps the compiled kernels (``tests/test_kernel_cache.py``)."""
    todo = [p for p in PACKAGE.rglob("*.py") if "njit" in p.read_text(encoding="utf-8")]
    todo += [PACKAGE / m for m in CODEGEN_MODULES]
    found: set[Path] = set()
    while todo:
        path = todo.pop()
        if path not in found:
            found.add(path)
            todo.extend(package_imports(path))
    return sorted(found)


def package_imports(path: Path):
    """The files of this package that ``path`` imports anywhere in it (relative or ``ferristor.…``;
    a package's ``__init__.py`` too, which the import runs)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = base.joinpath(*(node.module.split(".") if node.module else []))
            elif node.module and node.module.split(".")[0] == PACKAGE.name:
                target = PACKAGE.joinpath(*node.module.split(".")[1:])
            else:
                continue
            yield from _module_files(target)
            for alias in node.names:  # ``from . import random_math``
                yield from _module_files(target / alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE.name:
                    yield from _module_files(PACKAGE.joinpath(*alias.name.split(".")[1:]))


def _module_files(target: Path):
    for path in (target.with_suffix(".py"), target / "__init__.py"):
        if path.exists():
            yield path


@lru_cache(maxsize=None)
def kernel_digest() -> bytes:
    h = hashlib.sha256()
    for path in kernel_sources():
        h.update(path.relative_to(PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.digest()


class _KernelStamp:
    """Mixin for numba's source-file locators: only ferristor's functions; stamp + kernel digest."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if not getattr(py_func, "__module__", "").startswith("ferristor."):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return super().get_source_stamp(), kernel_digest()


_registered = False


def register() -> None:
    """Put ferristor's locators in front of numba's (idempotent). Uses numba's locator list
    (``CacheImpl._locator_classes``); where a numba version lacks it, caching works as numba's own."""
    global _registered
    if _registered:
        return
    _configure_width()  # before numba builds its CPU target: the vector width of every kernel (vector_width)
    from numba.core import caching as C
    impl = getattr(C, "CacheImpl", None) or getattr(C, "_CacheImpl", None)
    if impl is None or not hasattr(impl, "_locator_classes"):
        _registered = True
        return
    ours = []
    for name in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator"):
        base = getattr(C, name, None) or getattr(C, "_" + name, None)
        if base is not None:
            ours.append(type("Ferristor" + name, (_KernelStamp, base), {}))
    impl._locator_classes = ours + list(impl._locator_classes)
    _registered = True


def _configure_width() -> None:
    """``vector_width.configure``, whose warning about a bad ``FERRISTOR_VECTOR_WIDTH`` comes at import.
    Under the command line (``ferristor.cli.main`` loading) that is before its warning handler is
    installed, so Python would print the warning with this file's path and source line: there it is
    said as the CLI says warnings instead, one ``warning: …`` line on stderr. A Python user importing
    ferristor gets an ordinary warning, which their filters control."""
    from .vector_width import ENV, configure
    if "ferristor.cli.main" not in sys.modules:
        configure()
        return
    with warnings.catch_warnings():  # restores showwarning afterwards
        default = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if getattr(message, "field", None) != ENV:  # numba's own, say: as Python would
                return default(message, category, filename, lineno, file, line)
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))  # one line
            print(f"warning: {text}", file=sys.stderr)
        warnings.showwarning = show
        configure()


def serial_twin(kernel):
    """The same kernel compiled without ``parallel`` (its ``prange`` loops run in order): for callers
    that are themselves one task of a parallel loop, where a nested parallel region would only cost
    a launch. Same code, so the same bits. Its own qualified name gives it its own cache entries
    (numba keys a cache by file and name, not by compile options)."""
    return _twin(kernel, "_serial", {}, drop=("parallel",))


def constant_twin(kernel, suffix: str, **constants):
    """The same kernel compiled with some of its module's constants replaced (``constants``): numba
    freezes a global's value when it compiles, and drops a branch whose condition is a frozen
    False before typing it, so a twin built with a feature flag off never compiles what that
    branch calls (a first run's compile time). Own qualified name, own cache entries."""
    return _twin(kernel, suffix, constants, drop=())


def _twin(kernel, suffix: str, constants: dict, drop: tuple):
    import types

    from numba import njit
    f = getattr(kernel, "py_func", None)
    if f is None:  # NUMBA_DISABLE_JIT: the kernel is the plain Python function
        if not constants:
            return kernel
        f, options = kernel, None
    else:
        options = {k: v for k, v in kernel.targetoptions.items() if k not in drop + ("nopython",)}
    glob = dict(f.__globals__, **constants) if constants else f.__globals__
    twin = types.FunctionType(f.__code__, glob, f.__name__ + suffix, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + suffix
    twin.__module__ = f.__module__
    twin.__doc__ = f.__doc__
    if options is None:
        return twin
    # ``cache`` is the dispatcher's, not a target option: without it here a twin (the CLI's dense
    # chunk, every serial kernel) was compiled anew in every process, ~10 s per ``ferristor train``
    return njit(cache=is_cached(kernel), **options)(twin)


def is_cached(kernel) -> bool:
    """Whether numba keeps ``kernel``'s machine code on disk (``@njit(cache=True)``)."""
    from numba.core.caching import NullCache
    cache = getattr(kernel, "_cache", None)
    return cache is not None and not isinstance(cache, NullCache)

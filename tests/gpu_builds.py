"""Build the GPU engine's Triton kernels for NVIDIA GPUs on a machine without one.

The kernels' tests run in Triton's interpreter on a CPU, which accepts code the compiler refuses
and says nothing of registers. Here every launch the engine makes is recorded under the
interpreter (the kernel, its argument types, its compile-time constants and options; the launch
itself is skipped), then each is compiled ahead of time — Triton's own compiler and the ptxas it
ships, in a process without the interpreter — for a given architecture, and its resource use is
read back from the cubin (``cuobjdump -res-usage``): registers, and local memory, where spilled
registers would go.

    python tests/gpu_builds.py SPECS.json ARCH[,ARCH…]   → one JSON line per arch and spec: arch, name, ok,
                                                            error, regs, local
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

_POINTEE = {"float32": "fp32", "uint8": "u8", "int64": "i64", "int32": "i32"}


def _arg_type(value) -> str:
    import torch
    if isinstance(value, torch.Tensor):
        return "*" + _POINTEE[str(value.dtype).removeprefix("torch.")]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -2 ** 31 <= value < 2 ** 31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for a {type(value).__name__} argument")


@contextmanager
def recorded_launches():
    """Within the block, Triton launches (interpreter only) are recorded, not run; yields the list of
    distinct launch specs: {module, name, signature, constexprs, options}."""
    from triton.runtime.interpreter import InterpretedFunction
    specs: dict[str, dict] = {}
    original = InterpretedFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        names = self.arg_names
        options = {k: kwargs.pop(k) for k in list(kwargs) if k not in names}
        signature = {n: _arg_type(v) for n, v in zip(names, args)}
        signature.update({n: "constexpr" for n in kwargs})
        spec = {"module": self.fn.__module__, "name": self.fn.__name__,
                "signature": {n: signature[n] for n in names}, "constexprs": kwargs, "options": options}
        specs.setdefault(json.dumps(spec, sort_keys=True), spec)

    InterpretedFunction.run = record
    out: list[dict] = []
    try:
        yield out
    finally:
        InterpretedFunction.run = original
        out.extend(specs.values())


def build_all(specs: list[dict], archs: tuple[int, ...]) -> dict[int, list[dict]]:
    """Compile every spec for each sm_``arch`` in one child process without the interpreter (starting it,
    importing torch and Triton, is most of the time): {arch: one result per spec, in order}."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(specs, f)
    try:
        done = subprocess.run([sys.executable, __file__, f.name, ",".join(map(str, archs))], env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"the build process failed:\n{done.stderr[-4000:]}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {arch: [r for r in results if r["arch"] == arch] for arch in archs}


def _resources(cubin: bytes) -> dict:
    import triton
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", text)
    if found is None:
        raise RuntimeError(f"no resource line in cuobjdump's output:\n{text}")
    regs, stack, shared, local = map(int, found.groups())
    return {"regs": regs, "stack": stack, "shared": shared, "local": local}


def _build(spec: dict, arch: int) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    fn = getattr(importlib.import_module(spec["module"]), spec["name"])
    names = fn.arg_names
    constexprs = {(names.index(k),): v for k, v in spec["constexprs"].items()}
    result = {"arch": arch, "name": spec["name"], "constexprs": spec["constexprs"], "options": spec["options"]}
    try:
        kernel = triton.compile(ASTSource(fn=fn, signature=spec["signature"], constexprs=constexprs),
                                target=GPUTarget("cuda", arch, 32), options=spec["options"])
    except Exception as e:  # the compiler's message is the result
        return {**result, "ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
    return {**result, "ok": True, "error": "", "warps": kernel.metadata.num_warps, **_resources(kernel.asm["cubin"])}


if __name__ == "__main__":
    for a in map(int, sys.argv[2].split(",")):
        for s in json.loads(Path(sys.argv[1]).read_text()):
            print(json.dumps(_build(s, a)), flush=True)

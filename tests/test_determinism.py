"""The same seed gives the same bits on any x86 CPU: the kernels are compiled for a generic x86-64
target (SSE2, no AVX, no FMA) in a fresh process and must train exactly as the host build does."""
import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import hashlib, os, numpy as np, torch
    torch.set_num_threads(1)
    from ferristor.data.registry import Dataset
    from ferristor.experiments.config import task_config
    from ferristor.experiments.train import build_model
    from ferristor.experiments.fit import run_fit
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 20, generator=g) * 2 - 1
    y = (x[:, :4].sum(1) > 0).long() + 2 * (x[:, 4:8].sum(1) > 0).long()
    data = Dataset("toy", x[:240], y[:240], x[240:], y[240:], 4)
    h = hashlib.sha256()
    settings = (("hm-var", "layer"), ("fp", "layer"), ("hm", "batch"))
    n = os.environ.get("DETERMINISM_SETTINGS")  # the first n pairs only (a subprocess's choice)
    for mode, norm in settings[:int(n) if n else None]:
        cfg = task_config("mnist", mode, sizes=(20, 16, 8, 4), norm=norm, epochs=2, seeds=[3, 4], k=7,
                          batch=1 if norm == "layer" else 4, eval_every=1)
        model = build_model(cfg)
        from ferristor.experiments.train import build_optimizer
        run_fit(model, data, epochs=2, batch=cfg.batch, optimizer=build_optimizer(cfg, model), progress=False,
                warn_k=False)
        for k, v in model.state_dict().items():
            h.update(k.encode()); h.update(v.contiguous().numpy().tobytes())
    print(h.hexdigest())
    from numba.core import config
    print("features:", config.CPU_FEATURES)
""")


def _run(env_extra: dict, settings: int | None = None) -> tuple[str, str]:
    """(state digest, numba's target features) of SCRIPT in a fresh process; the target is what
    ``env_extra`` says, whatever this process's environment held."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CPU", "FERRISTOR_VECTOR"))}
    env.update(env_extra)
    if settings is not None:
        env["DETERMINISM_SETTINGS"] = str(settings)  # the first ``settings`` of SCRIPT's (mode, norm) pairs
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    *_, digest, features = r.stdout.strip().splitlines()
    return digest, features.removeprefix("features: ")


@pytest.mark.slow
def test_a_generic_x86_build_trains_bit_for_bit_like_the_host_build(tmp_path, capsys):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SCRIPT, "determinism", "exec"), {})  # the host build, with its cached kernels
    host = out.getvalue().strip().splitlines()[-2]
    # a fresh cache, so nothing compiled for this CPU is reused
    generic, _ = _run({"NUMBA_CACHE_DIR": str(tmp_path / "generic"), "NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": ""})
    assert host == generic
    assert len(host) == len(hashlib.sha256().hexdigest())


@pytest.mark.slow
def test_512_bit_vectors_train_bit_for_bit_like_llvms_own_width():
    """ferristor lets LLVM use 512-bit vectors on AVX-512 CPUs (vector_width); LLVM's own tuning
    keeps 256 on Intel's. Both builds, each in a fresh process, give the same bits. They share the
    kernel cache: numba keys its entries by the target's features, so neither can load the other's."""
    from llvmlite import binding as ll
    # hm-var alone: the update, the passes, the noisy transfer (the kernels the width changes most);
    # every setting's generic-x86 twin is the test above
    wide, wide_features = _run({"FERRISTOR_VECTOR_WIDTH": "512"}, settings=1)
    own, own_features = _run({"FERRISTOR_VECTOR_WIDTH": "llvm"}, settings=1)
    assert wide == own
    assert own_features == "None"  # numba's own choice
    from ferristor.vector_width import features_for
    expected = features_for(ll.get_host_cpu_features().flatten(), "512", ll.get_host_cpu_name())
    assert wide_features == str(expected)  # 512-bit where the CPU has AVX-512 (else numba's own: None)

"""The output folder: checked before any work, one run at a time, checkpoints read with clear errors."""
import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ferristor.data.registry import Dataset
from ferristor.errors import ConfigError, ConfigMismatchError, DataError
from ferristor.experiments import run_folder
from ferristor.experiments.config import task_config
from ferristor.experiments.run_folder import FolderLock, claim, clean_parts, load_checkpoint, prepare
from ferristor.experiments.train import train


def tiny_data(n=120, features=8, classes=3):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    x = torch.randn(n, features, generator=g) + y[:, None].float()
    return Dataset("tiny", x, y, x[:30], y[:30], classes)


def tiny_cfg(**over):
    kw = dict(sizes=(8, 6, 3), epochs=1, seeds=[0], eval_every=1, k=10)
    kw.update(over)
    return task_config("mnist", "hm", **kw)


def run(out, fresh=False, **over):
    return train(tiny_cfg(**over), out, progress=False, dataset=tiny_data(), fresh=fresh)


# --- --out is checked before any work --------------------------------------------------------------

def test_out_under_a_file_or_being_a_file_is_refused_before_loading_data(tmp_path, monkeypatch):
    import ferristor.experiments.train as train_module
    monkeypatch.setattr(train_module, "load_dataset", lambda *a, **kw: pytest.fail("data loaded before --out was checked"))
    (tmp_path / "file").write_text("x")
    cfg = tiny_cfg()
    with pytest.raises(ConfigError, match="a part of the path is a file") as e:
        train(cfg, tmp_path / "file" / "run", progress=False)
    assert e.value.field == "out_dir"
    with pytest.raises(ConfigError, match="is a file, not a folder") as e:
        train(cfg, tmp_path / "file", progress=False)
    assert "not a valid path" not in str(e.value)  # the check's own error, not re-worded as a bad path
    with pytest.raises(ConfigError, match="an empty path"):
        prepare("")


@pytest.mark.parametrize("code, words", [(errno.EACCES, "permission denied"), (errno.EROFS, "the file system is read-only"),
                                         (errno.ENOSPC, "the file system is full")])
def test_unwritable_out_names_the_reason(tmp_path, monkeypatch, code, words):
    real_open = open

    def failing_open(path, *a, **k):
        if os.path.basename(str(path)).startswith(".ferristor-probe-"):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(ConfigError, match=f"cannot be written \\({words}"):
        prepare(tmp_path / "out")
    assert not [p for p in (tmp_path / "out").iterdir()]  # no probe left behind


def test_mkdir_failures_name_the_reason(tmp_path, monkeypatch):
    from pathlib import Path

    def denied(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))
    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(ConfigError, match=r"cannot be created \(permission denied\)"):
        prepare(tmp_path / "a" / "b")


def test_too_little_free_space_is_refused_with_the_numbers(tmp_path):
    with pytest.raises(ConfigError, match=r"free, but the run needs about .* for its checkpoint"):
        prepare(tmp_path / "out", need_bytes=1 << 62)


# --- one run per folder ------------------------------------------------------------------------------

def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    with claim(out, command="ferristor train --k 5"):
        with pytest.raises(ConfigError, match=r"is in use by another ferristor run \(pid \d+ on .*ferristor train --k 5\)"):
            run(out)
    run(out)  # released at the end of the block: the folder is free again
    assert (out / ".lock").read_text() == ""  # and says nobody holds it


def test_the_lock_of_a_dead_process_does_not_block(tmp_path):
    out = tmp_path / "out"
    holder = textwrap.dedent(f"""
        import os, sys
        from ferristor.experiments.run_folder import FolderLock, prepare
        FolderLock(prepare({str(out)!r})).acquire("holder")
        print("held", flush=True)
        sys.stdin.readline()  # hold until told
        os._exit(9)           # die without releasing anything
    """)
    p = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"pid {p.pid} on .*: holder"):
            FolderLock(out).acquire()
        p.stdin.write("\n")
        p.stdin.flush()
        p.wait(timeout=30)
    finally:
        p.kill()
    assert json.loads((out / ".lock").read_text())["command"] == "holder"  # stale content, but no lock
    FolderLock(out).acquire().release()


def test_orphan_part_files_are_cleaned_and_others_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    orphans = [out / ".checkpoint.pt.ab3d_9xz.part", out / ".results.json.q1w2e3r4.part", out / ".ferristor-probe-999"]
    keep = [out / "notes.part", out / "checkpoint.pt.part", out / ".hidden"]
    for p in orphans + keep:
        p.write_text("x")
    (out / "sub").mkdir()
    (out / "sub" / ".checkpoint.pt.abcdefgh.part").write_text("x")
    with claim(out):
        pass
    assert not any(p.exists() for p in orphans) and all(p.exists() for p in keep)
    assert (out / "sub" / ".checkpoint.pt.abcdefgh.part").exists()  # not a subfolder it was told of
    assert clean_parts(out, ["sub"]) == [out / "sub" / ".checkpoint.pt.abcdefgh.part"]


# --- a run whose configuration differs from the folder's ----------------------------------------------

def test_another_configuration_is_refused_listing_the_differences(tmp_path):
    out = tmp_path / "out"
    first = run(out, k=10)
    with pytest.raises(ConfigMismatchError, match=r"holds a checkpoint of another configuration, differing in "
                                                  r"rule.k \(10 there, 20 now\).*fresh=True") as e:
        run(out, k=20)
    assert e.value.differences == [("rule.k", 10, 20)]
    assert json.loads((out / "results.json").read_text())["config"]["rule"]["k"] == 10  # untouched
    again = run(out, k=10)  # the same configuration resumes (here: finished, nothing to train)
    assert again["final_test_accuracy"] == first["final_test_accuracy"]
    fresh = run(out, fresh=True, k=20)
    assert fresh["config"]["rule"]["k"] == 20
    # results without a checkpoint are protected too
    (out / "checkpoint.pt").unlink()
    with pytest.raises(ConfigMismatchError, match=r"holds the results of another configuration.*epochs \(1 there, 2 now\)"):
        run(out, k=20, epochs=2)


# --- corrupt checkpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(b""), r"not a torch checkpoint \(empty or not a zip file"),
    (lambda p: p.write_bytes(b"garbage"), r"not a torch checkpoint \(empty or not a zip file"),
    (lambda p: p.write_bytes(p.read_bytes()[:300]), r"not a torch checkpoint \(empty or not a zip file"),
    (lambda p: p.write_bytes(bytes(300) + p.read_bytes()[300:]), r"not a torch checkpoint \(empty or not a zip file"),
    (lambda p: p.write_bytes(p.read_bytes()[:-150] + bytes(128) + p.read_bytes()[-22:]), "cannot be read"),  # a zip, damaged
    (lambda p: torch.save([1, 2, 3], p), "holds a list, not a checkpoint dict"),
    (lambda p: torch.save({"config": {}, "model": {}}, p), "lacks 'optimizer', 'step', 'history', 'train_time'"),
    (lambda p: torch.save({**torch.load(p, weights_only=True), "step": "ten"}, p), "'step' is a str"),
    (lambda p: torch.save({**torch.load(p, weights_only=True), "compile_time": "1 s"}, p), "'compile_time' is a str"),
])
def test_a_corrupt_checkpoint_says_which_file_what_and_how_to_start_over(tmp_path, damage, words):
    out = tmp_path / "out"
    run(out)
    damage(out / "checkpoint.pt")
    with pytest.raises(DataError, match=words) as e:
        run(out)
    assert str(out / "checkpoint.pt") in str(e.value) and "--fresh" in str(e.value)
    assert "mmap" not in str(e.value)  # torch's message for a non-zip file under mmap=True was beside the point
    assert run(out, fresh=True)["history"]  # --fresh starts over


def _flip_a_byte(p, where):
    """One bit flipped in the middle of the largest member named ``where`` (a tensor's bytes, or the
    pickle holding the config and history): a zip that still opens and loads."""
    import struct
    import zipfile
    blob = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = max((i for i in z.infolist() if where in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26:info.header_offset + 30])
    blob[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10
    p.write_bytes(bytes(blob))


@pytest.mark.parametrize("member", ["tensor", "config"])
def test_a_checkpoint_with_a_flipped_bit_is_refused_not_resumed(tmp_path, member):
    """torch.load checks no checksum: a flipped bit in a tensor had resumed as a value (a ledger
    counter, a hidden weight) and finished with exit 0, one in the pickle read as another configuration.
    The zip's CRC-32 of each member catches both."""
    out = tmp_path / "out"
    run(out)
    _flip_a_byte(out / "checkpoint.pt", "/data/" if member == "tensor" else "data.pkl")
    torch.load(out / "checkpoint.pt", weights_only=True)  # torch itself loads it
    with pytest.raises(DataError, match=r"its bytes are corrupt \(.* fails its checksum") as e:
        run(out)
    assert str(out / "checkpoint.pt") in str(e.value) and "--fresh" in str(e.value)
    from ferristor.sweeps.worker import load_resume
    state, why = load_resume((out / "checkpoint.pt").read_bytes(), None)  # a sweep's stored checkpoint too
    assert state is None and "fails its checksum" in why


def test_a_checkpoint_saved_without_crcs_loads(tmp_path):
    """torch.save with its CRC-32 option off stores 0 for every member: nothing to check, not corrupt."""
    out = tmp_path / "out"
    run(out)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(state, out / "checkpoint.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == state["step"]


def test_a_checkpoint_whose_state_does_not_fit_the_network(tmp_path):
    out = tmp_path / "out"
    run(out)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["model"] = {k: v[..., :1] if v.dim() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, out / "checkpoint.pt")
    with pytest.raises(DataError, match="its state does not fit this run's network"):
        run(out)


def test_a_checkpoint_with_pickled_objects_is_refused_not_executed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"config": {}, "model": {}, "evil": Exception("x")}, out / "checkpoint.pt")
    with pytest.raises(DataError, match="cannot be read"):
        load_checkpoint(out / "checkpoint.pt")


def test_orphans_of_a_killed_checkpoint_write_are_cleaned_by_the_next_run(tmp_path, monkeypatch):
    import ferristor.experiments.fit as train_module  # the loop that writes checkpoints
    out = tmp_path / "out"
    real = train_module.atomic_write

    def killed(path, *a, **k):  # the write is killed half-way: its .part stays, as after SIGKILL
        import contextlib

        @contextlib.contextmanager
        def cm():
            (path.parent / f".{path.name}.k1ll3d00.part").write_bytes(b"half")
            raise KeyboardInterrupt
            yield
        return cm()
    monkeypatch.setattr(train_module, "atomic_write", killed)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    monkeypatch.setattr(train_module, "atomic_write", real)
    assert (out / ".checkpoint.pt.k1ll3d00.part").exists()
    run(out)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoint.pt", "results.json"]
    assert run_folder.CHECKPOINT == "checkpoint.pt"


def test_continuing_on_another_kind_of_device_warns(tmp_path):
    """Where a run executes is not its identity, so a CPU checkpoint continues on a GPU; but the two agree
    in distribution only, and the result is neither device's run: say so (it had been silent)."""
    import warnings

    from ferristor.errors import FerristorWarning
    out = tmp_path / "out"
    first = run(out)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["config"]["device"] = "cuda:0"  # as if checkpointed on a GPU
    torch.save(ckpt, out / "checkpoint.pt")
    with pytest.warns(FerristorWarning, match=r"continuing on cpu a run checkpointed on cuda:0.*--fresh"):
        assert run(out)["final_test_accuracy"] == first["final_test_accuracy"]
    ckpt["config"]["device"] = "cpu"
    torch.save(ckpt, out / "checkpoint.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FerristorWarning)
        run(out)  # the same kind of device: silent


# --- another command's folder ----------------------------------------------------------------------

@pytest.mark.parametrize("held, says", [
    ("sweep.sqlite", "holds a sweep's results store (sweep.sqlite)"),
    ("trials/", "holds a sweep's trials (the results store of older versions) (trials)"),
    ("fig5cde/sweep.sqlite", "holds a sweep's results store (fig5cde/sweep.sqlite: a ferristor reproduce folder)"),
    ("fig6/fig6.json", "(fig6/fig6.json: a ferristor reproduce folder)"),
])
def test_a_sweep_or_reproduce_folder_is_refused_by_train_and_fit(tmp_path, held, says):
    """train had written its results.json and checkpoint beside a sweep's store (after which the sweep
    refused its own folder); a reproduce folder (OUT/fig5cde/sweep.sqlite) likewise. Both are refused
    before any work, naming --out and what the folder holds; the folder is left as it was."""
    from ferristor.experiments.fit import fit
    from ferristor.nn.mlp import HybridMLP
    path = tmp_path / held
    if held.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a train run")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as e:
        run(tmp_path)
    assert e.value.field == "out_dir" and says in str(e.value) and "give another --out" in str(e.value)
    with pytest.raises(ConfigError, match="not a train run"):
        fit(HybridMLP((8, 6, 3)), tiny_data(), out=tmp_path, progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    # a train run's own folder, and a folder of train runs' folders, are not refused
    run(tmp_path / "run")
    run(tmp_path / "run")
    (tmp_path / "runs" / "a").mkdir(parents=True)
    run(tmp_path / "runs")


def test_train_on_a_sweep_folder_exits_2_in_one_line(tmp_path):
    from click.testing import CliRunner

    from ferristor.cli.main import cli
    (tmp_path / "sweep.sqlite").write_bytes(b"")
    r = CliRunner().invoke(cli, ["train", "--epochs", "0.01", "--no-progress", "--out", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [f"error: --out {tmp_path}: holds a sweep's results store (sweep.sqlite), "
                                             f"not a train run: give another --out (a run's results.json and "
                                             f"checkpoint.pt beside it would mix the two)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.sqlite"]

"""``ferristor fig6``'s folder: unreadable saved files, a changed pretraining, and result files
written whole."""
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from ferristor.cli.main import cli
from ferristor.errors import ConfigMismatchError, DataError
from ferristor.transfer_learning import pretrain as pt
from ferristor.transfer_learning.fig6 import slug



def _run(args):
    return CliRunner().invoke(cli, args)


def test_an_unreadable_pair_file_is_computed_again_with_a_warning(fig6_args):
    args, out, pair = fig6_args
    first = _run(args)
    assert first.exit_code == 0, first.output
    path = out / "pairs" / f"{slug(pair)}.json"
    whole = json.loads(path.read_text())
    table = out / "fig6.txt"
    inode = table.stat().st_ino
    for broken in (path.read_bytes()[:len(path.read_bytes()) // 2], bytes(range(256)) * 8, b"[1, 2]"):
        path.write_bytes(broken)  # truncated, not text, not a pair's results
        r = _run(args)
        assert r.exit_code == 0, r.output
        assert f"warning: {path} is unreadable" in r.stderr and "computed again" in r.stderr
        assert "done before" not in r.output
        again = json.loads(path.read_text())  # replaced by the recomputed pair
        assert again["identity"] == whole["identity"] and again["heads"].keys() == whole["heads"].keys()
    # fig6.txt is replaced whole (written beside it, then renamed), never rewritten in place
    assert table.stat().st_ino != inode and table.read_text(encoding="utf-8").startswith("pair")
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_an_unreadable_pretrain_json_is_named_with_the_way_out(fig6_args, tmp_path, source_images):
    args, out, pair = fig6_args
    assert _run(args).exit_code == 0
    shutil.rmtree(out / "pairs")  # the backbone is needed again
    (backbone,) = (out / "backbones").iterdir()
    (backbone / "pretrain.json").write_text('{"identity": {"epochs": 1.0')
    r = _run(args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: {backbone / 'pretrain.json'} is unreadable (JSONDecodeError")
    assert f"delete {backbone} to pretrain it anew (--fresh keeps pretrained backbones)" in r.stderr
    shutil.rmtree(backbone)  # the advice works
    assert _run(args).exit_code == 0
    # `ferristor pretrain`'s way out is its --fresh, which discards the backbone
    cfg = pt.PretrainConfig(arch="lenet", input_size=12, epochs=0.2, batch=16)
    pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    (tmp_path / "pre" / "pretrain.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(DataError, match=r"pretrain.json is unreadable \(UnicodeDecodeError.*rerun with --fresh"):
        pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    assert pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False, fresh=True).results["identity"]


def test_a_changed_pretraining_names_the_out_given_and_a_way_out_that_works(fig6_args):
    """fig6 had said 'rerun with --fresh', which keeps the backbones, naming an --out never typed."""
    args, out, pair = fig6_args
    assert _run(args).exit_code == 0
    (backbone,) = (out / "backbones").iterdir()
    changed = [a if a != "1" or args[i - 1] != "--pretrain-epochs" else "2" for i, a in enumerate(args)]
    for extra in ([], ["--fresh"]):
        r = _run(changed + extra)
        assert r.exit_code == 2, r.output
        assert r.stderr == (f"error: --out {out} holds a pretrained backbone of another configuration, differing in "
                            f"--pretrain-epochs (1.0 there, 2.0 now); delete {backbone} to pretrain it anew (--fresh "
                            f"keeps pretrained backbones), or choose another --out\n")
    shutil.rmtree(backbone)  # as the message says
    r = _run(changed)
    assert r.exit_code == 0, r.output
    assert json.loads((backbone / "pretrain.json").read_text())["identity"]["epochs"] == 2.0


def test_reproduce_fig6_names_the_out_typed_there(monkeypatch, tmp_path):
    import ferristor.cli.fig6 as fig6
    from ferristor.experiments.run_folder import FIELD

    def refuse(out, **_):
        raise ConfigMismatchError(FIELD, out, "a pretrained backbone", [("pretrain.epochs", 2.0, 1.0)],
                                  f"delete {out}/backbones/x to pretrain it anew, or choose another {{out_dir}}")
    monkeypatch.setattr(fig6, "run_fig6", refuse)
    r = CliRunner().invoke(cli, ["reproduce", "fig6", "--epoch-scale", "0.5", "--out", str(tmp_path), "--no-progress"])
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: --out {tmp_path} holds a pretrained backbone of another configuration")
    assert f"delete {tmp_path / 'fig6'}/backbones/x" in r.stderr


def test_an_unfinished_pretraining_of_other_settings_is_named_too(fig6_args, monkeypatch):
    args, out, pair = fig6_args
    longer = [a if a != "1" or args[i - 1] != "--pretrain-epochs" else "2" for i, a in enumerate(args)]
    calls, real = [], pt.F.cross_entropy

    def stop(*a, **k):  # interrupted in the second epoch: the first epoch's checkpoint stays
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(pt.F, "cross_entropy", stop)
    assert _run(longer).exit_code != 0
    monkeypatch.setattr(pt.F, "cross_entropy", real)
    (backbone,) = (out / "backbones").iterdir()
    assert (backbone / "checkpoint.pt").exists() and not (backbone / "pretrain.json").exists()
    r = _run(args)
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"error: --out {out} holds an unfinished pretraining of another configuration, differing in "
                        f"--pretrain-epochs (2.0 there, 1.0 now); delete {backbone} to pretrain it anew (--fresh "
                        f"keeps pretrained backbones), or choose another --out\n")


def test_an_unusable_checkpoint_in_a_backbone_folder_names_the_folder_not_fresh(fig6_args):
    """A corrupt checkpoint.pt in a backbone folder had said 'rerun with --fresh', which keeps the
    backbones (checkpoint included): the way out named is the backbone folder to delete."""
    args, out, pair = fig6_args
    backbone = out / "backbones" / slug(f"{pair.split('->')[0]}-lenet")
    backbone.mkdir(parents=True)
    (backbone / "checkpoint.pt").write_bytes(b"PK\x03\x04 a write cut short")
    for extra in ([], ["--fresh"]):
        r = _run(args + extra)
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"error: {backbone / 'checkpoint.pt'} is not a usable checkpoint: it is not a "
                                   f"torch checkpoint")
        assert r.stderr.endswith(f"; delete {backbone} to pretrain it anew (--fresh keeps pretrained backbones), "
                                 f"or choose another --out\n")
        assert "rerun with --fresh" not in r.stderr
    shutil.rmtree(backbone)  # the advice works
    assert _run(args).exit_code == 0
    assert (backbone / "backbone.pt").exists()  # the folder named is the one fig6 pretrains in


def test_pretrain_names_an_unusable_checkpoint_with_its_own_way_out(tmp_path, source_images, monkeypatch):
    """``ferristor pretrain``'s --fresh discards the checkpoint: its advice stays; a checkpoint that
    loads but lacks a pretraining's fields is a DataError too, not a KeyError."""
    cfg = pt.PretrainConfig(arch="lenet", input_size=12, epochs=1.0, batch=16)
    folder = tmp_path / "pre"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(DataError, match=r"checkpoint.pt is not a usable checkpoint: .*Delete it, or rerun with --fresh"):
        pt.pretrain(cfg, folder, data=source_images, progress=False)
    calls, real = [], pt.F.cross_entropy

    def stop(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(pt.F, "cross_entropy", stop)
    with pytest.raises(KeyboardInterrupt):
        pt.pretrain(cfg, folder, data=source_images, progress=False, fresh=True, checkpoint_every=1)
    monkeypatch.setattr(pt.F, "cross_entropy", real)
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    del state["rng"]
    torch.save(state, folder / "checkpoint.pt")
    with pytest.raises(DataError, match=r"not a usable checkpoint: its state does not fit this pretraining "
                                        r"\(KeyError: 'rng'\)\. Delete it, or rerun with --fresh"):
        pt.pretrain(cfg, folder, data=source_images, progress=False)
    remedy = "delete {{here}} to pretrain it anew, or choose another {out_dir}"
    with pytest.raises(DataError, match=r"\(KeyError: 'rng'\); delete \{here\} to pretrain it anew, or choose "
                                        r"another --out$"):
        pt.pretrain(cfg, folder, data=source_images, progress=False, remedy=remedy)
    assert pt.pretrain(cfg, folder, data=source_images, progress=False, fresh=True).results["identity"]


def test_plot_and_table_say_what_was_run(fig6_args, monkeypatch):
    """The plot had said '10-fold CV' and 'frozen 4-bit backbone' whatever the run; the table had
    shown '—' for the hm head's transfers and no ledger line for it (only hm-var's were read)."""
    from matplotlib.figure import Figure

    from ferristor.transfer_learning.plot import plot_fig6
    seen, real = [], Figure.savefig

    def spy(self, *a, **k):
        seen.append((self.axes[0].get_ylabel(), self.axes[0].get_title()))
        return real(self, *a, **k)
    monkeypatch.setattr(Figure, "savefig", spy)
    args, out, pair = fig6_args
    r = _run(args + ["--bits", "0"])
    assert r.exit_code == 0, r.output
    assert seen[-1][0] == "test accuracy (%), 3-fold CV"
    assert "frozen float backbone" in seen[-1][1] and "4-bit" not in seen[-1][1]
    results = json.loads((out / "fig6.json").read_text())["pairs"]
    (res,) = results.values()
    res["backbone"]["bits"] = 4
    for head in res["heads"].values():
        head["accuracy"] = head["accuracy"] * 2  # as a 6-fold run
    plot_fig6(results, out / "again.png")
    assert seen[-1][0] == "test accuracy (%), 6-fold CV" and "frozen 4-bit backbone" in seen[-1][1]
    # hm ran without hm-var: its transfers and its ledger are shown as hm-var's are
    transfers = res["heads"]["hm"]["transfers"]
    assert transfers and res["heads"]["hm"]["ledger"]
    table = (out / "fig6.txt").read_text(encoding="utf-8")
    header, row = table.splitlines()[:2]
    assert header.split()[-2:] == ["hm", "transfers"] and row.split()[-1] == f"{sum(transfers) / len(transfers):,.0f}"
    assert f"ledger of the HM head, {pair}: " in table and "ledger of the HM-var head" not in table


def test_a_truncated_backbone_file_is_named_with_the_way_out(fig6_args, tmp_path, source_images):
    """torch's text of a cut zip file, itself cut mid-sentence, had been all the message said."""
    args, out, pair = fig6_args
    assert _run(args).exit_code == 0
    shutil.rmtree(out / "pairs")  # the backbone is needed again
    (backbone,) = (out / "backbones").iterdir()
    whole = (backbone / "backbone.pt").read_bytes()
    (backbone / "backbone.pt").write_bytes(whole[:len(whole) // 2])
    r = _run(args)
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"error: {backbone / 'backbone.pt'} is not a usable backbone (truncated, corrupt or not "
                        f"written by ferristor pretrain); delete {backbone} to pretrain it anew (--fresh keeps "
                        f"pretrained backbones), or choose another --out\n")
    shutil.rmtree(backbone)  # the advice works
    assert _run(args).exit_code == 0
    # `ferristor pretrain`'s way out is its --fresh, which discards the backbone
    cfg = pt.PretrainConfig(arch="lenet", input_size=12, epochs=0.2, batch=16)
    pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    (tmp_path / "pre" / "backbone.pt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(DataError, match=r"backbone.pt is not a usable backbone \(truncated, corrupt or not written by "
                                        r"ferristor pretrain\); rerun with --fresh"):
        pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False)
    assert pt.pretrain(cfg, tmp_path / "pre", data=source_images, progress=False, fresh=True).backbone


def test_a_backbone_pretrained_with_a_test_limit_is_reused_by_fig6(fig6_args):
    """--test-limit only limits the pretraining's evaluation (the weights are those of a pretraining
    without it: the test below), so fig6, which has no --test-limit, reuses such a backbone; it had
    been refused as 'differing in pretrain.test_limit (500 there, 0 now)'. `ferristor pretrain` still
    refuses it, naming that setting alone: its output would be another evaluation than the one asked."""
    args, out, pair = fig6_args
    source = pair.split("->")[0]
    backbone = out / "backbones" / slug(f"{source}-lenet")  # where fig6 looks for it
    pretrain = ["pretrain", "--dataset", source, "--arch", "lenet", "--input-size", "12", "--epochs", "1", "--batch",
                "16", "--out", str(backbone), "--no-progress"]
    r = _run(pretrain + ["--test-limit", "5"])
    assert r.exit_code == 0, r.output
    limited = json.loads((backbone / "pretrain.json").read_text())
    assert limited["identity"]["test_limit"] == 5
    saved = (backbone / "backbone.pt").read_bytes()
    r = _run(args)
    assert r.exit_code == 0, r.output
    assert "(first 5 test images)" in r.output and "another configuration" not in r.output
    assert (backbone / "backbone.pt").read_bytes() == saved  # reused, not pretrained again
    res = json.loads((out / "pairs" / f"{slug(pair)}.json").read_text())
    assert res["backbone"]["source_test_limit"] == 5 and res["backbone"]["checksum"] == limited["backbone_checksum"]
    assert res["identity"]["pretrain"]["test_limit"] == 0  # fig6's own setting, recorded
    again = _run(args)  # the pair is read back: the backbone's evaluation is not part of its identity
    assert again.exit_code == 0 and "done before" in again.output
    r = _run(pretrain)
    assert r.exit_code == 2
    assert r.stderr == (f"error: --out {backbone} holds a pretrained backbone of another configuration, differing in "
                        f"--test-limit (5 there, 0 now); rerun with --fresh to discard it and start over, or choose "
                        f"another --out\n")
    r = _run([a if a != str(backbone) else str(out / "other") for a in pretrain] + ["--train-limit", "40"])
    assert r.exit_code == 0  # a change of the training data is still one (the check is not blind)
    shutil.rmtree(backbone)
    shutil.rmtree(out / "pairs")  # the backbone is needed again
    (out / "other").rename(backbone)
    r = _run(args)
    assert r.exit_code == 2 and "--train-limit (40 there, 0 now)" in r.stderr, r.stderr


def test_a_test_limit_changes_the_evaluation_not_the_weights(source_images):
    cfgs = [pt.PretrainConfig(arch="lenet", input_size=12, epochs=1.5, batch=16, test_limit=n) for n in (0, 7)]
    whole, limited = (pt.pretrain(c, data=source_images, progress=False) for c in cfgs)
    a, b = whole.backbone.state_dict(), limited.backbone.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train_loss"] for h in whole.results["history"]] == [h["train_loss"] for h in limited.results["history"]]
    assert whole.results["history"][0]["test_accuracy"] * len(source_images.x_test) % 1 == 0
    assert limited.results["history"][0]["test_accuracy"] * 7 % 1 == 0  # on 7 images


def test_fractional_pretraining_epochs_say_what_was_trained(fig6_args, tmp_path):
    """--epochs 0.05 had trained one batch ('epoch 0.07') while pretrain.json said only 'epochs 0.05':
    what was trained is recorded ('trained') and said; an epoch that is whole batches says nothing."""
    args, out, pair = fig6_args
    source = pair.split("->")[0]  # 128 training images: 8 batches of 16 an epoch
    base = ["pretrain", "--dataset", source, "--arch", "lenet", "--input-size", "12", "--batch", "16", "--no-progress"]
    r = _run(base + ["--epochs", "0.1", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "--epochs 0.1 is rounded to whole batches: 1 batch of 16 = 0.125 epochs trained (8 batches an epoch)" in r.output
    res = json.loads((tmp_path / "a" / "pretrain.json").read_text())
    assert res["trained"] == {"batches": 1, "epochs": 0.125, "batches_per_epoch": 8}
    assert res["identity"]["epochs"] == 0.1  # as asked: the identity
    del res["trained"]  # as written before it was recorded: read from the last epoch record
    assert pt.trained(res) == {"batches": 1, "epochs": 0.125, "batches_per_epoch": 8}
    r = _run(base + ["--epochs", "0.25", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0 and "rounded" not in r.output  # 2 batches: a quarter, exactly
    r = _run([a if a != "1" or args[i - 1] != "--pretrain-epochs" else "0.1" for i, a in enumerate(args)])
    assert r.exit_code == 0, r.output
    assert f"{pair}: --pretrain-epochs 0.1 is rounded to whole batches: 1 batch of 16 = 0.125 epochs" in r.output
    saved = json.loads((out / "pairs" / f"{slug(pair)}.json").read_text())["backbone"]
    assert saved["pretrain_epochs"] == 0.1 and saved["pretrain_trained"]["epochs"] == 0.125


def test_the_heads_rerun_with_another_seed_on_the_same_backbone(fig6_args):
    """--seed had seeded the pretraining too, so a new CV seed meant a new backbone: --pretrain-seed
    (by default --seed, so folders written before keep working) keeps the backbone."""
    args, out, pair = fig6_args
    assert _run(args).exit_code == 0
    (backbone,) = (out / "backbones").iterdir()
    saved = (backbone / "backbone.pt").read_bytes()
    first = json.loads((out / "pairs" / f"{slug(pair)}.json").read_text())
    r = _run(args + ["--seed", "0", "--pretrain-seed", "0"])  # what the default meant: read back
    assert r.exit_code == 0 and "done before" in r.output, r.output
    r = _run(args + ["--seed", "1"])
    assert r.exit_code == 2
    assert r.stderr == (f"error: --out {out} holds a pretrained backbone of another configuration, differing in "
                        f"--seed (0 there, 1 now); delete {backbone} to pretrain it anew (--fresh keeps pretrained "
                        f"backbones), or choose another --out; or keep it with --pretrain-seed 0\n")
    r = _run(args + ["--seed", "1", "--pretrain-seed", "0"])  # as the message says
    assert r.exit_code == 0, r.output
    assert (backbone / "backbone.pt").read_bytes() == saved
    again = json.loads((out / "pairs" / f"{slug(pair)}.json").read_text())
    assert again["backbone"]["checksum"] == first["backbone"]["checksum"]
    assert again["identity"]["pretrain"]["seed"] == 0 and again["identity"]["protocol"]["seed"] == 1
    assert again["heads"]["fp-offline"]["accuracy"] != first["heads"]["fp-offline"]["accuracy"]  # other folds
    r = _run(args + ["--pretrain-seed", "3"])
    assert r.exit_code == 2 and "differing in --pretrain-seed (0 there, 3 now)" in r.stderr
    assert "keep it with" not in r.stderr


def test_a_pair_read_back_at_another_thread_count_says_so(fig6_args):
    """torch's kernels sum in another order at another thread count, so a pair's offline heads computed
    on 1 thread need not equal those of 2: reading it back is right (where a run executes is not its
    identity) but is said."""
    args, out, pair = fig6_args
    assert _run(args).exit_code == 0
    path = out / "pairs" / f"{slug(pair)}.json"
    saved = json.loads(path.read_text())
    assert saved["threads"] == torch.get_num_threads()
    r = _run(args)
    assert "done before" in r.output and "thread(s)" not in r.output
    path.write_text(json.dumps({**saved, "threads": saved["threads"] + 1}))
    r = _run(args)
    assert r.exit_code == 0 and "done before" in r.output
    assert f"(computed on {saved['threads'] + 1} thread(s), this run has {torch.get_num_threads()}" in r.output

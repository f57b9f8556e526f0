"""The transfer-learning pipeline: frozen backbone, feature cache, heads, pretraining resume, and a
tiny end-to-end ``ferristor fig6`` (the command ``reproduce fig6`` runs) on image folders."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ferristor.backbones import BackboneSpec, build_backbone
from ferristor.cli.main import cli
from ferristor.transfer_learning import folds as fl
from ferristor.transfer_learning import pretrain as pt
from ferristor.transfer_learning.features import cached_features
from ferristor.transfer_learning.heads import OfflineConfig, OnlineConfig, Runs, train_offline, train_online
from ferristor.transfer_learning.protocol import ProtocolConfig, run_protocol

from .conftest import synthetic, write_folder


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_frozen_backbone_stays_bit_identical_through_feature_extraction_and_head_training(source_images, target_images):
    # MobileNet-V2 has BatchNorm: extraction in training mode would move its running statistics
    cfg = pt.PretrainConfig(arch="mobilenet_v2", width=0.25, input_size=32, epochs=0.3, batch=16,
                            implementation="ferristor")
    backbone = pt.pretrain(cfg, data=source_images, progress=False).backbone.freeze()
    before, checksum = _state(backbone), backbone.checksum()
    original, flipped, _ = cached_features(backbone, target_images.x_train[:90], None)
    y = target_images.y_train[:90]
    keep = torch.from_numpy(fl.balanced_pool(y, None, 3, 0))
    proto = ProtocolConfig(folds=3, offline_epochs=2, lsb_grid=(2.0 ** -9,),
                           online=OnlineConfig(epochs=1, decay_epoch=1))
    res = run_protocol(original[keep], flipped[keep], y[keep], 3, proto)
    assert set(res["heads"]) == {"fp-offline", "lsq-offline", "hm-var", "hm", "fp-online"}
    after = backbone.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert backbone.checksum() == checksum
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training


def test_feature_cache_hits_and_invalidates_when_the_backbone_or_images_change(tmp_path, target_images):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneSpec(arch="mobilenet_v2", width=0.25, image_shape=(1, 12, 12),
                                           implementation="ferristor")).freeze()
    x = target_images.x_train[:20]
    f1, g1, info1 = cached_features(backbone, x, tmp_path)
    f2, g2, info2 = cached_features(backbone, x, tmp_path)
    assert not info1["hit"] and info2["hit"] and info1["key"] == info2["key"]
    assert torch.equal(f1, f2) and torch.equal(g1, g2) and not torch.equal(f1, g1)
    # a changed weight, a changed BatchNorm statistic, changed images: another key, recomputed
    with torch.no_grad():
        backbone.net.features[0][0].weight[0, 0, 0, 0] += 0.5
    f3, _, info3 = cached_features(backbone, x, tmp_path)
    assert not info3["hit"] and info3["key"] != info1["key"] and not torch.equal(f3, f1)
    with torch.no_grad():
        backbone.net.features[0][1].running_mean[0] += 1.0
    _, _, info4 = cached_features(backbone, x, tmp_path)
    assert not info4["hit"] and info4["key"] != info3["key"]
    _, _, info5 = cached_features(backbone, x[:10], tmp_path)
    assert not info5["hit"] and info5["key"] != info4["key"]
    # a truncated cache file is recomputed, not trusted
    path = tmp_path / f"features-{info5['key']}.pt"
    path.write_bytes(path.read_bytes()[:50])
    _, _, info6 = cached_features(backbone, x[:10], tmp_path)
    assert not info6["hit"]


def _toy_features(n_per_class=30, classes=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_per_class * classes) % classes
    centers = torch.randn(classes, d, generator=g) * 2
    f = centers[y] + torch.randn(len(y), d, generator=g)
    flip = centers[y] + torch.randn(len(y), d, generator=g)
    return torch.cat([f, flip]), torch.cat([y, y]), y


def test_runs_side_by_side_equal_each_run_alone():
    features, labels, y = _toy_features()
    pool = fl.with_flips(fl.assign_folds(y.numpy(), 3, 0))
    trains, tests = zip(*(fl.split(pool, f) for f in range(3)))
    runs = Runs([5, 6, 7], np.stack(trains), {"test": np.stack(tests)})
    for bits in (0, 4):
        both = train_offline(features, labels, runs, OfflineConfig(bits=bits, epochs=3, batch=16), 3)["model"]
        alone = train_offline(features, labels, runs.select([1]), OfflineConfig(bits=bits, epochs=3, batch=16), 3)["model"]
        assert torch.equal(both.weight[1], alone.weight[0])
    cfg = OnlineConfig(mode="hm-var", epochs=2, decay_epoch=1, k=16, hidden_lsb=2.0 ** -9)
    both = train_online(features, labels, runs, cfg, 3)
    alone = train_online(features, labels, runs.select([2]), cfg, 3)
    assert torch.equal(both["model"].weight_hidden[2], alone["model"].weight_hidden[0])
    # p = 1, a transfer every k inputs: ⌊epochs · n / k⌋ per run
    assert both["transfers"] == [2 * runs.train.shape[1] // 16] * 3
    assert both["ledger"][0]["network"]["transfers"] == both["transfers"][0]


def test_a_one_output_head_keeps_the_loop_and_its_softmax():
    from ferristor.nn import HybridLinear
    from ferristor.optim import HybridSGD
    from ferristor.transfer_learning.heads import compiled_head
    for outputs, compiled in ((1, False), (2, True)):
        head = HybridLinear(4, outputs, replicas=2, seeds=[0, 1], name="head")
        assert (compiled_head(head, HybridSGD(head.parameters(), lr=0.1, p=1.0, k=8)) is not None) == compiled


@pytest.mark.parametrize("mode", ["hm-var", "fp"])
def test_online_heads_train_in_compiled_chunks_bit_for_bit(monkeypatch, mode):
    """The online heads run fast_step's compiled chunks (a one-layer HybridMLP view): the same steps
    as the per-sample autograd loop — hidden weights, counters, ledger, accuracies."""
    from ferristor.experiments import fast_step
    features, labels, y = _toy_features()
    pool = fl.with_flips(fl.assign_folds(y.numpy(), 3, 0))
    trains, tests = zip(*(fl.split(pool, f) for f in range(3)))
    runs = Runs([5, 6, 7], np.stack(trains), {"test": np.stack(tests)})
    cfg = OnlineConfig(mode=mode, epochs=2, decay_epoch=1, k=16, hidden_lsb=2.0 ** -7)
    steps = []
    real = fast_step.run
    monkeypatch.setattr(fast_step, "run", lambda m, o, x, yy, idx, *a: steps.append(idx.shape[1]) or real(m, o, x, yy, idx, *a))
    compiled = train_online(features, labels, runs, cfg, 3)
    assert sum(steps) == 2 * runs.train.shape[1]
    monkeypatch.setattr("ferristor.transfer_learning.heads.compiled_head", lambda model, opt: None)
    plain = train_online(features, labels, runs, cfg, 3)
    assert sum(steps) == 2 * runs.train.shape[1]
    for k, v in plain["model"].state_dict().items():
        assert torch.equal(v, compiled["model"].state_dict()[k]), k
    assert all(np.array_equal(plain["history"][k], compiled["history"][k]) for k in plain["history"])
    assert plain["ledger"] == compiled["ledger"] and plain["transfers"] == compiled["transfers"]


def _interrupted(monkeypatch, cfg, out, data, *, at_batch: int, checkpoint_every: int) -> None:
    """A pretraining into ``out`` stopped by Ctrl-C at its ``at_batch``-th batch (its checkpoints kept)."""
    calls = {"n": 0}
    real = pt.F.cross_entropy

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == at_batch:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(pt.F, "cross_entropy", failing)
    with pytest.raises(KeyboardInterrupt):
        pt.pretrain(cfg, out, data=data, progress=False, checkpoint_every=checkpoint_every)
    monkeypatch.setattr(pt.F, "cross_entropy", real)


def test_pretraining_resumes_after_an_interruption(tmp_path, source_images, monkeypatch):
    cfg = pt.PretrainConfig(arch="lenet", input_size=12, epochs=1.0, batch=16)
    whole = pt.pretrain(cfg, tmp_path / "a", data=source_images, progress=False, checkpoint_every=3)
    _interrupted(monkeypatch, cfg, tmp_path / "b", source_images, at_batch=8, checkpoint_every=3)
    assert (tmp_path / "b" / "checkpoint.pt").exists() and not (tmp_path / "b" / "backbone.pt").exists()
    resumed = pt.pretrain(cfg, tmp_path / "b", data=source_images, progress=False, checkpoint_every=3)
    assert resumed.backbone.checksum() == whole.backbone.checksum()
    assert [h["train_loss"] for h in resumed.results["history"]] == [h["train_loss"] for h in whole.results["history"]]
    again = pt.pretrain(cfg, tmp_path / "b", data=source_images, progress=False)  # finished: read back
    assert again.backbone.checksum() == whole.backbone.checksum()
    with pytest.raises(Exception, match="another configuration"):
        pt.pretrain(pt.PretrainConfig(arch="lenet", input_size=12, epochs=2.0, batch=16), tmp_path / "b",
                    data=source_images, progress=False)


def test_fig6_end_to_end_at_minimal_scale_on_image_folders(tmp_path):
    """`ferristor fig6` (what `reproduce fig6` runs): pretraining, features, five heads, table, plot."""
    write_folder(synthetic(40, 4, seed=1), tmp_path / "src")
    write_folder(synthetic(30, 3, seed=2, shift=5), tmp_path / "tgt", split_test=False)
    pair = f"folder:{tmp_path / 'src'}->folder:{tmp_path / 'tgt'}"
    args = ["fig6", "--pairs", pair, "--arch", "lenet", "--input-size", "12", "--pretrain-epochs", "1", "--batch", "16",
            "--per-class", "21", "--folds", "3", "--online-epochs", "1", "--decay-epoch", "1", "--offline-epochs", "2",
            "--lsb-grid", "2^-9,2^-11", "--out", str(tmp_path / "out"), "--no-progress"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "fp-offline" in r.output and "hm-var" in r.output and "paper (digest §6)" in r.output
    out = tmp_path / "out"
    res = json.loads((out / "fig6.json").read_text())["pairs"][pair]
    assert set(res["heads"]) == {"fp-offline", "lsq-offline", "hm-var", "hm", "fp-online"}
    assert all(len(h["accuracy"]) == 3 for h in res["heads"].values())
    assert res["heads"]["hm-var"]["ledger"]["transfers_mean"] == res["pool"]["train_rows_per_run"] // 512
    assert res["pool"]["rows"] == 2 * 63  # originals and their flips
    assert (out / "fig6.png").stat().st_size > 0 and (out / "fig6.txt").exists()
    again = CliRunner().invoke(cli, args)  # finished pairs are read back
    assert again.exit_code == 0 and "done before" in again.output
    bad = CliRunner().invoke(cli, args[:2] + ["nonsense"] + args[3:])
    assert bad.exit_code == 2 and "SOURCE->TARGET" in bad.stderr


def test_an_online_head_whose_k_exceeds_its_training_warns():
    """fig6's hybrid heads at the paper's k = 512 on a small pool would never transfer: said, as train says it."""
    from ferristor.errors import FerristorWarning
    features, labels, y = _toy_features()
    pool = fl.with_flips(fl.assign_folds(y.numpy(), 3, 0))
    trains, tests = zip(*(fl.split(pool, f) for f in range(3)))
    runs = Runs([5, 6, 7], np.stack(trains), {"test": np.stack(tests)})
    n = runs.train.shape[1]
    with pytest.warns(FerristorWarning, match=f"larger than the {n:,} samples each online head trains on"):
        out = train_online(features, labels, runs, OnlineConfig(mode="hm", epochs=1, decay_epoch=1, k=n + 1), 3)
    assert out["transfers"] == [0] * 3


def test_pretraining_depends_on_its_thread_count_and_a_resume_on_another_warns(tmp_path, source_images, monkeypatch):
    """torch's kernels split their sums over the threads: 1 and 2 threads give backbones that differ in
    their last bits (measured), so a pretraining continued on another count than its checkpoint's is
    neither's run from the start; it had done so in silence."""
    from ferristor.errors import FerristorWarning
    # width 0.5 (8 and 16 channels): the sums of that width differ by thread count (LeNet's own width 1 may not)
    cfg = pt.PretrainConfig(arch="lenet", width=0.5, input_size=12, epochs=1.5, batch=16)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pt.pretrain(cfg, data=source_images, progress=False).backbone.checksum()
        torch.set_num_threads(2)
        two = pt.pretrain(cfg, data=source_images, progress=False).backbone.checksum()
        assert one != two  # what makes the warning worth giving
        _interrupted(monkeypatch, cfg, tmp_path / "b", source_images, at_batch=5, checkpoint_every=2)
        torch.set_num_threads(1)
        with pytest.warns(FerristorWarning, match=r"continuing on 1 thread\(s\) a pretraining checkpointed on 2"):
            pt.pretrain(cfg, tmp_path / "b", data=source_images, progress=False)
    finally:
        torch.set_num_threads(before)


def test_a_k_past_the_choosing_heads_says_which_heads_and_a_tie_is_called_one():
    """fig6's warning had read as if the final heads never transferred ('each online head trains on 400
    samples … no transfer will happen') when only the heads choosing hidden_lsb, on one fold less, did
    not; their candidates then all tied, and the first grid value was reported as chosen."""
    import warnings

    from ferristor.errors import FerristorWarning
    features, labels, y = _toy_features()  # 3 folds: 60 training rows a choosing head, 120 a final head
    proto = ProtocolConfig(folds=3, lsb_grid=(2.0 ** -7, 2.0 ** -8), heads=("hm",),
                           online=OnlineConfig(epochs=1, decay_epoch=1, k=100))
    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_protocol(features[:90], features[90:], y, 3, proto, log=lines.append)
    said = [str(w.message) for w in caught if issubclass(w.category, FerristorWarning)]
    assert len(said) == 1, said
    assert "larger than the 60 samples each hm-var head choosing hidden_lsb trains on (60 training rows × 1 epoch)" \
        in said[0]
    assert "the 120 samples each final head trains on (120 training rows × 1 epoch) and do transfer" in said[0]
    assert "each online head trains on" not in said[0]
    assert res["heads"]["hm"]["transfers"] == [1, 1, 1]  # they do
    assert res["lsb_choice"]["tied"] == [True] * 3 and res["lsb_choice"]["chosen"] == [2.0 ** -7] * 3
    assert any("all 3 runs: a tie (every candidate equal on validation), taken as the first grid value" in line
               for line in lines), lines
    past, within = (dataclasses.replace(proto, online=OnlineConfig(epochs=1, decay_epoch=1, k=k)) for k in (200, 8))
    with warnings.catch_warnings(record=True) as caught:  # past the final heads too: said of both
        warnings.simplefilter("always")
        run_protocol(features[:90], features[90:], y, 3, past, log=lines.append)
    (said,) = [str(w.message) for w in caught if issubclass(w.category, FerristorWarning)]
    assert "and the 120 samples each final online head trains on (120 training rows × 1 epoch): no transfer" in said
    with warnings.catch_warnings(record=True) as caught:  # k within both: no warning, a real choice
        warnings.simplefilter("always")
        res = run_protocol(features[:90], features[90:], y, 3, within, log=lines.append)
    assert not [w for w in caught if issubclass(w.category, FerristorWarning)]
    assert res["lsb_choice"]["tied"] == [False] * 3

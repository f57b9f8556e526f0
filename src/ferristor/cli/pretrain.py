"""``ferristor pretrain``: a 4-bit (LSQ) backbone for transfer learning, pretrained on a source task."""
from __future__ import annotations

from pathlib import Path

import click

from .common import FiniteFloat, NonEmptyPath, cpu_count, names_options

ARCH_CHOICES = ("mobilenet_v2", "lenet")


def _defaults(index: int) -> str:
    """Each architecture's default, as backbones.ARCH_DEFAULTS holds it (imported here only: torch)."""
    from ..backbones.backbone import defaults_text
    return defaults_text(index)


def backbone_options(f):
    """Options shared by ``pretrain`` and ``fig6``."""
    for opt in reversed([
        click.option("--arch", type=click.Choice(ARCH_CHOICES), default=None,
                     help="backbone: MobileNet-V2 (torchvision's architecture, the paper's) or a LeNet-style CNN (quick)"),
        click.option("--width", type=FiniteFloat(0, 4, min_open=True), default=None,
                     help=f"width multiplier: MobileNet-V2's width_mult, LeNet's channels (16·width, 32·width) "
                          f"[default: {_defaults(0)}]"),
        click.option("--input-size", type=click.IntRange(8, 1024), default=None,
                     help=f"side of the network's input [default: {_defaults(1)}]; smaller images are padded with "
                          f"the background (--fit)"),
        click.option("--fit", type=click.Choice(["pad", "resize"]), default="pad", show_default=True,
                     help="how images meet --input-size"),
        click.option("--bits", type=click.IntRange(0, 16), default=4, show_default=True,
                     help="LSQ bits of every weight of the backbone (0: float; the paper: 4)"),
        click.option("--batch", type=click.IntRange(min=1), default=128, show_default=True, help="batch of the backbone's pretraining"),
        click.option("--lr", type=FiniteFloat(0, min_open=True), default=1e-4, show_default=True, help="Adam's lr of the backbone's pretraining (the paper's)"),
        click.option("--weight-decay", type=FiniteFloat(0), default=1e-5, show_default=True, help="Adam's weight decay of the backbone's pretraining (the paper's)"),
        click.option("--train-limit", type=click.IntRange(min=0), default=0, show_default=True,
                     help="pretrain on the first N training images of the source (0: all)"),
        click.option("--weights", type=NonEmptyPath(dir_okay=False), default=None,
                     help="a float state_dict file to start from (torchvision's MobileNet-V2 key layout)"),
        click.option("--threads", type=click.IntRange(1, cpu_count()), default=1, show_default=True, help="CPU threads"),
        click.option("--data-dir", type=NonEmptyPath(file_okay=False), default=None, envvar="FERRISTOR_DATA",
                     help="data root holding mnist/, fashion-mnist/ [env FERRISTOR_DATA]"),
        click.option("--progress/--no-progress", default=True, help="show progress bars"),
    ]):
        f = opt(f)
    return f


def _done_before(out, results: dict) -> None:
    """A finished --out read back (as fig6 says of a finished pair): what it holds, in one line."""
    from ..transfer_learning.pretrain import trained
    acc, t = results.get("final_test_accuracy"), trained(results)
    epochs = f"{t['epochs']:.4g} epoch{'s' * (t['epochs'] != 1)}" if t.get("epochs") is not None else "?"
    click.echo(f"done before, read from {out}: pretrained {epochs}, test "
               f"{'—' if acc is None else f'{100 * acc:.2f} %'} (--fresh trains it anew)")


@click.command("pretrain")
@click.option("--dataset", default="fashion-mnist", show_default=True,
              help="source: mnist, fashion-mnist, a class subset such as 'fashion-mnist[0-4]', or folder:PATH")
@click.option("--epochs", type=FiniteFloat(0, 1000, min_open=True), default=1.0, show_default=True,
              help="epochs; a fraction runs part of one, rounded to whole batches (at least one)")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="seed of the initialisation and the batch order")
@click.option("--test-limit", type=click.IntRange(min=0), default=0, show_default=True, help="test on the first N (0: all)")
@click.option("--out", type=NonEmptyPath(file_okay=False), default="runs/pretrain", show_default=True,
              help="folder for checkpoint.pt, backbone.pt, pretrain.json (a rerun resumes; one run at a time)")
@click.option("--fresh", is_flag=True, help="discard what --out holds and start over")
@backbone_options
@names_options(out_dir="out")
def pretrain_command(dataset, epochs, seed, test_limit, out, fresh, arch, width, input_size, fit, bits, batch, lr,
                     weight_decay, train_limit, weights, threads, data_dir, progress):
    """Pretrain a backbone with 4-bit LSQ weights (Adam lr 1e-4, weight decay 1e-5) for transfer learning (Fig. 6)."""
    from ..experiments.fit import set_threads
    from ..transfer_learning.pretrain import PretrainConfig, pretrain, rounding_note

    set_threads(threads)
    arch = arch or "mobilenet_v2"
    cfg = PretrainConfig(arch=arch, dataset=dataset, width=width, input_size=input_size, bits=bits,
                         fit=fit, epochs=epochs, batch=batch, lr=lr, weight_decay=weight_decay, seed=seed,
                         train_limit=train_limit, test_limit=test_limit, weights=weights)
    res = pretrain(cfg, out, data_dir=data_dir, progress=progress, fresh=fresh)
    if res.done_before:  # nothing trained now: not its training log, as if it had been
        _done_before(out, res.results)
    for h in [] if res.done_before else res.results["history"]:
        acc = h.get("test_accuracy")
        click.echo(f"epoch {h['epoch']:.2f}: loss {h['train_loss']:.4f}, "
                   f"test {'—' if acc is None else f'{100 * acc:.2f} %'}, {h['wall_seconds']:.1f} s on {h['threads']} thread(s)")
    note = rounding_note(cfg, res.results, "--epochs")
    if note:
        click.echo(note)
    used = res.results["levels_used"]
    if used:
        click.echo(f"LSQ {bits}-bit levels used per layer: min {min(used.values())}, max {max(used.values())} of {2 ** bits}")
    click.echo(f"backbone: {Path(out) / 'backbone.pt'} (checksum {res.results['backbone_checksum'][:12]}, "
               f"{res.results['implementation']})")

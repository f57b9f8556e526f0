"""``ferristor fig6``: the paper's Fig. 6 in kind — transfer learning with a frozen 4-bit backbone and
five classifier heads (FP and 4-bit offline, HM online with and without variability, FP online).

``reproduce fig6`` is this command: :func:`run_fig6` is the hook a ``reproduce`` front end calls."""
from __future__ import annotations

import math
from pathlib import Path

import click

from .common import FiniteFloat, NonEmptyPath, comma_list, current_namer, name_fields, names_options, no_repeats
from .pretrain import backbone_options


def _top_level_items(text: str) -> list[str]:
    """``text`` split at its commas outside brackets, stripped: a class list keeps its own commas
    ('fashion-mnist[0,4]->mnist[0-1],mnist->fashion-mnist' is two pairs)."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c == "[") - (c == "]" and depth > 0)
        if c == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return [t.strip() for t in items + [text[start:]]]


def _csv(text: str | None, field: str, example: str) -> list[str] | None:
    """None (the defaults) where the option is not given; a given list must hold something, each item
    once (as ``comma_list``), split at top-level commas only."""
    if text is None:
        return None
    items = _top_level_items(str(text))
    if not all(items):
        comma_list(text, field, example)  # refuses it, as every comma-separated option does
    no_repeats(items, field, text)
    return items


def _lsb_grid(text: str) -> tuple[float, ...]:
    """'2^-5,2^-6,0.01' → the candidates, checked as ProtocolConfig checks them (``check_lsb_grid``); a
    bad one is named with the value as typed (not the parsed tuple)."""
    from ..errors import ConfigError
    from ..transfer_learning.protocol import check_lsb_grid
    items = comma_list(text, "lsb_grid", "2^-5,2^-6,2^-7", distinct=False)  # '2^-8,0.00390625' repeat as numbers
    values = []
    for t in items:
        try:
            values.append(2.0 ** float(t[2:]) if t.startswith("2^") else float(t))
        except (ValueError, OverflowError):  # 'x', '2^2000': refused below, named as typed
            values.append(math.nan)
    try:
        return check_lsb_grid(values, items, how="as numbers or powers of two, e.g. 2^-5,2^-6,0.01")
    except ConfigError as e:
        raise ConfigError(e.field, text, e.allowed) from None


# Each option of ``fig6`` (its parameter name) → the Fig6Config path it sets: --set refuses these
# paths, naming the option. ``tests/cli/test_fig6_cli.py`` checks that every option is here or in
# NOT_CONFIG and that every path exists. --seed sets pretrain.seed too unless --pretrain-seed is given.
OPTION_PATHS = {
    "pairs": "pairs", "pretrain_epochs": "pretrain.epochs", "per_class": "per_class", "folds": "protocol.folds",
    "heads": "protocol.heads", "online_epochs": "protocol.online.epochs", "decay_epoch": "protocol.online.decay_epoch",
    "offline_epochs": "protocol.offline_epochs", "lsb_grid": "protocol.lsb_grid", "seed": "protocol.seed",
    "pretrain_seed": "pretrain.seed", "arch": "pretrain.arch", "width": "pretrain.width",
    "input_size": "pretrain.input_size", "fit": "pretrain.fit", "bits": "pretrain.bits", "batch": "pretrain.batch",
    "lr": "pretrain.lr", "weight_decay": "pretrain.weight_decay", "train_limit": "pretrain.train_limit",
    "weights": "pretrain.weights",
}
NOT_CONFIG = ("out", "fresh", "threads", "data_dir", "progress", "sets")  # where and how, not what is computed


def _flags() -> dict[str, str]:
    """Config path → the flag of the option that sets it (``--folds`` for protocol.folds)."""
    return {path: "--" + name.replace("_", "-") for name, path in OPTION_PATHS.items()}


def _list_paths(ctx, _, value):
    if not value or ctx.resilient_parsing:
        return
    from ..transfer_learning import paths
    from .params import print_paths
    print_paths(paths.settable(_flags()), paths.field, paths.default)
    ctx.exit()


def fig6_options(f):
    for opt in reversed([
        click.option("--pairs", default=None,
                     help="comma-separated SOURCE->TARGET pairs [default: mnist->fashion-mnist, fashion-mnist->mnist, "
                          "fashion-mnist[0-4]->fashion-mnist[5-9]]; images: mnist, fashion-mnist, class subsets "
                          "(a class list's commas, mnist[0,2], stay in its pair), folder:PATH"),
        click.option("--pretrain-epochs", type=FiniteFloat(0, 1000, min_open=True), default=2.0, show_default=True,
                     help="epochs of the backbone's pretraining on each source; a fraction is rounded to whole "
                          "batches (at least one)"),
        click.option("--per-class", type=click.IntRange(min=2), default=1000, show_default=True,
                     help="target images per class in the pool, before flips (a multiple of --folds)"),
        click.option("--folds", type=click.IntRange(3, 100), default=10, show_default=True,
                     help="cross-validation folds = runs (the paper: 10)"),
        click.option("--heads", default=None, help="comma-separated subset of fp-offline, lsq-offline, hm-var, hm, fp-online"),
        click.option("--online-epochs", type=click.IntRange(min=1), default=3, show_default=True,
                     help="epochs of the online heads (hm-var, hm, fp-online)"),
        click.option("--decay-epoch", type=click.IntRange(min=0), default=2, show_default=True,
                     help="the online lr is multiplied by protocol.online.decay (0.1) from this epoch on (0-based)"),
        click.option("--offline-epochs", type=click.IntRange(min=1), default=150, show_default=True,
                     help="most epochs of an offline head (the number is chosen per run on its training folds)"),
        click.option("--lsb-grid", default="2^-5,2^-6,2^-7,2^-8", show_default=True,
                     help="candidate weight scales (hidden LSB) of the online heads, chosen per run on its training folds"),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="seed of the folds and the heads (initialisation, sample order, transfer noise); also of "
                          "the pretraining unless --pretrain-seed is given"),
        click.option("--pretrain-seed", type=click.IntRange(min=0), default=None,
                     help="seed of the backbone's pretraining (initialisation, batch order) [default: --seed]; give it "
                          "to rerun the heads with another --seed on the same backbone"),
        click.option("--out", type=NonEmptyPath(file_okay=False), default="runs/fig6", show_default=True,
                     help="folder: backbones/, features/, pairs/, fig6.json, fig6.txt, fig6.png (a rerun skips finished pairs)"),
        click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                     help="any other setting of the pretraining, the protocol or the heads, e.g. protocol.online.k=64, "
                          "protocol.online.rounding=nearest, protocol.online.ledger.fecap_energy_fj=50 (repeatable; "
                          "--list-paths lists them); part of each pair's identity"),
        click.option("--list-paths", is_flag=True, is_eager=True, expose_value=False, callback=_list_paths,
                     help="list the paths --set takes, with their defaults, units and sources, and exit"),
        click.option("--fresh", is_flag=True,
                     help="discard the finished pairs in --out (pretrained backbones and features stay cached: to "
                          "pretrain a backbone anew, delete its folder OUT/backbones/SOURCE-ARCH)"),
    ]):
        f = opt(f)
    return f


def run_fig6(*, pairs=None, pretrain_epochs=2.0, per_class=1000, folds=10, heads=None, online_epochs=3, decay_epoch=2,
             offline_epochs=150, lsb_grid="2^-5,2^-6,2^-7,2^-8", seed=0, pretrain_seed=None, out="runs/fig6", fresh=False,
             arch=None, width=None,
             input_size=None, fit="pad", bits=4, batch=128, lr=1e-4, weight_decay=1e-5, train_limit=0, weights=None,
             sets=(), threads=1, data_dir=None, progress=True) -> dict:
    """The command's body, callable from another front end (``reproduce fig6``) with the same options."""
    from ..errors import ConfigMismatchError
    from ..experiments.fit import set_threads
    from ..transfer_learning import paths
    from ..transfer_learning.fig6 import PAIRS, format_table, reproduce_fig6
    from ..transfer_learning.protocol import HEADS

    set_threads(threads)
    arch = arch or "lenet"
    overrides = paths.parse_sets(sets, _flags())  # before any config is built: paths and types
    if overrides and click.get_current_context(silent=True) is not None:  # warnings name them as typed
        name_fields(paths.namer(overrides, fallback=current_namer()))
    pretrain = dict(arch=arch, width=width, input_size=input_size, fit=fit, bits=bits, epochs=pretrain_epochs,
                    batch=batch, lr=lr, weight_decay=weight_decay, seed=seed if pretrain_seed is None else pretrain_seed,
                    train_limit=train_limit, weights=weights)
    protocol = dict(folds=folds, seed=seed, offline_epochs=offline_epochs, lsb_grid=_lsb_grid(lsb_grid),
                    online=dict(epochs=online_epochs, decay_epoch=decay_epoch),
                    heads=tuple(_csv(heads, "heads", "hm-var,fp-online") or HEADS))
    cfg = paths.build({"pairs": tuple(_csv(pairs, "pairs", "mnist->fashion-mnist") or PAIRS), "pretrain": pretrain,
                       "protocol": protocol, "per_class": per_class}, overrides)
    try:
        results = reproduce_fig6(cfg, out, data_dir=data_dir, progress=progress, fresh=fresh, log=click.echo)
    except ConfigMismatchError as e:
        there = next((old for f, old, _ in e.differences if f == "pretrain.seed"), None)
        if pretrain_seed is not None or there is None:
            raise
        # --seed moved the pretraining's seed with it: the backbone there can be kept
        raise ConfigMismatchError(e.field, e.value, e.what, e.differences,
                                  f"{e.remedy}; or keep it with --pretrain-seed {there}") from None
    click.echo(format_table(results))
    click.echo(f"results: {Path(out) / 'fig6.json'}, table: {Path(out) / 'fig6.txt'}, plot: {Path(out) / 'fig6.png'}")
    return results


@click.command("fig6", short_help="Transfer learning on the chip (Fig. 6)")
@fig6_options
@backbone_options
@names_options(out_dir="out", per_class="per_class", **{"pretrain.epochs": "pretrain_epochs",
                                                         "pretrain.seed": "pretrain_seed",
                                                         "OnlineConfig.epochs": "online_epochs"})
def fig6_command(**options):
    """Transfer learning on the chip (the paper's Fig. 6, in kind): pretrain a 4-bit backbone, freeze it,
    train classifier heads with tenfold CV; prints the table next to the paper's gaps and writes a plot.

    The default backbone is the quick LeNet-style CNN; --arch mobilenet_v2 is the paper's. The heads'
    k, p, lr, rounding, σ and ledger costs: --set protocol.online.… (--list-paths)."""
    if options["pretrain_seed"] is None:  # the pretraining's seed is the --seed typed
        namer = current_namer()
        name_fields(lambda field: "--seed" if field == "pretrain.seed" else namer(field))
    run_fig6(**options)

"""``ferristor reproduce fig5c|fig5d|fig5e|fig5f|fig6|all``."""
from __future__ import annotations

from pathlib import Path

import click

from ..experiments.presets import PRESETS
from ..experiments.reproduce import DEFAULT_PRESET, FIG5C_KS, SETTINGS
from .common import ChoiceList, FiniteFloat, IntList, NonEmptyPath, SeedList, cpu_count, names_options

# The longest setting runs 100 epochs; the scale keeps every trial within TrainConfig's epoch bound.
MAX_EPOCH_SCALE = 100
# Trials on streams of one GPU are threads that mostly wait on it, not on the cores; torch hands out
# 32 streams per priority in turn, so more trials than that would share streams and take turns.
MAX_GPU_WORKERS = 32
# What ``--fresh`` removes from each figure's folder: its results store and the plots drawn from it.
_STORE = ("sweep.sqlite", "sweep.sqlite-wal", "sweep.sqlite-shm", "sweep.sqlite-journal")
# an option given on the command line or by its environment variable (its default is not "given")
_GIVEN = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
FRESH_DISCARD = {"fig5cde": (*_STORE, "fig5c.png", "fig5d.png", "fig5e.png", "trials", "checkpoints"),
                 "fig5f": (*_STORE, "fig5f.png", "trials", "checkpoints")}


@click.command("reproduce", short_help="The paper's Figs. 5c–f and 6, beside its values")
@click.argument("figure", metavar="FIGURE", type=click.Choice(["fig5c", "fig5d", "fig5e", "fig5f", "fig6", "all"]))
@click.option("--seeds", type=SeedList(), default=None, help="seeds per point [default: 0-9 for fig5c–e, 0-4 for fig5f, digest §6]")
@click.option("--epoch-scale", type=FiniteFloat(0, MAX_EPOCH_SCALE, min_open=True), default=1.0, show_default=True,
              help="fraction of the paper's epochs, for a quick look (e.g. 0.1)")
@click.option("--k", "ks", type=IntList(), default=None,
              help="comma-separated k values for fig5c–e [default: " + ",".join(map(str, FIG5C_KS)) + "]")
@click.option("--settings", type=ChoiceList(SETTINGS), default=None,
              help="comma-separated fig5f settings [default: all four: " + ", ".join(SETTINGS) + "]")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="the open choices: 'paper' (those that best explain the paper, RESULTS.md) or "
                   "'stochastic' (the library's defaults); 'ferristor reproduce --list-presets' shows them")
@click.option("--list-presets", is_flag=True, is_eager=True, expose_value=False, callback=lambda ctx, _, v: _list(ctx, v),
              help="show each preset's choices and evidence, and exit")
@click.option("--rounding", type=click.Choice(["stochastic", "nearest", "truncate"]), default=None,
              help="update rounding of the hybrid modes [default: the preset's]; the fp points are shared")
@click.option("--level-means", type=click.Choice(["ideal", "measured"]), default=None,
              help="level means of the hybrid modes' transfer [default: the preset's]")
@click.option("--threads", type=click.IntRange(1, cpu_count()), default=1, show_default=True, help="CPU threads per trial")
@click.option("--workers", type=click.IntRange(1, MAX_GPU_WORKERS), default=1, show_default=True,
              help="trials run at once, each in its own process (e.g. one per core, with --threads 1; at most the "
                   "cores); with --device cuda, each in a thread of this process on its own CUDA stream, side by "
                   f"side on the GPU (at most {MAX_GPU_WORKERS})")
@click.option("--device", default="cpu", show_default=True,
              help="torch device of every trial, e.g. cuda: batch-1 trials run as CUDA graphs (checked before any work)")
@click.option("--data-dir", type=NonEmptyPath(file_okay=False), default=None, envvar="FERRISTOR_DATA",
              help="data root holding mnist/, fashion-mnist/, mitdb/ [env FERRISTOR_DATA]")
@click.option("--out", type=NonEmptyPath(file_okay=False), default="runs/reproduce", show_default=True,
              help="each finished point is saved here at once; a rerun skips finished points (one run at a time)")
@click.option("--fresh", is_flag=True,
              help="discard the saved points and checkpoints (the results store OUT/<figure>/sweep.sqlite) and the "
                   "plots of the figures asked, and start over; also the way out of a corrupt store")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
@names_options(k="ks", **{"rule.k": "ks", "out_dir": "out"})
def reproduce(figure, seeds, epoch_scale, ks, settings, preset, rounding, level_means, threads, workers, device,
              data_dir, out, fresh, progress):
    """Reproduce the paper's Fig. 5c–f and Fig. 6 (in kind); prints our numbers next to the paper's and
    writes plots. FIGURE: fig5c, fig5d, fig5e, fig5f, fig6 or all. fig6 is 'ferristor fig6 --out OUT/fig6' with its defaults (its own options:
    'ferristor fig6 --help'; --epoch-scale scales its pretraining only); all is Fig. 5c–f."""
    if figure == "fig6":
        # every option fig6 does not read, given on the command line or by its environment variable
        # (--preset paper and --workers 1 too: a value that happens to be the default is still ignored)
        ctx = click.get_current_context()
        for name in ("seeds", "ks", "settings", "preset", "rounding", "level_means", "workers", "device"):
            if ctx.get_parameter_source(name) in _GIVEN:
                flag = next(p.opts[0] for p in ctx.command.params if p.name == name)
                raise click.UsageError(f"{flag} does not apply to fig6: its options are those of 'ferristor fig6'")
        from ..errors import ConfigMismatchError
        from ..experiments.run_folder import FIELD
        from .fig6 import run_fig6
        folder = str(Path(out) / "fig6")
        try:
            run_fig6(out=folder, pretrain_epochs=2.0 * epoch_scale, threads=threads, data_dir=data_dir,
                     progress=progress, fresh=fresh)
        except ConfigMismatchError as e:
            if e.field != FIELD or e.value != str(Path(folder)):
                raise
            # named as the --out typed here; the remedy names the folder in it to delete
            raise ConfigMismatchError(FIELD, out, e.what, e.differences, e.remedy) from None
        return
    # --k is read by Fig. 5c–e only and --settings by Fig. 5f only ('all' runs both, so both apply there):
    # given to a figure that does not read it, it would be dropped without a word
    ctx = click.get_current_context()
    for name, flag, reads, which in (("ks", "--k", ("fig5c", "fig5d", "fig5e", "all"), "the k values of fig5c–e"),
                                     ("settings", "--settings", ("fig5f", "all"), "the settings of fig5f")):
        if ctx.get_parameter_source(name) in _GIVEN and figure not in reads:
            raise click.UsageError(f"{flag} does not apply to {figure}: it chooses {which} (and of all)")
    if workers > cpu_count() and not str(device).startswith("cuda"):
        raise click.BadParameter(f"{workers}: at most {cpu_count()} (this machine's cores) for trials on the CPU; "
                                 f"with --device cuda up to {MAX_GPU_WORKERS} trials share the GPU",
                                 param_hint="'--workers'")
    from ..data.registry import locate_dataset
    from ..experiments import reproduce as rp
    from ..experiments.resources import check_memory, estimate_bytes
    from ..experiments.run_folder import claim
    from .common import require_plot

    require_plot("ferristor reproduce")
    out = Path(out)
    options, preset = {"rounding": rounding, "level_means": level_means}, PRESETS[preset]
    kw = dict(options=options, preset=preset, data_dir=data_dir, threads=threads, progress=progress, workers=workers,
              device=device)
    k_sweep = figure in ("fig5c", "fig5d", "fig5e", "all")
    k_seeds = seeds or list(range(10))
    f_seeds = seeds or list(range(5))
    chosen = settings or tuple(rp.SETTINGS)
    trials = []
    if k_sweep:
        trials += rp.k_trials(k_seeds, epoch_scale, ks or rp.FIG5C_KS, options, preset)
    if figure in ("fig5f", "all"):
        trials += rp.fig5f_trials(f_seeds, epoch_scale, chosen, options, preset)
    # Before any work: every trial's configuration is valid, the largest fits in memory (times the
    # trials run at once), --out is ours, and the data of every setting are there and intact.
    configs = [rp._cfg(t, data_dir, threads, device) for t in trials]
    check_memory(max(configs, key=estimate_bytes), concurrent=min(workers, len(configs)))
    figures = (["fig5cde"] if k_sweep else []) + (["fig5f"] if figure in ("fig5f", "all") else [])
    subfolders = ["", *figures, *(f"{f}/trials" for f in figures)]
    with claim(out, subfolders=subfolders) as folder:
        for name in sorted({rp.SETTINGS[t["setting"]][0] for t in trials}):
            locate_dataset(name, data_dir)
        if fresh:
            from ..experiments.run_folder import discard
            from ..sweeps.driver import sweep_lock
            for f in figures:
                # a figure's state is its results store (with SQLite's -wal/-shm beside it) and the plots
                # drawn from it; "trials"/"checkpoints" are the folders of the layout before the store.
                # Under the folder's writer locks, so a sweep, import or run on it is refused, not cut.
                with sweep_lock(folder / f):
                    discard(folder / f, FRESH_DISCARD[f])
        if k_sweep:
            points = rp.reproduce_k_sweep(out / "fig5cde", k_seeds, epoch_scale, ks or rp.FIG5C_KS, **kw)
            click.echo(f"\nFig. 5c–e, MNIST, {len(k_seeds)} seed(s) per k{_scale_note(epoch_scale, paper_columns=False)}")
            click.echo(rp.k_table(points))
            click.echo(f"plots: {out / 'fig5cde'}/fig5c.png, fig5d.png, fig5e.png")
        if figure in ("fig5f", "all"):
            table = rp.reproduce_fig5f(out / "fig5f", f_seeds, epoch_scale, chosen, **kw)
            click.echo(f"\nFig. 5f, {len(f_seeds)} seed(s) per cell{_scale_note(epoch_scale)}")
            click.echo(rp.fig5f_table(table))
            click.echo(f"plot: {out / 'fig5f' / 'fig5f.png'}")


def _list(ctx, value):
    if not value or ctx.resilient_parsing:
        return
    for p in PRESETS.values():
        click.echo(f"{p.name}{' (default)' if p.name == DEFAULT_PRESET else ''}: {p.summary}")
        for group in ("network", "hybrid", "fp"):
            for name, v in getattr(p, group).items():
                click.echo(f"  {group}.{name} = {v}  — {p.evidence.get(name, '[I]')}")
        for setting, names in p.defaults_in.items():
            for name in names:
                click.echo(f"  {setting}: {name} left at the library's default  — "
                           f"{p.evidence.get(f'{setting}.{name}', '[I]')}")
    ctx.exit()


def _scale_note(epoch_scale: float, paper_columns: bool = True) -> str:
    """A table's caveat: below the paper's epochs, our accuracies fall short of a full run's; for a
    table with the paper's values beside ours (Fig. 5f), Δ and ✓/✗ against them are not a verdict.
    The Fig. 5c–e table has no paper columns: its caveat names none."""
    if epoch_scale >= 1:
        return ":"
    if not paper_columns:
        return (f", at {epoch_scale:g}× the paper's epochs: a shorter run is expected to fall short of the "
                "accuracy of the paper's full runs:")
    return (f", at {epoch_scale:g}× the paper's epochs: the paper's values, Δ and ✓/✗ are for its full runs, "
            "so a shorter run is expected to fall short:")

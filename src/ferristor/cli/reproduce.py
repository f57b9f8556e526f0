"""``ferristor reproduce fig5c|fig5d|fig5e|fig5f|all``."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("reproduce")
@click.argument("figure", type=click.Choice(["fig5c", "fig5d", "fig5e", "fig5f", "all"]))
@click.option("--seeds", default=None, help="seeds per point [default: 10 for fig5c–e, 5 for fig5f, digest §6]")
@click.option("--epoch-scale", type=float, default=1.0, show_default=True,
              help="fraction of the paper's epochs, for a quick look (e.g. 0.1)")
@click.option("--k", "ks", default=None, help="comma-separated k values for fig5c–e [default: 1,2,5,10,20,50,100,200,500]")
@click.option("--settings", default=None, help="comma-separated fig5f settings [default: all four]")
@click.option("--rounding", type=click.Choice(["stochastic", "nearest", "truncate"]), default=None,
              help="update rounding of the hybrid modes [default: the rule's, stochastic]; the fp points are shared")
@click.option("--level-means", type=click.Choice(["ideal", "measured"]), default=None,
              help="level means of the hybrid modes' transfer [default: ideal]")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads per trial")
@click.option("--workers", type=int, default=1, show_default=True,
              help="trials run at once, each in its own process (e.g. one per core, with --threads 1)")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="FERRISTOR_DATA")
@click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce", show_default=True,
              help="each finished point is saved here at once; a rerun skips finished points")
@click.option("--progress/--no-progress", default=True)
def reproduce(figure, seeds, epoch_scale, ks, settings, rounding, level_means, threads, workers, data_dir, out,
              progress):
    """Reproduce the paper's Fig. 5c–f; prints our numbers next to the paper's and writes plots."""
    from ..experiments import reproduce as rp
    from ..experiments.seeds import parse_seeds

    out = Path(out)
    kw = dict(hybrid={"rounding": rounding, "level_means": level_means}, data_dir=data_dir, threads=threads,
              progress=progress, workers=workers)
    if figure in ("fig5c", "fig5d", "fig5e", "all"):
        k_list = tuple(int(k) for k in ks.split(",")) if ks else rp.FIG5C_KS
        points = rp.reproduce_k_sweep(out / "fig5cde", parse_seeds(seeds or "0-9"), epoch_scale, k_list, **kw)
        click.echo(rp.k_table(points))
        click.echo(f"plots: {out / 'fig5cde'}/fig5c.png, fig5d.png, fig5e.png")
    if figure in ("fig5f", "all"):
        chosen = tuple(settings.split(",")) if settings else tuple(rp.SETTINGS)
        for s in chosen:
            if s not in rp.SETTINGS:
                from ..errors import ConfigError
                raise ConfigError("settings", s, "one of " + ", ".join(rp.SETTINGS))
        table = rp.reproduce_fig5f(out / "fig5f", parse_seeds(seeds or "0-4"), epoch_scale, chosen, **kw)
        click.echo(rp.fig5f_table(table))
        click.echo(f"plot: {out / 'fig5f' / 'fig5f.png'}")

"""``ferristor`` — train with the hybrid rule, simulate devices, reproduce the paper."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import FerristorError


class _Group(click.Group):
    """Turns ferristor's own errors into one clear line and exit status 2, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FerristorError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="ferristor")
def cli():
    """Simulate on-chip learning with the hybrid FeCAP/memristor memory (Martemucci et al. 2025)."""


@cli.command()
@click.option("--dataset", default="mnist", show_default=True, help="mnist, fashion-mnist or ecg")
@click.option("--mode", default="hm-var", show_default=True, help="fp, hm (ideal transfer) or hm-var (with variability)")
@click.option("--k", "k", type=int, default=100, show_default=True, help="transfer every k samples")
@click.option("--p", "p", type=float, default=None, help="update probability [default: the task's, digest §4]")
@click.option("--lr", type=float, default=None, help="learning rate [default: the task's, digest §4]")
@click.option("--epochs", type=float, default=10, show_default=True, help="epochs (a fraction runs part of one)")
@click.option("--batch", type=int, default=1, show_default=True, help="samples per update")
@click.option("--norm", type=click.Choice(["layer", "batch", "none"]), default=None,
              help="normalisation after each layer [default: the task's, digest §4]")
@click.option("--seeds", default="0", show_default=True, help="replicas, e.g. 0-4 or 0,3,7")
@click.option("--rounding", default="stochastic", show_default=True, help="stochastic, nearest or truncate")
@click.option("--init-scale", type=float, default=None, help="initial |hidden| bound as a fraction of 511 [default: RuleConfig's]")
@click.option("--hidden-lsb", type=float, default=None, help="real value of one hidden LSB [default: 2^-9]")
@click.option("--sigma", "sigma_levels", type=float, default=None, help="transfer σ in level units [default: 0.594]")
@click.option("--level-means", type=click.Choice(["ideal", "measured"]), default=None, help="level means of the noisy transfer")
@click.option("--transfer-model", type=click.Choice(["ideal", "table", "circuit"]), default=None, help="transfer model [default: by mode]")
@click.option("--skip-zero-updates", is_flag=True, help="do not count masked-in updates whose rounded change is 0")
@click.option("--skip-unchanged-transfers", is_flag=True, help="a transfer leaves an unchanged level unwritten")
@click.option("--eval-every", type=float, default=1.0, show_default=True, help="epochs between test evaluations")
@click.option("--test-limit", type=int, default=0, show_default=True, help="evaluate on the first N test samples (0 = all)")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads")
@click.option("--backend", default="auto", show_default=True, help="auto, numba or torch")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="FERRISTOR_DATA",
              help="data root holding mnist/, fashion-mnist/, mitdb/ [env FERRISTOR_DATA]")
@click.option("--out", type=click.Path(file_okay=False), default="runs/latest", show_default=True,
              help="folder for results.json and the checkpoint (a rerun resumes)")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def train(out, progress, skip_zero_updates, skip_unchanged_transfers, **opts):
    """Train R replicas online with the hybrid rule and report accuracy, ledger, energy and speed."""
    from ..experiments.config import task_config
    from ..experiments.summary import format_summary
    from ..experiments.train import train as run

    overrides = {k: v for k, v in opts.items() if v is not None}
    overrides["count_zero_updates"] = not skip_zero_updates
    overrides["transfer_writes_unchanged"] = not skip_unchanged_transfers
    cfg = task_config(overrides.pop("dataset"), overrides.pop("mode"), **overrides)
    results = run(cfg, out, progress=progress)
    click.echo(format_summary(results))
    click.echo(f"results: {Path(out) / 'results.json'}")


def _register_optional():
    from .compare import compare
    from .params import params
    from .reproduce import reproduce
    cli.add_command(reproduce)
    cli.add_command(params)
    cli.add_command(compare)
    from .report import register as register_report
    register_report(cli)  # report, lifetime
    try:
        from .device import device_group
        cli.add_command(device_group, "device")
    except ImportError:
        pass


_register_optional()


def main():
    cli()


if __name__ == "__main__":
    main()

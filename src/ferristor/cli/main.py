"""``ferristor`` — train with the hybrid rule, simulate devices, reproduce the paper."""
from __future__ import annotations

import math
from pathlib import Path

import click

from ..experiments.config import MAX_EPOCHS, TASKS
from ..backend import BACKENDS
from ..nn.config import MODES
from ..rule.config import INIT_SHAPES, ROUNDING_MODES, SAMPLERS
from ..sweeps.configs import default as D  # the config's defaults, not copies of them
from .common import FerristorGroup, FiniteFloat, NonEmptyPath, SeedList, cpu_count, explain_divergence, names_options


@click.group(cls=FerristorGroup)
@click.version_option(package_name="ferristor")
def cli():
    """Simulate on-chip learning with the hybrid FeCAP/memristor memory (Martemucci et al. 2025).

    Exit status: 0 done, 2 bad input or a refused run (one line naming the option), 1 an unexpected
    error (one line and the path of a log file with the traceback).
    """


@cli.command()
@click.option("--dataset", type=click.Choice(list(TASKS)), default=D("dataset"), show_default=True, help="the task")
@click.option("--mode", type=click.Choice(MODES), default=D("mode"), show_default=True,
              help="fp, hm (ideal transfer) or hm-var (with variability)")
@click.option("--k", "k", type=click.IntRange(min=1), default=D("rule.k"), show_default=True, help="transfer every k samples")
@click.option("--p", "p", type=FiniteFloat(0, 1, min_open=True), default=None,
              help="update probability [default: the task's, digest §4]")
@click.option("--lr", type=FiniteFloat(0, min_open=True), default=None, help="learning rate [default: the task's: 0.1 (digest §4); ECG 0.01, not the paper's 0.3 (RESULTS.md)]")
@click.option("--epochs", type=FiniteFloat(0, MAX_EPOCHS, min_open=True), default=D("epochs"), show_default=True,
              help="epochs (a fraction runs part of one)")
@click.option("--batch", type=click.IntRange(min=1), default=D("batch"), show_default=True,
              help="samples per update (at least 2 with --norm batch; at most the training samples)")
@click.option("--norm", type=click.Choice(["layer", "batch", "none"]), default=None,
              help="normalisation after each layer [default: the task's, digest §4]")
@click.option("--seeds", type=SeedList(), default="0", show_default=True,
              help="replicas, e.g. 0-4 or 0,3,7 (seeds 0…2^63−1; refused up front if they do not fit in memory)")
@click.option("--rounding", type=click.Choice(ROUNDING_MODES), default=D("rule.rounding"), show_default=True,
              help="how an update lands on the hidden grid (digest §4 [I]; `reproduce`'s default preset, paper, "
                   "rounds online runs to nearest: --rounding nearest trains its setting)")
@click.option("--k-unit", type=click.Choice(("inputs", "updates")), default=D("rule.k_unit"), show_default=True,
              help="what --k counts at --batch > 1: samples, or optimizer steps [I]")
@click.option("--batch-reduction", type=click.Choice(("mean", "sum")), default=D("rule.batch_reduction"), show_default=True,
              help="a mini-batch's loss: the mean or the sum of its samples' [I]")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=D("rule.sampler"), show_default=True,
              help="how the update masks are drawn: a word per weight, or geometric gaps (faster at small --p)")
@click.option("--init-scale", type=FiniteFloat(0, 1, min_open=True), default=None,
              help=f"initial |hidden| bound as a fraction of 511 [default: {D('rule.init_scale')}]")
@click.option("--init-shape", type=click.Choice(INIT_SHAPES), default=None,
              help="initial hidden weights: uniform, or normal with the same variance [default: uniform]")
@click.option("--hidden-lsb", type=FiniteFloat(0, min_open=True), default=None, help=f"real value of one hidden LSB [default: 2^{math.log2(D('rule.hidden_lsb')):g}]")
@click.option("--sigma", "sigma_levels", type=FiniteFloat(0), default=None, help=f"transfer σ in level units [default: {D('transfer.sigma_levels')}]")
@click.option("--level-means", type=click.Choice(["ideal", "measured"]), default=None, help="means of the analogue levels a transfer programs: 'ideal' (0…7 integers) or 'measured' (the compressive measured means); the ideal (hm) and table (hm-var) transfers apply them, the circuit transfer ignores them (its levels come from the device chain) [default: ideal]")
@click.option("--transfer-model", type=click.Choice(["ideal", "table", "circuit"]), default=None, help="transfer model [default: by mode]")
@click.option("--skip-zero-updates", is_flag=True, help="do not count masked-in updates whose rounded change is 0")
@click.option("--skip-unchanged-transfers", is_flag=True, help="a transfer leaves an unchanged level unwritten")
@click.option("--memristor-ops-unselected", type=click.IntRange(0, 2), default=None,
              help="operations a write costs the pair's memristor that does not take the level [default: RESET + SET "
                   "as on the other, digest §5's count; 1: RESET only, digest §3's transfer chain]")
@click.option("--eval-every", type=FiniteFloat(0, min_open=True), default=D("eval_every"), show_default=True,
              help="epochs between test evaluations")
@click.option("--test-limit", type=click.IntRange(min=0), default=D("test_limit"), show_default=True,
              help="evaluate on the first N test samples (0 = all)")
@click.option("--eval-batch", type=click.IntRange(min=1), default=D("eval_batch"), show_default=True,
              help="samples evaluated together; with BatchNorm each is normalised with its batch's statistics [I]")
@click.option("--validation", type=FiniteFloat(0, 1, max_open=True), default=D("validation"), show_default=True,
              help="fraction of the training set held out and evaluated beside the test set (choose hyperparameters on it)")
@click.option("--validation-seed", type=click.IntRange(min=0), default=D("validation_seed"), show_default=True,
              help="seed of the validation split (the same split for every replica)")
@click.option("--bias/--no-bias", default=D("network.bias"), show_default=True,
              help="a bias column per layer (a crossbar row driven by a constant input, counted in the ledger)")
@click.option("--output-norm/--no-output-norm", default=None,
              help="the normalisation after the output layer too [default: yes, the paper's 'after every layer']")
@click.option("--threads", type=click.IntRange(1, cpu_count()), default=D("threads"), show_default=True, help="CPU threads")
@click.option("--backend", type=click.Choice(BACKENDS), default=D("backend"), show_default=True, help="the kernels")
@click.option("--device", default=D("device"), show_default=True, help="torch device, e.g. cuda (checked before any work)")
@click.option("--data-dir", type=NonEmptyPath(file_okay=False), default=None, envvar="FERRISTOR_DATA",
              help="data root holding mnist/, fashion-mnist/, mitdb/ [env FERRISTOR_DATA]")
@click.option("--out", type=NonEmptyPath(file_okay=False), default="runs/latest", show_default=True,
              help="folder for results.json and the checkpoint (a rerun resumes; one run at a time)")
@click.option("--fresh", is_flag=True, help="discard the checkpoint and results in --out and start over")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="a spec file (TOML/YAML, as `ferristor sweep` reads; e.g. `ferristor device calibrate`'s) whose "
                   "[base] sets any config field; no grid")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="any config field, e.g. transfer.circuit.memristor.curve.sigma_c2c=0.05 (repeatable; "
                   "`ferristor params` lists them); over --config, never over an option given")
@names_options(**{"TransferConfig.model": "transfer_model", "transfer.model": "transfer_model", "out_dir": "out"})
def train(out, fresh, progress, config_file, sets, **_options):
    """Train R replicas online with the hybrid rule and report accuracy, ledger, energy and speed."""
    from ..experiments.summary import format_summary
    from ..experiments.train import train as run
    from .train_config import train_config

    cfg = train_config(click.get_current_context(), config_file, sets)
    # results.json is written at a run's end only, beside the final checkpoint, which is what the run
    # continues from: without it, a run trains again from step 0
    has_results = not fresh and _is_file(Path(out) / "results.json")
    finished = has_results and _is_file(Path(out) / "checkpoint.pt")
    recosted = _recosted(Path(out), cfg) if finished else []
    if has_results and not finished:
        click.echo(f"{out} holds results.json but no checkpoint.pt to continue from: training again from step 0 "
                   "(the same configuration gives the same results)")
    with explain_divergence("--lr"):
        results = run(cfg, out, progress=progress, fresh=fresh)
    if finished:  # the same config (another would have been refused): nothing was trained again
        click.echo(f"already complete: the results saved in {out}"
                   + (f", reported again with {', '.join(recosted)} (costs, ratings and operations per event: no training)" if recosted else "")
                   + " (--fresh trains again)")
    click.echo(format_summary(results))
    click.echo(f"results: {Path(out) / 'results.json'}")


def _recosted(out: Path, cfg) -> list[str]:
    """The ledger costs and ratings in which ``cfg`` differs from the finished run in ``out`` (the only
    differences a finished run takes without training again: ``run_folder.check_same_run``)."""
    from ..config_base import to_dict
    from ..errors import DataError
    from ..experiments import run_folder
    try:
        saved = run_folder.read_results(out / run_folder.RESULTS)["config"]
    except (DataError, OSError):  # the run's own checks say what is wrong with the folder
        return []
    return [f"{path}={new}" for path, _, new in run_folder.config_differences(saved, to_dict(cfg))
            if path in run_folder.report_only()]


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a path the system cannot look at (the run's own check of
    --out then says what is wrong with it)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _register():
    from .compare import compare
    from .compare_rules import compare_rules
    cli.add_command(compare_rules)
    from .params import params
    from .reproduce import reproduce
    cli.add_command(reproduce)
    cli.add_command(params)
    cli.add_command(compare)
    from .sweep import results, sweep
    cli.add_command(sweep)
    cli.add_command(results)
    from .report import register as register_report
    register_report(cli)  # report, lifetime
    from .device import device_group
    cli.add_command(device_group, "device")
    from .fig6 import fig6_command  # transfer learning (Fig. 6); ``reproduce fig6`` calls fig6.run_fig6
    from .pretrain import pretrain_command
    cli.add_command(pretrain_command)
    cli.add_command(fig6_command)


_register()


def main():
    """The commands, as the console script (``ferristor.cli.entry``) runs them."""
    from . import entry
    entry()


if __name__ == "__main__":
    main()

"""``ferristor sweep [SPEC] [--grid PATH=V1,V2 ...]`` and ``ferristor results SWEEP``."""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import ConfigError
from .common import cpu_count, names_options, prepare_file_folder, prepare_folder


@click.command("sweep")
@click.argument("spec_file", required=False, type=click.Path(dir_okay=False))
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="an axis: a config path and its values, e.g. rule.k=1,10,100 (repeat to cross axes)")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="a base config value, e.g. epochs=0.5 (repeatable)")
@click.option("--seeds", default=None, help="seeds, one replica each, e.g. 0-9 [default: the spec's, else 0]")
@click.option("--seeds-per-trial", type=int, default=None,
              help="split the seeds into trials of this many [default: all seeds of a point in one trial]")
@click.option("--threads", type=int, default=None,
              help="CPU threads per trial (Ray: CPUs per task) [default: 1]; at most this machine's cores where "
                   "trials run here, any count with --ray-address (Ray puts each task on a node with that many free CPUs)")
@click.option("--workers", type=int, default=1, show_default=True,
              help="local worker processes, trials at once (trials that all run on a CUDA device: threads of this "
                   "process, each on its own CUDA stream)")
@click.option("--in-process", is_flag=True, help="run trials one by one in this process (no worker processes)")
@click.option("--ray", "use_ray", is_flag=True, help="run trials as Ray tasks on a Ray started here on this machine's cores")
@click.option("--ray-cpus", type=int, default=None, help="with --ray: CPUs the local Ray may use [default: all]")
@click.option("--ray-address", default=None, metavar="ADDR", help="run trials on the Ray cluster at ADDR (e.g. 10.0.0.1:6379 or auto)")
@click.option("--max-retries", type=int, default=2, show_default=True, help="retries of a failing trial before it is recorded as failed")
@click.option("--retry-failed", is_flag=True, help="try trials recorded as failed again")
@click.option("--merge", is_flag=True,
              help="add this sweep's trials to an --out holding another sweep (by default refused: its results "
                   "would mix both; a spec sharing a point, a trial's config seeds aside, with the folder's trials "
                   "is the same sweep and resumes without it)")
@click.option("--dry-run", is_flag=True, help="list the trials and an estimate of their CPU time; run nothing")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, envvar="FERRISTOR_DATA",
              help="data root, read by this process only: workers get the data from it [env FERRISTOR_DATA]")
@click.option("--out", type=click.Path(file_okay=False), default="runs/sweep", show_default=True,
              help="sweep folder: its results store sweep.sqlite; a rerun resumes")
@click.option("--progress/--no-progress", default=True,
              help="show a progress bar (without it, a line per trial's start, end, retry and failure still prints)")
@names_options()
def sweep(spec_file, grids, sets, seeds, seeds_per_trial, threads, workers, in_process, use_ray, ray_cpus, ray_address,
          max_retries, retry_failed, merge, dry_run, data_dir, out, progress):
    """Run a sweep over any config fields: a SPEC file (TOML/YAML) and/or --grid axes; every trial's
    seeds train as replicas in one process; results go to OUT/sweep.sqlite (see 'ferristor results')."""
    from ..sweeps import spec as sp
    from ..sweeps.progress import LINES
    from ..sweeps.run import check_folder, plan, run_plan

    for name, value, lo in (("--workers", workers, 1), ("--max-retries", max_retries, 0), ("--ray-cpus", ray_cpus, 1)):
        if value is not None and value < lo:
            raise sp.SpecError(f"{name} {value}: expected an integer ≥ {lo}")
    _check_executor(workers, in_process, use_ray, ray_cpus, ray_address)
    on_cluster = ray_address is not None
    spec = sp.build_spec(spec_file, sets, grids, seeds, seeds_per_trial, check_values=not on_cluster,
                         options={"--threads": ("threads", threads)} if threads is not None else None)
    if on_cluster:
        node_threads = _node_threads(spec)
        sp.check(spec)
    if use_ray and ray_cpus is not None and (n := _most_threads(spec)) > ray_cpus:
        # Ray would hold such a task back for ever: no node of the local Ray fits it
        raise sp.SpecError(f"{_threads_as_given(spec, n)} with --ray-cpus {ray_cpus}: each trial asks Ray for {n} CPUs "
                           f"and would never start; give --ray-cpus {n} or more, or fewer threads")
    too_many = _too_many_workers(spec, workers, in_process or use_ray or on_cluster)
    if too_many and not dry_run:
        raise sp.SpecError(too_many)
    if (use_ray or on_cluster) and not dry_run:  # before creating --out or loading any data
        from ..sweeps.ray_executor import check_installed, check_reachable
        check_installed("--ray" if use_ray else f"--ray-address {ray_address}")
        if on_cluster:
            check_reachable(ray_address)
    if dry_run:
        check_folder(spec, out, merge)  # what a run would refuse, said before listing its trials
        p = plan(spec, Path(out), data_dir)
        if on_cluster:
            _set_node_threads(spec, p, node_threads)
        at_once, note = _at_once(p, workers, in_process, use_ray, ray_cpus, ray_address)
        # a plan may be for a larger machine: said, not refused
        note = f"this machine has {cpu_count()} core(s): a run here refuses --workers {workers}" if too_many else note
        click.echo(p.dry_run_text(workers=at_once, note=note, retry_failed=retry_failed))
        return
    from ..sweeps.driver import sweep_lock
    prepare_folder(out, "out")  # created and writable, or refused naming --out (as train's), before any work
    with sweep_lock(out):  # before loading data: a second driver, or a train on this --out, is refused at once
        check_folder(spec, out, merge)  # a train run's folder, or another sweep's, is refused before any work
        p = plan(spec, Path(out), data_dir)
        if on_cluster:
            _set_node_threads(spec, p, node_threads)
        outcome = run_plan(p, workers=workers, in_process=in_process, ray=use_ray,
                           ray_address=ray_address, ray_cpus=ray_cpus, max_retries=max_retries,
                           retry_failed=retry_failed, progress=progress or LINES)
    from ..sweeps.driver import summary_lines
    from ..sweeps.run import trial_table
    click.echo(trial_table(p, outcome))
    for line in summary_lines(outcome):
        click.echo(line)
    click.echo(f"results: ferristor results {out}")
    if outcome.count("failed"):
        raise SystemExit(1)


def _check_executor(workers: int, in_process: bool, use_ray: bool, ray_cpus: int | None, ray_address: str | None) -> None:
    """One executor, and none of the options it would ignore: Ray takes neither --workers (it runs as
    many trials at once as it has CPUs for) nor, joining a cluster, --ray-cpus (a local Ray's), and
    --in-process no --workers above 1 (it runs one trial at a time, whatever --workers says)."""
    from ..sweeps.spec import SpecError
    if ray_address is not None and not ray_address.strip():  # '' would otherwise mean "not given": worker processes
        raise SpecError(f"--ray-address {ray_address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    if sum((in_process, use_ray, ray_address is not None)) > 1:
        raise SpecError("--in-process, --ray and --ray-address: choose one executor")
    if in_process and workers > 1:
        raise SpecError(f"--workers {workers} and --in-process: choose one executor (--in-process runs one trial at a "
                        f"time in this process; --workers {workers} without it runs {workers} worker processes)")
    if ray_cpus is not None and not use_ray:
        raise SpecError(f"--ray-cpus {ray_cpus}: only with --ray (the CPUs of a Ray started here)"
                        + ("; the cluster at --ray-address has the CPUs its nodes declare" if ray_address is not None else ""))
    from click.core import ParameterSource
    given = click.get_current_context().get_parameter_source("workers") is not ParameterSource.DEFAULT
    if given and (use_ray or ray_address is not None):
        bound = "its --ray-cpus allow" if use_ray else "the cluster's CPUs allow"
        raise SpecError(f"--workers {workers} and {'--ray' if use_ray else '--ray-address'}: choose one executor (Ray runs "
                        f"as many trials at once as {bound}, --threads CPUs each)")


def _most_threads(spec) -> int:
    """The most threads a trial of the sweep asks for (a task's num_cpus on Ray)."""
    from ..sweeps.configs import default
    return max(int(o.get("threads", default("threads"))) for _, o in spec.points_overrides())


def _threads_as_given(spec, n: int) -> str:
    where = spec.where("threads")
    from ..sweeps.spec import by_option
    return f"{where} {n}" if by_option(where) else f"{where}={n}"


@dataclass
class _NodeThreads:
    """The threads a spec gives, set aside by :func:`_node_threads`: its base, grid and points as given."""
    base: dict
    grid: dict
    points: list


def _node_threads(spec) -> _NodeThreads | None:
    """With --ray-address, the threads the spec gives — --threads, --set threads=…, --grid threads=…,
    a spec file's [base], [grid] or [[points]] — are CPUs of a cluster node, not of this machine: taken
    out of the spec while it is checked and planned here (TrainConfig bounds threads by this machine's
    cores) and checked only as counts ≥ 1, the grid's and the points' as the base's; a node checks them
    against its own cores, and Ray puts each task on a node with that many CPUs (num_cpus).
    :func:`_set_node_threads` gives them back. None where the spec gives no threads."""
    if "threads" not in spec.base and "threads" not in spec.grid and not any("threads" in pt for pt in spec.points):
        return None
    from ..errors import ConfigError
    from ..sweeps.spec import SpecError, by_option

    def check(n, named) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(named(ConfigError("threads", n, "an integer ≥ 1 (CPUs of a node of the Ray cluster)")))
    where = spec.where("threads")
    option = by_option(where)  # an option of its own (--threads) names the field
    if "threads" in spec.base:
        check(spec.base["threads"], lambda e: e.render(lambda f: where) if option else f"{where}: {e}")
    for n in spec.grid.get("threads", []):  # one value at most (spec.build_spec refuses more), named as check names it
        check(n, lambda e: f"{where}={n!r}: {e}")
    for pt in spec.points:
        if "threads" in pt:
            check(pt["threads"], lambda e: f"the point {json.dumps(pt)}: {e}")
    taken = _NodeThreads(dict(spec.base), dict(spec.grid), [dict(pt) for pt in spec.points])
    spec.base.pop("threads", None)
    spec.grid.pop("threads", None)
    spec.points = [{k: v for k, v in pt.items() if k != "threads"} for pt in spec.points]  # none differ in threads only
    return taken


def _set_node_threads(spec, p, taken: _NodeThreads | None) -> None:
    """Give the spec back the threads :func:`_node_threads` took out, as the store records it, and
    each planned trial its point's threads and params (threads are an execution field, in no trial's
    key: points that differ only in them are refused, ``spec._no_execution_axes``)."""
    if taken is None:
        return
    from ..experiments.sweep import normalise
    spec.base, spec.grid, spec.points = taken.base, taken.grid, taken.points
    first: dict[str, tuple[dict, object]] = {}
    for params, overrides in spec.points_overrides():
        without = {k: v for k, v in params.items() if k != "threads"}
        first.setdefault(json.dumps(normalise(without), sort_keys=True), (params, overrides.get("threads")))
    for t in p.trials:
        point = {k: v for k, v in t.params.items() if k != "seeds"}
        params, n = first[json.dumps(point, sort_keys=True)]
        t.params = normalise({**params, **({"seeds": t.params["seeds"]} if "seeds" in t.params else {})})
        if n is not None:
            t.config["threads"] = n


def _at_once(p, workers: int, in_process: bool, use_ray: bool, ray_cpus: int | None,
             ray_address: str | None) -> tuple[int, str | None]:
    """How many trials the chosen executor runs at once, for --dry-run's wall time, and a note on it.
    The threads are the planned trials' (num_cpus of their tasks)."""
    if in_process:
        return 1, None
    each = max((int(t.config.get("threads", 1)) for t in p.trials), default=1)
    if use_ray:  # Ray packs tasks of num_cpus = threads into its CPUs
        cpus = ray_cpus or cpu_count()
        return max(1, cpus // each), f"a Ray of {cpus} CPU(s) here, {each} per trial"
    if ray_address is not None:  # the cluster's size is not known before joining it: the best case, said so
        return len(p.trials), (f"at best: the Ray cluster at {ray_address} running every trial at once, "
                               f"{each} CPU(s) each; fewer free CPUs take longer")
    return workers, None


def _too_many_workers(spec, workers: int, elsewhere: bool) -> str | None:
    """Why ``--workers`` exceeds this machine, as ``reproduce`` refuses it: worker processes for trials
    on the CPU beyond its cores only take turns. None with trials that all run on CUDA devices (threads
    sharing the GPU) or trials run elsewhere (in this process, on Ray)."""
    from ..sweeps.executors import share_a_gpu
    from ..sweeps.trials import devices_of
    if elsewhere or workers <= cpu_count() or share_a_gpu(devices_of(spec), workers):
        return None
    return (f"--workers {workers}: at most {cpu_count()} (this machine's cores) for trials on the CPU; trials that "
            f"all run on a CUDA device (--set device=cuda) share it as threads, more than the cores")


@click.command("results")
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@click.option("--where", "conditions", multiple=True, metavar="COLUMN OP VALUE",
              help="keep rows where e.g. rule.k=100, mode!=fp, test_accuracy>0.9 (repeat: all must hold)")
@click.option("--final", "final_only", is_flag=True, help="only each trial's last evaluation")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "parquet"]), default=None,
              help="[default: the one --output's suffix names (.csv, .parquet), else table]")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="write to this file, in a folder that exists (parquet needs one) [default: print]")
@click.option("--import", "imports", multiple=True, type=click.Path(), metavar="RUN",
              help="first import a finished run (its folder or results.json) into the store (repeatable)")
@names_options(format="fmt")
def results(sweep_dir, conditions, final_only, fmt, output, imports):
    """Print or export SWEEP's results: one row per trial × seed × evaluation with the resolved config."""
    from ..atomic import atomic_write
    from ..sweeps import table as tb
    from ..sweeps.store import open_store
    for text in conditions:  # before any work: a percent threshold would silently keep no row (or all)
        tb.check_condition(text)
    fmt = _output_format(fmt, output)
    if output:
        parent = Path(output).parent
        if not parent.exists():  # not created: a typo in it would go unnoticed, the file written elsewhere
            raise ConfigError("output", output, reason=f"its folder {parent} does not exist (create it first)")
        prepare_file_folder(output, "output")  # before any work, as train's --out

    if imports:
        from ..sweeps.driver import sweep_lock
        from ..sweeps.importer import import_run
        with sweep_lock(sweep_dir):
            store = open_store(sweep_dir)
            try:
                for path in imports:
                    t = import_run(store, path)
                    click.echo(f"imported {path} as trial {t.key}", err=True)
            finally:
                store.close()
    store = open_store(sweep_dir, readonly=True)
    try:
        every = tb.tidy_rows(store, final_only)
        rows = tb.where(every, conditions)
        counts = collections.Counter(r["status"] for r in store.status().values())
    finally:
        store.close()
    from ..sweeps.run import driver_running
    running = "running" if driver_running(Path(sweep_dir)) else "interrupted"  # no driver: none runs now
    unfinished = {name: counts[st] for st, name in (("running", running), ("pending", "pending"), ("failed", "failed"))
                  if counts[st]}
    said = ", ".join(f"{n} {st}" for st, n in unfinished.items())
    if not every:  # nothing finished yet: how far the sweep is, not "no trial matches"
        empty = f"no finished trial yet ({said})" if said else "no trial in the store"
    else:
        empty = "no finished trial matches" + (f" ({said} not shown)" if said else "")
    if every and (n := counts["running"] + counts["pending"]):
        click.echo(f"note: {n} trial{'s' if n != 1 else ''} not finished ({said}): their rows come when they finish",
                   err=True)
    if fmt == "parquet":
        tb.to_parquet(rows, output, name="output")
        click.echo(f"{len(rows)} rows: {output}", err=True)
        return
    text = tb.to_csv(rows) if fmt == "csv" else tb.to_text(rows, empty) + "\n"
    if output:
        with atomic_write(output, "w", name="output") as f:
            f.write(text)
        click.echo(f"{len(rows)} rows: {output}", err=True)
    else:
        click.echo(text, nl=False)


# the format an --output's suffix names; None: one that results does not write
_SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": None, ".jsonl": None, ".tsv": None, ".xlsx": None}


def _output_format(fmt: str | None, output: str | None) -> str:
    """--format, else the format --output's suffix names, else table. A suffix naming another format
    than --format's, or one results does not write, is refused: the file would not hold what its
    name says (a table's text in out.parquet)."""
    if output is None:
        if fmt == "parquet":
            raise ConfigError("format", fmt, reason="give a file with --output (Parquet is not printed)")
        return fmt or "table"
    suffix = Path(output).suffix.lower()
    named = _SUFFIX_FORMATS.get(suffix, "table")
    if fmt is None and named is None:
        raise ConfigError("output", output, reason=f"results writes no {suffix} file: name a .csv, .parquet or text "
                                                   f"file, or give --format (table, csv or parquet)")
    if fmt is not None and suffix in _SUFFIX_FORMATS and named is not None and fmt != named:
        raise ConfigError("format", fmt, reason=f"does not match --output {output} (a {suffix} file holds {named}): "
                                                f"give --format {named}, or leave --format out")
    return fmt or named

"""`ferristor device ...`: the device-level figures of the paper (Figs. 2–4) as PNG + CSV, and
``calibrate``: the transfer chain fitted to a user's measured conductances, as a spec file to train with.

Each command writes ``<name>.png`` and ``<name>.csv`` into ``--out`` atomically (``ferristor.atomic``:
tmp + os.replace). A failed ``calibrate`` leaves nothing new behind: no file, and no folder it created.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import inspect
import io
import json
import math
import os
import shlex
import warnings
from typing import NamedTuple
from pathlib import Path

import click
import torch

from ..circuit.charge_transfer import (ABSOLUTE_COLUMN, DIFFERENTIAL_COLUMN, PAPER_LEVEL_MEANS_US, ChargeTransferConfig,
                                       CircuitTransfer, calibrate, chain_problem, changed_settings, implausible_fit,
                                       level_means_problem, level_statistics, level_summary, msb_bits,
                                       read_transfer_measurements, sigma_problem, tl_voltage)
from ..circuit.layout import PAPER_LAYOUT
from ..atomic import atomic_write
from ..config_base import flatten
from ..errors import ConfigError, DataError, FerristorWarning
from ..physics.fecap import FeCAPArray, FeCAPModelConfig, switching_energy_fj
from ..physics.memristor import MemristorArray
from ..physics.presets import martemucci2025
from .common import FerristorGroup, NonEmptyPath, names_options, one_line, require_plot


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_write(path) as fh:  # the project's helper: a whole file or none, never a partial one
        fh.write(data)


def _figure_files(out: Path, name: str, fig, header: list[str], rows: list) -> dict[Path, bytes]:
    """``<name>.png`` and ``<name>.csv``, rendered in memory (the figure is closed): path → contents."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    _plt().close(fig)
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(header)
    w.writerows(rows)
    return {out / f"{name}.png": buf.getvalue(), out / f"{name}.csv": text.getvalue().encode()}


def _save(out: Path, name: str, fig, header: list[str], rows: list) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = _figure_files(out, name, fig, header, rows)
    for path, data in files.items():
        _atomic_write(path, data)
    return list(files)


def _woken_array(n: int, seed: int, cfg: FeCAPModelConfig) -> FeCAPArray:
    return FeCAPArray(n, cfg, torch.Generator().manual_seed(seed))


def fecap_read(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2b: BL voltage of stored 0s and 1s over the cells, with Vref and the error rate vs Vref."""
    a = _woken_array(samples, seed, (chain or martemucci2025()).fecap)
    ones = torch.ones(a.n, dtype=torch.bool)
    v0, v1 = a.bitline_voltage(~ones), a.bitline_voltage(ones)
    vrefs = torch.linspace(0.10, 0.40, 61, dtype=torch.float64)
    err = [(float((v0 > r).double().mean()), float((v1 <= r).double().mean())) for r in vrefs]
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    ax.hist(v0.numpy() * 1e3, bins=80, alpha=0.7, label='stored "0"')
    ax.hist(v1.numpy() * 1e3, bins=80, alpha=0.7, label='stored "1"')
    ax.axvline(a.config.sense.vref_v * 1e3, color="k", ls="--", label="Vref")
    ax.set(xlabel="bit-line voltage (mV)", ylabel="cells", title=f"FeCAP read, {a.n} cells, MW median {float((v1 - v0).median()) * 1e3:.0f} mV")
    ax.legend()
    bx.semilogy(vrefs.numpy() * 1e3, [max(e0 + e1, 1e-6) for e0, e1 in err])
    bx.set(xlabel="Vref (mV)", ylabel="bit error rate (floor 1e-6)", title="read errors vs Vref")
    rows = [[i, float(v0[i]), float(v1[i])] for i in range(a.n)]
    return _save(out, "fecap-read", fig, ["cell", "v_bl_0_V", "v_bl_1_V"], rows)


def fecap_energy(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2c: switching energy per bit vs pulse width at 2.75 / 3.0 / 3.25 V."""
    cfg = (chain or martemucci2025()).fecap
    widths = torch.logspace(-9, -5, 41, dtype=torch.float64)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    rows = []
    for v in (2.75, 3.0, 3.25):
        e = switching_energy_fj(v, widths, cfg)
        ax.semilogx(widths.numpy(), e.numpy(), marker="o", ms=3, label=f"{v} V")
        rows += [[v, float(t), float(x)] for t, x in zip(widths, e)]
    ax.set(xlabel="pulse width (s)", ylabel="switching energy (fJ/bit)", title="E = 2Pr·S·V·f(V, t)")
    ax.legend()
    return _save(out, "fecap-energy", fig, ["v_prog_V", "pulse_width_s", "energy_fJ"], rows)


def fecap_endurance(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2d: memory window (median, worst) and bit failures vs cycles, conditions A and B."""
    cycles = torch.logspace(0, 7, 29, dtype=torch.float64)
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    rows = []
    g = torch.Generator().manual_seed(seed + 1)
    for cond, color in (("A", "C3"), ("B", "C0")):
        base = (chain or martemucci2025()).fecap
        cfg = FeCAPModelConfig(base.cell, base.switching, base.wake_up, dataclasses.replace(base.fatigue, condition=cond),
                               base.sense)
        a = _woken_array(samples, seed, cfg)
        bits = torch.rand(a.n, generator=g) < 0.5
        med, worst, fails = [], [], []
        for n in cycles:
            a.cycles.fill_(float(n))
            ones = torch.ones(a.n, dtype=torch.bool)
            mw = a.bitline_voltage(ones) - a.bitline_voltage(~ones)
            a.write(bits)
            fails.append(int((a.read(generator=g) != bits).sum()))
            med.append(float(mw.median()))
            worst.append(float(mw.min()))
            rows.append([cond, float(n), med[-1], worst[-1], fails[-1]])
        ax.semilogx(cycles.numpy(), [m * 1e3 for m in med], color=color, label=f"{cond} median")
        ax.semilogx(cycles.numpy(), [m * 1e3 for m in worst], ls="--", color=color, label=f"{cond} worst")
        bx.semilogx(cycles.numpy(), fails, marker="o", ms=3, color=color, label=cond)
    ax.set(xlabel="cycles", ylabel="memory window (mV)", title="FeCAP endurance")
    bx.set(xlabel="cycles", ylabel=f"bit failures / {samples}", title="read failures")
    ax.legend(); bx.legend()
    return _save(out, "fecap-endurance", fig, ["condition", "cycles", "mw_median_V", "mw_worst_V", "bit_failures"], rows)


def _formed(n: int, seed: int, chain: ChargeTransferConfig | None) -> tuple[MemristorArray, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    m = MemristorArray(n, (chain or martemucci2025()).memristor, g)
    m.form(None, g)
    return m, g


def memristor_icc(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2f: conductance vs compliance current (median and 10–90 % band)."""
    iccs = torch.linspace(0, 100, 21, dtype=torch.float64)
    m, g = _formed(samples, seed, chain)
    rows, med, lo, hi = [], [], [], []
    for i in iccs:
        m.reset(None, g)
        m.set(torch.full((m.n,), float(i)), None, g)
        r = m.read(None, g)
        q = torch.quantile(r, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        lo.append(float(q[0])); med.append(float(q[1])); hi.append(float(q[2]))
        rows.append([float(i), float(r.mean()), float(r.std()), lo[-1], med[-1], hi[-1]])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.fill_between(iccs.numpy(), lo, hi, alpha=0.3, label="10–90 %")
    ax.plot(iccs.numpy(), med, marker="o", label="median")
    ax.set(xlabel="compliance current Icc (µA)", ylabel="conductance (µS)", title="SET conductance vs Icc")
    ax.legend()
    return _save(out, "memristor-icc", fig, ["icc_uA", "mean_uS", "std_uS", "p10_uS", "median_uS", "p90_uS"], rows)


MAX_LEGEND_LEVELS = 16  # beyond, a legend entry a level hides the histograms


def memristor_levels(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2g: the programmable, overlapping conductance levels (one per compliance current of
    memristor.curve.level_icc_ua: the paper's 8 by default), ``samples`` devices a level."""
    icc = (chain or martemucci2025()).memristor.curve.level_icc_ua
    n = len(icc)
    m, g = _formed(n * samples, seed, chain)
    level = torch.arange(n).repeat_interleave(samples)
    m.program_level(level, None, g)
    r = m.read(None, g).view(n, -1)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in range(n):
        ax.hist(r[k].numpy(), bins=60, alpha=0.6, label=f"L{k} ({icc[k]:.3g} µA)")
    ax.set(xlabel="conductance (µS)", ylabel="devices", title=f"{n} memristor levels")
    if n <= MAX_LEGEND_LEVELS:
        ax.legend(fontsize=7)
    rows = [[int(level[i]), float(r.flatten()[i])] for i in range(level.numel())]
    return _save(out, "memristor-levels", fig, ["level", "conductance_uS"], rows)


ENDURANCE_ICC_UA = 67.0  # compliance of the SETs in Fig. 2h's cycling: the digest's HCS example, Icc ≈ 67 µA (§1)


def memristor_endurance(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 2h: HCS and LCS vs SET/RESET cycles; the window closes around 1e5."""
    cycles = torch.logspace(0, 6, 25, dtype=torch.float64)
    m, g = _formed(samples, seed, chain)
    icc = torch.full((m.n,), ENDURANCE_ICC_UA)
    rows, hcs, lcs = [], [], []
    for n in cycles:
        m.cycles.fill_(float(n))
        m.reset(None, g)
        lcs.append(float(m.read(None, g).median()))
        m.set(icc, None, g)
        hcs.append(float(m.read(None, g).median()))
        rows.append([float(n), hcs[-1], lcs[-1]])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(cycles.numpy(), hcs, marker="o", ms=3, label="HCS")
    ax.loglog(cycles.numpy(), lcs, marker="s", ms=3, label="LCS")
    ax.set(xlabel="SET/RESET cycles", ylabel="median conductance (µS)", title="memristor endurance")
    ax.legend()
    return _save(out, "memristor-endurance", fig, ["cycles", "hcs_median_uS", "lcs_median_uS"], rows)


def transfer_line(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 3e: V_TL vs switched capacitor area (S_min units), with cell-to-cell spread."""
    cfg = chain or martemucci2025()
    g = torch.Generator().manual_seed(seed)
    rows, mean, std = [], [], []
    for level in range(8):
        bits = msb_bits(torch.full((samples,), level))
        f = torch.exp(cfg.fecap.cell.pr_sigma_ln * torch.randn(samples, 7, generator=g, dtype=torch.float64))
        v = tl_voltage(bits, f, cfg)
        mean.append(float(v.mean())); std.append(float(v.std()))
        rows.append([level, level * cfg.fecap.cell.area_um2, mean[-1], std[-1]])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar([r[1] for r in rows], mean, yerr=std, marker="o", capsize=3)
    ax.set(xlabel="switched capacitor area (µm²)", ylabel="V_TL (V)", title="transfer-line voltage")
    return _save(out, "transfer-line", fig, ["area_units", "area_um2", "v_tl_mean_V", "v_tl_std_V"], rows)


def transfer_levels(out: Path, seed: int, samples: int, chain: ChargeTransferConfig | None = None) -> list[Path]:
    """Fig. 4: the 15 transferred differential levels (G+ − G−) with the paper's means."""
    t = CircuitTransfer(chain or martemucci2025())
    g = torch.Generator().manual_seed(seed)
    data, rows = [], []
    for lvl in range(-7, 8):
        gsel = t.conductance(torch.full((samples,), abs(lvl)), g)
        g_other = t.conductance(torch.zeros(samples, dtype=torch.long), g)  # the unselected device: LCS
        diff = (gsel - g_other) * (1 if lvl >= 0 else -1)
        data.append(diff.numpy())
        rows += [[lvl, float(x)] for x in diff]
    paper = [(-1 if l < 0 else 1) * (PAPER_LEVEL_MEANS_US[abs(l)] - PAPER_LEVEL_MEANS_US[0]) for l in range(-7, 8)]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.boxplot(data, positions=list(range(-7, 8)), widths=0.6, showfliers=False)
    ax.plot(list(range(-7, 8)), paper, "r*", ms=9, label="paper means (Fig. 4)")
    ax.set(xlabel="transferred level", ylabel="G+ − G− (µS)", title="DAC-free transfer: 15 levels")
    ax.legend()
    return _save(out, "transfer-levels", fig, ["level", "g_diff_uS"], rows)


# name → (function, default samples, one-line help for the command list)
FIGURES = {
    "fecap-read": (fecap_read, 16384, "FeCAP bit-line voltages and errors vs Vref (Fig. 2b)"),
    "fecap-energy": (fecap_energy, 1, "FeCAP switching energy vs pulse width (Fig. 2c)"),
    "fecap-endurance": (fecap_endurance, 4096, "FeCAP memory window and failures vs cycles (Fig. 2d)"),
    "memristor-icc": (memristor_icc, 2000, "memristor conductance vs compliance current (Fig. 2f)"),
    "memristor-levels": (memristor_levels, 2000, "the memristor's programmable conductance levels (Fig. 2g)"),
    "memristor-endurance": (memristor_endurance, 2000, "memristor HCS/LCS vs SET/RESET cycles (Fig. 2h)"),
    "transfer-line": (transfer_line, 2000, "transfer-line voltage vs switched area (Fig. 3e)"),
    "transfer-levels": (transfer_levels, 2000, "the 15 transferred differential levels (Fig. 4)"),
}
MAX_SAMPLES = 1_000_000  # per figure; beyond it the CSVs alone take minutes to write
MAX_SEED = 2**64 - 2  # torch seeds are 64-bit; fecap-endurance also draws from seed + 1

device_group = FerristorGroup("device", short_help="Device figures (Figs. 2–4); fit the chain to measurements", help="Device-level figures of the hybrid memory (Figs. 2–4), PNG + CSV; "
                                              "calibrate: the transfer chain fitted to measured conductances.")


def _prepared(out: Path) -> Path:
    """The output folder, created and writable, before any simulation (errors name --out)."""
    from ..experiments.run_folder import prepare
    require_plot("ferristor device")
    return prepare(out)


def _out_option(f):
    return click.option("--out", "out", required=True, type=NonEmptyPath(file_okay=False, path_type=Path),
                        help="output folder (created if needed)")(f)


def _seed_option(f):
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="random seed")(f)


def _chain_options(f):
    """``--config`` and ``--set``: the device chain of a spec file (a ``calibrated.toml``) and single
    settings, as ``train`` takes them; the figures read its ``transfer.circuit.*`` settings."""
    f = click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                     help="a device-chain setting, e.g. transfer.circuit.memristor.curve.sigma_c2c=0.2 "
                          "(ferristor params --paths transfer.circuit); repeatable, after --config")(f)
    return click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, metavar="SPEC_FILE",
                        help="the device chain of a spec file's [base], e.g. device calibrate's calibrated.toml")(f)


CHAIN_PREFIX = "transfer.circuit."
# Settings of a spec file's [base] outside the chain that say it trains this chain (device calibrate
# writes them): taken as they are, no figure reading them. Any other value of them trains another
# transfer, and any other setting no figure reads: refused, as a --set of it is.
TRAINS_THE_CHAIN = {"mode": "hm-var", "transfer.model": "circuit"}


def _not_drawn(config_file: Path, spec) -> None:
    """Refuse a spec file whose [base] sets what the figures do not read, naming the file and each path."""
    unread = [(p, v) for p, v in spec.base.items()
              if not p.startswith(CHAIN_PREFIX) and TRAINS_THE_CHAIN.get(p, object()) != v]
    if unread:
        from ..sweeps.spec import SpecError
        shown = ", ".join(f"{p} = {v!r}" for p, v in unread)
        raise SpecError(f"--config {config_file}: its [base] sets {shown}, which the device figures do not read: they "
                        f"draw the device chain only ({CHAIN_PREFIX}…; ferristor params --paths transfer.circuit lists "
                        "them; mode 'hm-var' and transfer.model 'circuit' may stay): remove the other settings, or give "
                        "a file of the chain alone, e.g. device calibrate's calibrated.toml")


def _chain(config_file: Path | None, sets: tuple[str, ...]) -> ChargeTransferConfig | None:
    """The chain the figures draw: the preset, then the file's ``transfer.circuit.*``, then ``--set``
    (None: the preset). A setting outside the chain, by ``--set`` or in the file, is refused: no figure
    reads it (but the file's ``TRAINS_THE_CHAIN``)."""
    if config_file is None and not sets:
        return None
    from ..sweeps import configs
    from ..sweeps.spec import SpecError, blame, build_spec
    spec = build_spec(config_file, sets, (), check_values=False)
    if spec.grid or spec.points:
        raise SpecError(f"--config {config_file}: its [grid]/[[points]] make several configs; the figures draw one "
                        "chain: keep only [base], or --set the setting")
    for text in sets:
        path = text.split("=", 1)[0].strip()
        if not path.startswith(CHAIN_PREFIX):
            raise SpecError(f"--set {text}: the device figures read the device chain only ({CHAIN_PREFIX}…; "
                            "ferristor params --paths transfer.circuit lists them)")
    if config_file is not None:
        _not_drawn(config_file, spec)
    chain = {p: v for p, v in spec.base.items() if p.startswith(CHAIN_PREFIX)}
    try:
        with warnings.catch_warnings():  # training's "no effect" notes: the figures read every chain setting
            warnings.simplefilter("ignore", FerristorWarning)
            return configs.resolve({**chain, "transfer.model": "circuit"}).transfer.circuit
    except ConfigError as e:
        who = blame(spec, chain, e)
        if who is None:
            raise
        raise SpecError(f"{who}: {e}") from None


# The figures that draw the transfer chain's levels: a chain that programs no distinguishable levels
# warns before them, as training warns of it (``chain_problem``: the one check of both).
DRAWS_THE_CHAIN_LEVELS = ("transfer-levels",)


def _warn_if_no_levels(chain: ChargeTransferConfig | None) -> None:
    problem = chain_problem(chain) if chain is not None else None  # the preset is calibrated
    if problem:
        warnings.warn(FerristorWarning(problem))


def _command(name: str, fn, default_samples: int, short: str) -> click.Command:
    @_out_option
    @_seed_option
    @click.option("--samples", type=click.IntRange(1 if default_samples == 1 else 2, MAX_SAMPLES),
                  default=default_samples, show_default=True,
                  help="cells/devices/draws simulated (at least 2 where a spread is drawn)")
    @_chain_options
    @names_options(out_dir="out")
    def run(out: Path, seed: int, samples: int, config_file: Path | None, sets: tuple[str, ...]):
        chain = _chain(config_file, sets)
        if name in DRAWS_THE_CHAIN_LEVELS:
            _warn_if_no_levels(chain)
        for p in fn(_prepared(out), seed, samples, chain):
            click.echo(str(p))
    return click.command(name, help=fn.__doc__, short_help=short)(run)


for _name, (_fn, _n, _short) in FIGURES.items():
    device_group.add_command(_command(_name, _fn, _n, _short))


@device_group.command("all", help="Every device figure.", short_help="every figure, into one folder")
@_out_option
@_seed_option
@click.option("--samples", default=None, type=click.IntRange(2, MAX_SAMPLES), help="override every figure's sample count")
@_chain_options
@names_options(out_dir="out")
def all_figures(out: Path, seed: int, samples: int | None, config_file: Path | None, sets: tuple[str, ...]):
    chain = _chain(config_file, sets)
    _warn_if_no_levels(chain)
    out = _prepared(out)
    for fn, n, _ in FIGURES.values():
        for p in fn(out, seed, samples or n, chain):
            click.echo(str(p))



# --- calibrate: measured transfers → a spec file for train/sweep ---------------------------------

N_LEVELS = PAPER_LAYOUT.max_level + 1  # the 8 magnitude levels of the 3-MSB transfer
CALIBRATE_SAMPLES = inspect.signature(calibrate).parameters["n_per_level"].default  # the library's
CALIBRATE_MAX_SAMPLES = 200_000  # per level: the fit then holds ≈ 1.7 GB and takes ≈ 15 s on one core
# The chain settings ``calibrate`` fits (plus the weight scale, the measured means): written to the spec
# file whatever their value; any other setting a future ``calibrate`` changes is written as well.
FITTED = ("reference_means_us", "transistor.vth_v", "transistor.smoothing_v", "transistor.alpha",
          "memristor.curve.g_max_us", "memristor.curve.i_knee_ua", "memristor.curve.sigma_d2d",
          "memristor.curve.sigma_c2c")
POOR_FIT = 0.05  # warn when a fitted level mean misses its measurement by more than this fraction of G_7 − G_0


def _csv_error(path: str, reason: str) -> ConfigError:
    return ConfigError("csv", path, reason=reason)


class Measured(NamedTuple):
    """A CSV of measured transfers, summed up: per-level means, pooled σ, stds, counts (µS), and
    whether the values are the pair's G+ − G− rather than the selected device's conductance."""
    means: list[float]
    sigma: float
    stds: list[float]
    counts: list[int]
    differential: bool

    @property
    def what(self) -> str:
        return "G+ − G−" if self.differential else "conductance"


def _measurements(path: str) -> Measured:
    """The CSV's level statistics (``read_transfer_measurements``, ``level_summary``); every fault of
    the file one line naming --csv, before any work or any write."""
    if not os.path.exists(path):
        raise _csv_error(path, "no such file")
    try:
        levels, differential = read_transfer_measurements(path)
    except DataError as e:
        raise _csv_error(path, str(e).removeprefix(f"{path}: ")) from None
    means, sigma = level_summary(levels)
    column = DIFFERENTIAL_COLUMN if differential else ABSOLUTE_COLUMN
    problem = level_means_problem(means, differential)  # before the fit's seconds, in the column's words
    if problem:
        shown = ", ".join(f"{m:.4g}" for m in means)
        falls = any(b <= a for a, b in zip(means, means[1:]))
        sign = " (G+ − G− of a negative level: G− − G+)" if differential and falls else ""
        raise _csv_error(path, f"the level means of its {column} column ({shown} µS): {problem}{sign}")
    problem = sigma_problem(sigma)
    if problem:
        raise _csv_error(path, f"the pooled σ of its {column} column ({sigma:.4g} µS): {problem}")
    return Measured(means, sigma, [float(torch.tensor(v, dtype=torch.float64).std()) for v in levels],
                    [len(v) for v in levels], differential)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def _toml(header: list[str], entries: list[tuple[str, object]]) -> str:
    """A TOML document: ``header`` as comments, then (dotted path, value) as tables under their parents."""
    tables: dict[str, list[str]] = {}
    for path, value in entries:
        table, _, key = path.rpartition(".")
        tables.setdefault(table, []).append(f"{key} = {_toml_value(value)}")
    lines = [f"# {one_line(h)}".rstrip() for h in header]
    for table, items in tables.items():
        lines += ["", f"[{table}]", *items]
    return "\n".join(lines) + "\n"


def _fitted_entries(cfg: ChargeTransferConfig) -> list[tuple[str, object]]:
    flat = flatten(dataclasses.asdict(cfg))
    paths = list(FITTED) + [p for p, _ in changed_settings(cfg, ("",)) if p not in FITTED]
    return [(f"base.transfer.circuit.{p}", flat[p]) for p in paths]


def _calibrate_command(csv_path: str, out: Path, seed: int, samples: int) -> str:
    q = lambda s: shlex.quote(os.fspath(s))  # noqa: E731
    return f"ferristor device calibrate --csv {q(csv_path)} --out {q(out)} --seed {seed} --samples {samples}"


def _missing_folders(out: Path) -> list[Path]:
    """``out`` and those of its parents that are not there yet, deepest first: the folders creating it adds."""
    missing = []
    for folder in (out, *out.parents):
        if os.path.lexists(folder):  # False (never an error) for a path the system cannot look at
            break
        missing.append(folder)
    return missing


@contextlib.contextmanager
def _nothing_left_on_failure(out: Path):
    """Yields ``write(path, data)`` (atomic); if the block fails (an error, a refusal, Ctrl-C), the files it
    wrote that were not there before and the folders that creating ``out`` added are removed again. A folder
    or file that was there before the command is kept; ``rmdir`` removes an empty folder only."""
    folders, files = _missing_folders(out), []

    def write(path: Path, data: bytes) -> None:
        existed = os.path.lexists(path)
        _atomic_write(path, data)
        if not existed:
            files.append(path)

    try:
        yield write
    except BaseException:
        for path in reversed(files):
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in folders:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def calibration(csv_path: str, out: Path, seed: int, samples: int) -> list[Path]:
    """Fit the transfer chain to measured conductances (``calibrate``) and write the fit as a spec file
    (``calibrated.toml``), the measured vs fitted level statistics (``calibrated.csv``) and a figure;
    a failure leaves nothing new behind (no file, no folder)."""
    measured = _measurements(csv_path)  # every fault of the CSV, before --out is touched
    with _nothing_left_on_failure(out) as write:
        files, table = _calibrated_files(csv_path, _prepared(out), seed, samples, measured)
        for path, data in files.items():  # all rendered first: only the writes themselves can fail here
            write(path, data)
    for line in table:
        click.echo(line)
    return list(files)


def _unreproduced(e: ConfigError, measured: "Measured") -> str:
    """What the fitted chain cannot do, from the ConfigError its config raised: a differential fit's
    weight scale (the chain's own level means) that does not rise with the level, or another setting."""
    means = e.value if e.field.endswith("reference_means_us") and isinstance(e.value, (list, tuple)) else ()
    lv = next((lv for lv in range(1, len(means)) if means[lv] <= means[lv - 1]), None)
    if lv is None:
        return f"its closest fit gives {e.render()}"
    shown = ", ".join(f"{m:.4g}" for m in means)
    step = measured.means[lv] - measured.means[lv - 1]
    return (f"in its closest fit level {lv} is no higher than level {lv - 1} (its own level means, the weight scale: "
            f"{shown} µS), so its weights could not tell them apart; the measured step between them, {step:.3g} µS "
            f"({measured.what}), is below what the chain resolves")


def _calibrated_files(csv_path: str, out: Path, seed: int, samples: int, measured: Measured
                      ) -> tuple[dict[Path, bytes], list[str]]:
    """The fit, as the files to write (path → contents: the spec file first) and the table to print."""
    means, sigma, stds, counts, differential = measured
    try:
        fitted = calibrate(means, sigma, n_per_level=samples, seed=seed, differential=differential)
    except ConfigError as e:  # the fit keeps its settings in range: only its weight scale can be refused
        raise _csv_error(csv_path, f"the device chain cannot reproduce these measurements: {_unreproduced(e, measured)}") from None
    # the fitted chain's statistics from draws the fit did not see (seed + 1): an out-of-sample check
    fit_means, fit_stds, fit_sigma = level_statistics(fitted, samples, seed + 1, differential=differential)
    fit_means, fit_stds = fit_means.tolist(), fit_stds.tolist()
    diffs = [f - m for f, m in zip(fit_means, means)]
    worst = max(range(N_LEVELS), key=lambda lv: abs(diffs[lv]))
    span = means[-1] - means[0]
    if abs(diffs[worst]) > POOR_FIT * span:
        warnings.warn(FerristorWarning(
            f"the fitted chain misses level {worst} by {diffs[worst]:+.3g} µS ({abs(diffs[worst]) / span:.0%} of the "
            f"measured span G7 − G0): check that the conductances are in µS and the levels are the transfer's 0…7; "
            "the files are written anyway", "csv", csv_path))

    odd = implausible_fit(fitted)
    if odd:
        default = flatten(dataclasses.asdict(ChargeTransferConfig()))
        shown = "; ".join(f"{CHAIN_PREFIX}{path}={value}{' ' + unit if unit else ''} (default {default[path]}, a device's "
                          f"{lo:g}–{hi:g})" for path, value, lo, hi, unit in odd)
        them = "it" if len(odd) == 1 else "them"
        warnings.warn(FerristorWarning(
            f"the fit puts {shown}: at or past the edge of a device's range, where the measurements do not pin {them} down "
            f"and the fit traded {them} against the other fitted settings; read {them} as "
            f"{'an effective value' if len(odd) == 1 else 'effective values'}, not device data; the files are written anyway",
            "csv", csv_path))

    if fitted.memristor.curve.sigma_c2c < 1e-3 and fit_sigma > sigma:
        warnings.warn(FerristorWarning(
            f"the SET spread was fitted to 0, its bound: the chain's fixed spreads (the FeCAP cells' charge, "
            f"fecap.cell.pr_sigma_ln; the LCS, memristor.curve.lcs_sigma_ln) alone give a pooled σ of {fit_sigma:.3g} µS "
            f"against the measured {sigma:.3g}; lower them in the file or with --set transfer.circuit.… if your devices "
            "spread less", "csv", csv_path))
    command = _calibrate_command(csv_path, out, seed, samples)
    toml_path = out / "calibrated.toml"
    header = [
        "The DAC-free transfer chain (transfer model 'circuit') fitted to measured transfer conductances"
        + (" (differential, G+ − G−: the absolute scale rests on the chain's LCS)." if differential else "."),
        f"measurements: {csv_path} ({sum(counts)} rows: {', '.join(map(str, counts))} for levels 0…{N_LEVELS - 1})",
        f"fit: ferristor.circuit.charge_transfer.calibrate, seed {seed}, {samples} Monte-Carlo draws a level",
        f"made by: {command}",
        f"level means measured ({measured.what}, µS): {', '.join(f'{m:.4g}' for m in means)}; pooled σ {sigma:.4g}",
        f"level means fitted   ({measured.what}, µS): {', '.join(f'{m:.4g}' for m in fit_means)}; pooled σ {fit_sigma:.4g}",
        "",
        "Train with it (hm-var with the circuit transfer; options add to it, e.g. --dataset, --epochs):",
        f"  ferristor train --config {shlex.quote(os.fspath(toml_path))}",
        "Sweep over it (any [grid] axis, e.g. the learning rule's k or a chain setting):",
        f"  ferristor sweep {shlex.quote(os.fspath(toml_path))} --grid rule.k=1,10,100",
        f"  ferristor sweep {shlex.quote(os.fspath(toml_path))} --grid transfer.circuit.memristor.curve.sigma_c2c=0.05,0.1",
        "The settings below are the fitted ones; the chain's other settings keep their defaults",
        "(`ferristor params` lists them; set one with --set transfer.circuit.PATH=VALUE).",
    ]
    entries = [("base.mode", "hm-var"), ("base.transfer.model", "circuit"), *_fitted_entries(fitted)]
    toml_text = _toml(header, entries)

    levels = list(range(N_LEVELS))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar([lv - 0.08 for lv in levels], means, yerr=stds, marker="o", capsize=3, ls="none",
                label=f"measured (pooled σ {sigma:.2f} µS)")
    ax.errorbar([lv + 0.08 for lv in levels], fit_means, yerr=fit_stds, marker="s", capsize=3, ls="none",
                label=f"fitted chain (pooled σ {fit_sigma:.2f} µS)")
    ax.set(xlabel="transferred level", ylabel=f"{measured.what} (µS)", xticks=levels,
           title=f"transfer chain fitted to {Path(csv_path).name}")
    ax.legend()
    rows = [[lv, counts[lv], means[lv], stds[lv], fit_means[lv], fit_stds[lv], sigma, fit_sigma] for lv in levels]
    header_csv = ["level", "measured_n", "measured_mean_uS", "measured_std_uS", "fitted_mean_uS", "fitted_std_uS",
                  "measured_pooled_sigma_uS", "fitted_pooled_sigma_uS"]
    files = {toml_path: toml_text.encode(), **_figure_files(out, "calibrated", fig, header_csv, rows)}

    table = [f"{'level':>5}  {'measured µS':>11}  {'fitted µS':>11}  {'difference':>10}"]
    table += [f"{lv:>5}  {means[lv]:>11.2f}  {fit_means[lv]:>11.2f}  {diffs[lv]:>+10.2f}" for lv in levels]
    table.append(f"{'σ':>5}  {sigma:>11.2f}  {fit_sigma:>11.2f}  {fit_sigma - sigma:>+10.2f}   (pooled)")
    if differential:
        table.append("(G+ − G−, as measured; the fitted chain's own conductances are its reference_means_us)")
    return files, table


@device_group.command("calibrate", short_help="fit the transfer chain to measured conductances")
@click.option("--csv", "csv_path", required=True, type=str, metavar="FILE",
              help="measured transfers: columns level (0…7, or signed −7…7) and conductance_uS (the selected "
              "device's), or g_diff_uS (G+ − G−, as Fig. 4 and `device transfer-levels` write it); ≥ 2 rows a level")
@_out_option
@_seed_option
@click.option("--samples", type=click.IntRange(2, CALIBRATE_MAX_SAMPLES), default=CALIBRATE_SAMPLES, show_default=True,
              help="Monte-Carlo draws per level, of the fit and of the fitted chain's statistics")
@names_options(out_dir="out", csv="csv_path")
def calibrate_command(csv_path: str, out: Path, seed: int, samples: int):
    """Fit the transfer chain (transistor threshold, tail and exponent, the G(Icc) curve, the SET spread)
    to measured transfer conductances, so that its 8 level means and pooled σ match them, and write
    calibrated.toml (a spec file: ferristor train --config FOLDER/calibrated.toml, or ferristor sweep
    FOLDER/calibrated.toml --grid ...), calibrated.csv (measured vs fitted level statistics) and
    calibrated.png."""
    for p in calibration(csv_path, out, seed, samples):
        click.echo(str(p))

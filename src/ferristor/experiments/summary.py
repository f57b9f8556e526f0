"""Human-readable summary of a results dict: accuracy over seeds, ledger, energy, endurance, speed."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np

from ..circuit.charge_transfer import NOT_READ_BY_TRANSFER
from ..circuit.transfer import IGNORED_BY_MODEL, TransferConfig
from ..config_base import flatten
from ..errors import FerristorWarning
from . import paper_values as pv


def worst_margins(nets: list[dict]) -> tuple[float, float]:
    """(FeCAP, memristor) endurance margins of the worst device on any chip (seed) of a run, as the
    summary prints them (compare and report take the same worst chip, n/a where a chip records none:
    ``report.markup.worst``; a fresh run's summary has every chip's)."""
    return (min(_margin(n["endurance"]["fecap_margin"]) for n in nets),
            min(_margin(n["endurance"]["memristor_margin"]) for n in nets))


def _margin(m) -> float:
    """A margin as a results file may hold it: a chip with no device of a kind written has an infinite
    margin, which a strict JSON writer stores as null."""
    return math.inf if m is None else m


def _worst(reports: list[dict], kind: str) -> float:
    """The most written device of a kind on any chip: what the endurance margin divides by, and what
    ``report`` shows (the mean over chips of each one's worst had been printed beside that margin)."""
    return max(r[kind]["worst"] for r in reports)


def _mean(reports: list[dict], *path) -> float:
    vals = []
    for r in reports:
        v = r
        for p in path:
            v = v[p]
        vals.append(v)
    return float(np.mean(vals))


def _transfer(cfg: dict) -> str:
    """' · transfer circuit (quantiles)' where the transfer is not the mode's own (hm: ideal, hm-var: table)."""
    model = transfer_model(cfg)
    return f" · {model}" if model else ""


def transfer_model(cfg: dict) -> str | None:
    """'transfer circuit (quantiles)' where the transfer is not the mode's own (hm: ideal, hm-var: table), else None."""
    t = cfg.get("transfer") or {}
    model = t.get("model")
    if cfg.get("mode") == "fp" or model in (None, {"hm": "ideal", "hm-var": "table"}.get(cfg.get("mode"))):
        return None
    return f"transfer {model}" + (f" ({t.get('circuit_sampler', 'chain')})" if model == "circuit" else "")


def _bits(cfg: dict) -> str:
    """' · 8/2 bits' (hidden / analogue magnitude) where the synapse is not the paper's 10/3."""
    bits = layout_bits(cfg)
    return f" · {bits}" if bits else ""


def layout_bits(cfg: dict) -> str | None:
    """'8/2 bits' (hidden / analogue magnitude) where the synapse is not the paper's 10/3, else None."""
    lay = cfg.get("layout") or {}
    hidden, analogue = lay.get("hidden_bits", 10), lay.get("analogue_magnitude_bits", 3)
    return None if (hidden, analogue) == (10, 3) else f"{hidden}/{analogue} bits"


_TRANSFER_DEFAULTS = dataclasses.asdict(TransferConfig())


def unread_transfer_paths(cfg: dict) -> list[str]:
    """Config paths of the transfer that a run's own settings leave unread: all of it in fp (float
    weights, no transfer); else what its model ignores (``IGNORED_BY_MODEL``), the device figures'
    chain settings (``NOT_READ_BY_TRANSFER``) and, where the circuit samples the chain, the table's
    draws. The run header and the paper comparison (``report.paper``) both leave these out."""
    t = cfg.get("transfer") or {}
    if cfg.get("mode") == "fp":
        return ["transfer"]
    out = [f"transfer.{name}" for name in IGNORED_BY_MODEL.get(t.get("model", "ideal"), ())]
    out += [f"transfer.circuit.{p}" for p in NOT_READ_BY_TRANSFER]
    if t.get("circuit_sampler", "chain") == "chain":
        out.append("transfer.circuit_table_draws")  # the chain tabulates nothing
    return out


def under(path: str, prefixes) -> bool:
    """Whether ``path`` is one of ``prefixes`` or inside one."""
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def plain(value):
    """``value`` as a results file holds it (tuples as lists): what a read-back config compares with."""
    return json.loads(json.dumps(value, default=str))


def transfer_settings(cfg: dict) -> list[str]:
    """['level_means=measured', 'sigma_levels=0.3', …]: the transfer settings the run's transfer model
    reads that are not TransferConfig's defaults (the model and the circuit's sampler are said by
    ``_transfer``; a changed device chain is counted, it has some sixty settings). Level means act in
    the ideal transfer too (hm: no noise, but the levels' means), so an hm run shows them."""
    t = cfg.get("transfer") or {}
    if cfg.get("mode") == "fp" or not t:
        return []
    never_read = unread_transfer_paths(cfg)
    unread = never_read + ["transfer.model", "transfer.circuit", "transfer.circuit_sampler"]
    said = [f"{name}={t[name]}" for name, default in _TRANSFER_DEFAULTS.items()
            if not under(f"transfer.{name}", unread) and name in t and t[name] != default]
    if t.get("model", "ideal") == "circuit" and isinstance(t.get("circuit"), dict):
        ours, default = flatten(t["circuit"]), flatten(_TRANSFER_DEFAULTS["circuit"])
        changed = [path for path, v in ours.items() if not under(f"transfer.circuit.{path}", never_read)
                   and path in default and plain(v) != plain(default[path])]
        if changed:
            said.append(f"{len(changed)} device-chain setting{'s' * (len(changed) != 1)} changed (transfer.circuit)")
    return said


def learning_rule(cfg: dict) -> str | None:
    """'rule=tiki-taka' where the run trains a baseline rule (``scheme.rule``), not the paper's hybrid
    rule; None for the hybrid rule (or a results file written before baselines)."""
    rule = (cfg.get("scheme") or {}).get("rule", "hybrid")
    return None if rule == "hybrid" else f"rule={rule}"


def k_text(cfg: dict) -> str:
    """'k=100', or 'k=10 updates' where k counts optimizer updates rather than inputs (rule.k_unit)."""
    rule = cfg.get("rule") or {}
    unit = rule.get("k_unit", "inputs")
    return f"k={rule.get('k')}" + ("" if unit == "inputs" else f" {unit}")


# What mode 'fp' accepts but never reads (float weights: no transfer, no grid to round onto), at its
# default. TrainConfig lets a value pass there, since a sweep crosses the modes at one k and one
# rounding; the run's summary says it did nothing.
_FP_UNREAD = {"k": 100, "rounding": "stochastic"}


def fp_unread(cfg: dict) -> list[str]:
    """['k=5', 'rounding=nearest']: the settings of an fp run that are not at their defaults and did nothing."""
    rule = cfg.get("rule") or {}
    if cfg.get("mode") != "fp":
        return []
    return [f"{name}={rule[name]}" for name, default in _FP_UNREAD.items() if rule.get(name, default) != default]


# Energies are kept in nJ; shown in the largest of these units that leaves the total at least 1.
_UNITS = (("µJ", 1e3), ("nJ", 1.0), ("pJ", 1e-3), ("fJ", 1e-6))


def energy_text(total_nj: float, fecap_nj: float, memristor_nj: float, largest: str = "nJ") -> str:
    """'38.4 nJ (FeCAP 26.4 + memristor 12.0' (the caller closes the parenthesis after what it adds):
    the total in the largest unit (up to ``largest``) that shows it as at least 1, every figure with
    the same decimals, as many as give each nonzero one at least 3 significant figures, so that the
    parts visibly add up (to the last digit's rounding). train's summary and the report's run page
    both word energies with it."""
    units = _UNITS[[u for u, _ in _UNITS].index(largest):]
    unit, scale = next(((u, f) for u, f in units if abs(total_nj) >= f), units[-1])
    values = [v / scale for v in (total_nj, fecap_nj, memristor_nj)]
    decimals = max([0, *(2 - math.floor(math.log10(abs(v))) for v in values if v and math.isfinite(v))])
    t, fe, me = (f"{v:,.{decimals}f}" for v in values)
    return f"{t} {unit} (FeCAP {fe} + memristor {me}"


def margin_text(m: float) -> str:
    """An endurance margin: 30,864×, 75.0×, 0.833× (three significant figures below 100)."""
    if not math.isfinite(m):
        return "∞× (no writes)"
    return f"{m:,.0f}×" if m >= 100 else f"{m:.3g}×"


# The paper's endurance margins over one MNIST training at k = 100 (digest §5 [P]), at its ratings.
PAPER_MARGINS = "75×, 17× over 10 MNIST epochs at k=100"
PAPER_RATINGS = {"fecap_endurance_cycles": pv.FECAP_ENDURANCE_CYCLES, "memristor_endurance_cycles": pv.MEMRISTOR_ENDURANCE_CYCLES,
                 "ops_per_cycle": pv.OPS_PER_CYCLE}


def _paper_margins(cfg: dict) -> str:
    """The paper's margins, said as its own figure: plainly at the paper's ratings; at other ratings
    (ledger.*_endurance_cycles, ops_per_cycle) with the ratings they are at, so a rating the user set
    is not read against the paper's as if they were the same."""
    ledger = cfg.get("ledger") or {}
    ours = {name: ledger.get(name, paper) for name, paper in PAPER_RATINGS.items()}
    if ours == PAPER_RATINGS:
        return f"paper: {PAPER_MARGINS}"
    rated = lambda r: f"{r['fecap_endurance_cycles']:.0e} FeCAP / {r['memristor_endurance_cycles']:.0e} memristor cycles"  # noqa: E731
    per = "" if ours["ops_per_cycle"] == pv.OPS_PER_CYCLE else f", {ours['ops_per_cycle']:g} operations a cycle"
    return (f"rated here {rated(ours)}{per}; the paper's {PAPER_MARGINS} are at its own ratings, "
            f"{rated(PAPER_RATINGS)}, {pv.OPS_PER_CYCLE} operations a cycle")


def endurance_problems(results: dict) -> list[str]:
    """One sentence per device kind whose worst device (on any chip, i.e. seed) takes more cycles in
    this run than it is rated for: the devices wear out within the run."""
    said = []
    for kind, name in (("fecap", "FeCAP"), ("memristor", "memristor")):
        worst = None
        for r in results.get("ledger") or []:
            e = r["network"]["endurance"]
            margin, cycles = _margin(e[f"{kind}_margin"]), e[f"{kind}_worst_cycles"]
            if margin < 1 and (worst is None or margin < worst[0]):
                worst = (margin, cycles)
        if worst:
            margin, cycles = worst
            said.append(f"the {name}s wear out within this run: the worst one takes {cycles:,.0f} cycles, "
                        f"{1 / margin:.3g}× the {cycles * margin:,.0f} it is rated for "
                        f"(ledger.{kind}_endurance_cycles)")
    return said


def _test_limit(cfg: dict, results: dict) -> str:
    """Where --test-limit cut the test set, what it was cut to (a limit beyond the set cuts nothing)."""
    limit, n_test = cfg.get("test_limit") or 0, (results.get("dataset") or {}).get("test")
    if not limit or (isinstance(n_test, int) and limit >= n_test):
        return ""
    return f" · on the first {limit:,} test samples (--test-limit)"


def _k_said(cfg: dict) -> list[str]:
    """k as the run line shows it; in mode fp, a k or rounding that did nothing, said so; none for
    memristor-sgd, which has no transfer."""
    unread = fp_unread(cfg)
    if unread:
        return [", ".join(unread) + " (did nothing: mode fp has no transfer and no grid)"]
    if _rule(cfg) == "memristor-sgd":
        return []
    return [k_text(cfg)]


def _rule(cfg: dict) -> str:
    return (cfg.get("scheme") or {}).get("rule", "hybrid")


def _has_fecaps(cfg: dict) -> bool:
    """Whether the run's chip has FeCAPs: the hybrid rule's; the baselines' are memristors only."""
    from ..rule.schemes import RULE_DEVICES
    return "fecap" in RULE_DEVICES.get(_rule(cfg), ("fecap",))


def paper_setting(cfg: dict) -> bool:
    """Whether the run is the setting of the paper's endurance margins (digest §5): MNIST online, the
    hybrid rule at k = 100 on the paper's 10/3-bit synapse."""
    rule = cfg.get("rule") or {}
    return (cfg.get("dataset") == "mnist" and _rule(cfg) == "hybrid" and rule.get("k") == 100
            and cfg.get("batch", 1) == 1 and layout_bits(cfg) is None)


def ops_text(x: float) -> str:
    """Operations per device: whole numbers from 10 on, three significant figures below (0.316, not 0)."""
    return f"{x:,.0f}" if x >= 10 else f"{x:.3g}"


def _ledger_rows(results: dict, cfg: dict) -> list[tuple[str, str]]:
    """The ledger's lines for the devices the run's chip has: FeCAP lines for the hybrid rule only."""
    net = [r["network"] for r in results["ledger"]]
    fe_margin, me_margin = worst_margins(net)
    fecaps = _has_fecaps(cfg)
    n = results["samples_per_replica"]
    transfers = (f"{_mean(net, 'transfers'):,.0f} (+1 initial programming, reported apart)" if _rule(cfg) != "memristor-sgd"
                 else "none: an update programs the pair itself (+1 initial programming, reported apart)")
    rows = [("transfers", transfers)]
    if fecaps:
        rows.append(("FeCAP ops / device", f"mean {ops_text(_mean(net, 'fecap_ops', 'mean'))} · sign/MSB cell mean "
                                           f"{ops_text(_mean(net, 'fecap_ops', 'mean_sign_msb_cell'))} · worst "
                                           f"{ops_text(_worst(net, 'fecap_ops'))}"))
    rows.append(("memristor ops / device", f"mean {ops_text(_mean(net, 'memristor_ops', 'mean'))} · worst "
                                           f"{ops_text(_worst(net, 'memristor_ops'))}"))
    per_device = [_mean(net, 'energy_nJ', k) for k in ('per_device', 'per_device_fecap', 'per_device_memristor')]
    whole = [_mean(net, 'energy_nJ', k) for k in ('total', 'fecap_total', 'memristor_total')]
    if fecaps:
        # per device as the ledger and the paper count it (digest §5): one sign/MSB FeCAP + one memristor
        rows += [("energy / device", energy_text(*per_device) + "; one sign/MSB FeCAP + one memristor, mean writes)"),
                 ("energy, whole network", energy_text(*whole, largest="µJ") + ")")]
        margins = f"FeCAP {margin_text(fe_margin)} · memristor {margin_text(me_margin)}"
    else:
        rows += [("energy / device", _one_kind(per_device[2]) + " (one memristor, mean writes; no FeCAP on this chip)"),
                 ("energy, whole network", _one_kind(whole[2], largest="µJ") + " (memristors only)")]
        margins = f"memristor {margin_text(me_margin)}"
    paper = f"; {_paper_margins(cfg)}" if paper_setting(cfg) else ""
    rows.append(("endurance margin", f"{margins} (rated ÷ the worst device's cycles, on any chip, over this run's "
                                     f"{n:,} samples{paper})"))
    return rows + [("endurance exceeded", p) for p in endurance_problems(results)]


def _one_kind(total_nj: float, largest: str = "nJ") -> str:
    """An energy of one device kind, in energy_text's unit and figures: '354 fJ'."""
    return energy_text(total_nj, 0.0, total_nj, largest).split(" (")[0]


def summary_rows(results: dict) -> list[tuple[str, str]]:
    cfg = results["config"]
    acc = np.array(results["final_test_accuracy"]) * 100
    std = f" ± {acc.std(ddof=1):.2f}" if len(acc) > 1 else ""
    n_seeds = len(results["seeds"])
    rows = [
        ("run", " · ".join([f"{cfg['dataset']} · {cfg['mode']}{_transfer(cfg)}{_bits(cfg)}",
                            *filter(None, [learning_rule(cfg)]), *transfer_settings(cfg),
                            *_k_said(cfg), f"p={cfg['rule']['p']}", f"lr={cfg['rule']['lr']}",
                            *([f"batch={cfg['batch']}"] if cfg.get("batch", 1) > 1 else []),
                            f"{results['samples_per_replica']:,} samples × {n_seeds} seed{'s' * (n_seeds != 1)}"])),
        ("test accuracy", f"{acc.mean():.2f}{std} %  (seeds: {', '.join(f'{a:.2f}' for a in acc)})"
                          + _test_limit(cfg, results)),
    ]
    if results.get("final_val_accuracy"):
        val = np.array(results["final_val_accuracy"]) * 100
        vstd = f" ± {val.std(ddof=1):.2f}" if len(val) > 1 else ""
        rows.append(("validation accuracy", f"{val.mean():.2f}{vstd} %  (held out: {cfg.get('validation', 0):g} of the training set)"))
    if results.get("ledger"):
        rows += _ledger_rows(results, cfg)
    t = results["timing"]
    compiling = t.get("compile_seconds", 0.0)
    rows.append(("speed", f"{t['sample_replicas_per_second']:,.0f} sample-replicas/s ({t['us_per_sample_replica']:.1f} µs each), "
                          f"{t['train_seconds']:.1f} s training"
                          + (f", {compiling:.1f} s of it compiling or loading kernels (compiled once per machine, then loaded from numba's cache)" if compiling >= 0.05 else "")))
    return rows


def format_summary(results: dict) -> str:
    """The summary as aligned lines; a FerristorWarning for each device kind worn out within the run."""
    for problem in endurance_problems(results):
        warnings.warn(FerristorWarning(problem), stacklevel=2)
    rows = summary_rows(results)
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(w)}  {v}" for k, v in rows)

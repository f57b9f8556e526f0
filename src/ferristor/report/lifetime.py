"""Lifetime projection: days of on-line learning until the worst memristor and the worst FeCAP reach
their rated endurance, for a sensor feeding ``rate`` samples per second.

A device's budget is its rated endurance (cycles × operations per cycle, from the run's ledger
config) less the one-off programming before training; the worst device spends it at the rate it
was written in the run (its operations / samples trained). Days scale as 1 / rate, so a point
stores its days at 1 sample/s and :meth:`LifetimePoint.days` divides.

Rates are those of steady on-line learning, one transfer every k samples (every batch samples where a
mini-batch is larger than k: a step makes at most one transfer; :func:`samples_per_transfer`): the worst memristor
takes its operations per transfer in the run (a transfer programs every pair once, RESET + SET)
every k samples; the worst FeCAP its update writes per sample (which do not depend on k) plus one
transfer's reads every k samples. The run's own k is measured (its ledger at that k) and others are
projected the same way. A run whose samples are not a multiple of k ends between transfers: its
operations / samples would understate the transfers' share (1,800 samples at k = 500 hold 3
transfers, not 3.6), so the transfers' share is never taken from the run's sample count.

A run that skips unchanged levels at transfers (``ledger.transfer_writes_unchanged = false``) writes a
memristor only when its level changed since the last transfer, which happens less often the fewer
samples lie between two transfers: its writes per transfer grow with k. Projected from the run's k,
its memristor rows are bounds (:attr:`LifetimePoint.bound`), not estimates: at a smaller k the
memristor's lifetime is at least the projected one, at a larger k at most.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..experiments.summary import learning_rule
from .markup import NA, fmt, worst
from .runs import Endurance, Run
from .sweeps import Trial

SECONDS_PER_DAY = 86_400.0
DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class LifetimePoint:
    k: float
    measured: bool  # False: projected from another k's ledger
    memristor_ops_per_sample: float  # worst device
    fecap_ops_per_sample: float  # worst device (a sign/MSB cell: transfers read those)
    memristor_days_at_1: float  # at 1 sample/s; inf when the device is never written
    fecap_days_at_1: float
    # "": measured, or projected as an estimate; "at least" / "at most": the memristor's lifetime
    # (its operations per sample the other way round) is only a bound, see the module
    bound: str = ""

    def days(self, rate: float) -> tuple[float, float]:
        """(memristor, FeCAP) days at ``rate`` samples per second."""
        return self.memristor_days_at_1 / rate, self.fecap_days_at_1 / rate


def _days_at_1(budget_ops: float, ops_per_sample: float) -> float:
    """Days at 1 sample/s; inf for a device never written, nan (n/a) when its operations are not recorded."""
    if math.isnan(ops_per_sample):
        return math.nan
    if not ops_per_sample > 0:
        return math.inf
    return max(budget_ops, 0.0) / ops_per_sample / SECONDS_PER_DAY


def point(k: float, measured: bool, mem_per_sample: float, fe_per_sample: float, e: Endurance) -> LifetimePoint:
    mem_budget = e.memristor_cycles * e.ops_per_cycle - e.memristor_ops_initial
    fe_budget = e.fecap_cycles * e.ops_per_cycle - e.fecap_ops_initial
    return LifetimePoint(k, measured, mem_per_sample, fe_per_sample,
                         _days_at_1(mem_budget, mem_per_sample), _days_at_1(fe_budget, fe_per_sample))


def samples_per_transfer(k: float, config: dict) -> float:
    """Training samples between two transfers at ``k``, as the engine schedules them
    (``HybridSGD._hybrid_step``): k counts optimizer updates of a mini-batch each (rule.k_unit =
    updates), or inputs, a transfer at the step whose inputs cross a multiple of k but at most one
    per step, so a batch larger than k transfers once per step (every batch samples, not every k)."""
    rule = config.get("rule") or {}
    batch = config.get("batch", 1) or 1
    return k * batch if rule.get("k_unit", "inputs") == "updates" else max(k, batch)


def _per_transfer(ops: float, transfers: float, e: Endurance) -> float:
    """The worst memristor's operations per transfer. Where the run made no transfer to measure it
    on (fewer samples than k), the ledger's rating: every pair programmed at every transfer, an upper bound."""
    if math.isnan(ops) or math.isnan(transfers):
        return math.nan
    return ops / transfers if transfers else e.memristor_ops_per_transfer


def _steady(k: float, measured: bool, n: float, mem_per_transfer: float, fe_update: float, transfers: float,
            e: Endurance, config: dict) -> LifetimePoint:
    """The point at ``k`` from the worst devices' operations per transfer and their update writes (see the module)."""
    every = samples_per_transfer(k, config)
    fe = (math.nan if math.isnan(fe_update) else max(fe_update - transfers * e.fecap_ops_per_transfer, 0.0)) / n
    return point(k, measured, mem_per_transfer / every, fe + e.fecap_ops_per_transfer / every, e)


def skips_unchanged(config: dict) -> bool:
    """Whether the run's transfers leave unchanged levels alone: its writes per transfer depend on k."""
    return (config.get("ledger") or {}).get("transfer_writes_unchanged") is False


def run_lifetime(run: Run, ks=DEFAULT_KS) -> list[LifetimePoint]:
    """The run's k (measured) and ``ks`` (projected), sorted by k; [] for an fp run or when the run
    does not say how many samples it trained. Uses the worst chip (replica) of the run. A run that
    skips unchanged levels gets its projected points marked as bounds (see the module)."""
    k0 = run.config.get("rule", {}).get("k")
    n = run.samples_per_replica
    if run.network is None or not n or not k0:
        return []
    net, e = run.network, run.endurance
    if learning_rule(run.config) is not None:  # a baseline writes at its updates: measured only, never projected
        return [point(k0, True, worst(net.memristor_worst) / n, worst(net.fecap_worst) / n, e)]
    # per chip, then the worst chip; nan (n/a on the page) when a chip's ledger does not record it (null)
    mem = worst([_per_transfer(m, t, e) for m, t in zip(net.memristor_worst, net.transfers)])
    # every weight sees the same transfers: the worst FeCAP's update writes are its total less their reads
    fe_total, transfers = worst(net.fecap_worst), worst(net.transfers)
    points = {float(k0): _steady(k0, True, n, mem, fe_total, transfers, e, run.config)}
    for k in ks:
        if float(k) not in points:
            p = _steady(k, False, n, mem, fe_total, transfers, e, run.config)
            p.bound = _projection_bound(k, k0, transfers, p, run.config)
            points[float(k)] = p
    return [points[k] for k in sorted(points)]


def _projection_bound(k: float, k0: float, transfers: float, p: LifetimePoint, config: dict) -> str:
    """What a point projected from k0 to k is for a run that skips unchanged levels (see the module):
    "" where its writes per transfer do not change (every transfer writes every pair, the same transfer
    period, a memristor never written or not recorded), "at least" below k0 and where the run made no
    transfer (:func:`_per_transfer` took every pair written, the most a transfer does), "at most" above."""
    every, every0 = samples_per_transfer(k, config), samples_per_transfer(k0, config)
    if not skips_unchanged(config) or every == every0 or not math.isfinite(p.memristor_days_at_1):
        return ""
    return "at least" if every < every0 or transfers == 0 else "at most"


def measured_lifetime(run: Run) -> LifetimePoint | None:
    """The run's own k's point of :func:`run_lifetime` (what ``lifetime`` and the run page star);
    None where it has none (an fp run, no ledger, no samples or k)."""
    return next((p for p in run_lifetime(run, ks=()) if p.measured), None)


def trial_lifetime(trial: Trial) -> LifetimePoint | None:
    """At the trial's k from its worst-device counts (each the mean over the trial's seeds) and its
    transfers; a point that does not record them (a trials/ folder) is taken to have made one every
    k samples of its training, as the engine schedules them."""
    m, k = trial.metrics, trial.k
    n = m.get("samples_per_replica")
    if not n or not k or "memristor_ops_worst" not in m or "fecap_ops_worst" not in m:
        return None
    e = trial.endurance
    if learning_rule(trial.train_config) is not None:  # a baseline: its own rates, as measured
        return point(k, True, m["memristor_ops_worst"] / n, m["fecap_ops_worst"] / n, e)
    transfers = m.get("transfers", n // samples_per_transfer(k, trial.train_config))
    mem = _per_transfer(m["memristor_ops_worst"], transfers, e)
    return _steady(k, True, n, mem, m["fecap_ops_worst"], transfers, e, trial.train_config)


HUGE_DAYS = 1e7  # about 27,000 years: beyond it, lifetimes are written with 3 significant figures


def format_days(days: float) -> str:
    if math.isnan(days):
        return NA
    if math.isinf(days):
        return "never"
    if days >= HUGE_DAYS:  # a device barely written: 17 digits of days say nothing more than 3
        return f"{days:.3g} d ({days / 365.25:.3g} y)"
    if days >= 365.25:
        return f"{days:,.0f} d ({days / 365.25:,.1f} y)"
    return f"{days:,.3g} d" if days < 10 else f"{days:,.0f} d"


def check_rate(rate, option: str = "--rate") -> float:
    from ..errors import ConfigError
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ConfigError(option, rate, "a number of samples per second > 0") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(option, rate, "a number of samples per second > 0")
    return value


# a bound point's memristor cells: (its operations per sample, its lifetime)
BOUND_MARKS = {"": ("", ""), "at least": ("≤ ", "≥ "), "at most": ("≥ ", "≤ ")}


def bounds_note(points: list[LifetimePoint]) -> str:
    """Why a table's memristor rows read ≥ / ≤ (what :func:`run_lifetime` marks as bounds); "" when none is."""
    if not any(p.bound for p in points):
        return ""
    k0 = next((f"{p.k:g}" for p in points if p.measured), "the run's k")
    return (f"≥ / ≤: this run skips unchanged levels at transfers (ledger.transfer_writes_unchanged = false), so a "
            f"memristor's writes per transfer grow with k (more levels change between two transfers); measured at "
            f"k = {k0} and projected unchanged, they are bounds: a memristor lifetime marked ≥ is at least that, one "
            f"marked ≤ at most that (a run at that k measures it)")


def lifetime_table(points: list[LifetimePoint], rate: float) -> str:
    """Plain text for ``ferristor lifetime``: one row per k, measured rows starred, bounds marked ≥ / ≤
    and explained under the table."""
    head = ("k", "memristor ops/sample", "memristor lifetime", "FeCAP ops/sample", "FeCAP lifetime")
    rows = [head]
    for p in points:
        mem, fe = p.days(rate)
        ops_mark, days_mark = BOUND_MARKS[p.bound]
        rows.append((f"{p.k:g}{'*' if p.measured else ' '}", ops_mark + fmt(p.memristor_ops_per_sample, ".4g"),
                     days_mark + format_days(mem), fmt(p.fecap_ops_per_sample, ".4g"), format_days(fe)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    note = bounds_note(points)
    return "\n".join(lines + ([note] if note else []))

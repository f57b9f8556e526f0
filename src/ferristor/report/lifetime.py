"""Lifetime projection: days of on-line learning until the worst memristor and the worst FeCAP reach
their rated endurance, for a sensor feeding ``rate`` samples per second.

A device's budget is its rated endurance (cycles × operations per cycle, from the run's ledger
config) less the one-off programming before training; the worst device spends it at the rate it
was written in the run (its operations / samples trained). Days scale as 1 / rate, so a point
stores its days at 1 sample/s and :meth:`LifetimePoint.days` divides.

Other k than the run's are projected from the same ledger: a transfer programs every memristor
pair once (RESET + SET), so the worst memristor's rate scales as 1 / k; the worst FeCAP's is its
update writes (which do not depend on k) plus the operations of one transfer every k samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


def run_lifetime(run: Run, ks=DEFAULT_KS) -> list[LifetimePoint]:
    """The run's k (measured) and ``ks`` (projected), sorted by k; [] for an fp run or when the run
    does not say how many samples it trained. Uses the worst chip (replica) of the run."""
    k0 = run.config.get("rule", {}).get("k")
    n = run.samples_per_replica
    if run.network is None or not n or not k0:
        return []
    net, e = run.network, run.endurance
    # nan (n/a on the page) when a chip's ledger does not record it (null in results.json)
    mem_worst, fe_worst = worst(net.memristor_worst), worst(net.fecap_worst)
    # Every weight sees the same transfers, so the worst FeCAP's update writes are its total less them.
    fe_update = fe_worst - worst(net.transfers) * e.fecap_ops_per_transfer
    fe_update = (math.nan if math.isnan(fe_update) else max(fe_update, 0.0)) / n
    points = {float(k0): point(k0, True, mem_worst / n, fe_worst / n, e)}
    for k in ks:
        if float(k) not in points:
            points[float(k)] = point(k, False, mem_worst / n * k0 / k, fe_update + e.fecap_ops_per_transfer / k, e)
    return [points[k] for k in sorted(points)]


def trial_lifetime(trial: Trial) -> LifetimePoint | None:
    """Measured at the trial's k from its worst-device counts (each the mean over the trial's seeds)."""
    m, k = trial.metrics, trial.k
    n = m.get("samples_per_replica")
    if not n or not k or "memristor_ops_worst" not in m or "fecap_ops_worst" not in m:
        return None
    return point(k, True, m["memristor_ops_worst"] / n, m["fecap_ops_worst"] / n, trial.endurance)


def format_days(days: float) -> str:
    if math.isnan(days):
        return NA
    if math.isinf(days):
        return "never"
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


def lifetime_table(points: list[LifetimePoint], rate: float) -> str:
    """Plain text for ``ferristor lifetime``: one row per k, measured rows starred."""
    head = ("k", "memristor ops/sample", "memristor lifetime", "FeCAP ops/sample", "FeCAP lifetime")
    rows = [head]
    for p in points:
        mem, fe = p.days(rate)
        rows.append((f"{p.k:g}{'*' if p.measured else ' '}", fmt(p.memristor_ops_per_sample, ".4g"), format_days(mem),
                     fmt(p.fecap_ops_per_sample, ".4g"), format_days(fe)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)

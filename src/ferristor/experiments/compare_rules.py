"""``ferristor compare-rules``: the hybrid rule and its baselines trained side by side on the same
devices, the same network and protocol, and counted by the same ledger (issue 13).

Each rule × dataset is one ordinary run (``OUT/<dataset>/<rule>/results.json``, the seeds as
replicas, resumable like ``ferristor train``) whose results also carry ``devices``: the generic
per-device-kind ledger of every chip (``nn.ledger.device_ledger``; fp included, "not a device").
:func:`rule_rows` reduces them to the table — accuracy, memristor and FeCAP operations per device
(mean and worst), energy per device and for the network, projected lifetime at a sample rate — and
:func:`plot_rules` draws accuracy against energy and against the worst device's memristor
operations. :func:`headline` checks the paper's claim (digest §5: 38× less energy at k = 100 than
with a transfer at every sample) against our own memristor-only SGD at equal accuracy.

A rule is named by a preset (:data:`PRESETS`) optionally followed by settings:
``tiki-taka:k=10,lines_per_transfer=2``, ``memristor-sgd:write=every_update``, ``mixed-precision:mode=hm``,
``hm-var:transfer_writes_unchanged=false`` (a transfer skips the pairs whose level is unchanged).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backend import use_backend
from ..circuit.devices import device_costs
from ..circuit.ledger import LedgerConfig
from ..config_base import to_dict
from ..data import load_dataset
from ..errors import ConfigError
from ..report.lifetime import format_days, measured_lifetime
from ..report.markup import NA
from ..report.runs import run_of
from ..rule.schemes import SchemeConfig
from . import run_folder
from .config import IGNORED_BY_RULE, TrainConfig, task_config
from .fit import run_fit, set_threads
from .preflight import check_data
from .train import build_model, build_optimizer, fit_options


@dataclass
class RuleSpec:
    """One rule as ``compare-rules`` runs it: the layer mode (fp, hm = ideal writes, hm-var = writes
    with variability), the transfer period k (None: the rule has none) and the scheme's settings."""

    label: str
    mode: str
    k: int | None
    scheme: dict = field(default_factory=dict)
    rule: dict = field(default_factory=dict)  # lr, p, rounding overrides
    ledger: dict = field(default_factory=dict)  # the hybrid's counting options (LedgerConfig)

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label.replace("=", "-"))


# The defaults: the hybrid rule at the paper's k = 100 (digest §4); mixed precision checks χ at every
# sample (Nandakumar et al. 2020; aihwkit MixedPrecisionCompound transfer_every = 1); Tiki-Taka
# transfers one line of A per sample (Gokmen & Haensch 2020; aihwkit n_reads_per_transfer = 1,
# transfer_every = 1); memristor-only SGD has no transfer.
PRESETS = {
    "fp": RuleSpec("fp", "fp", 100),
    "hm": RuleSpec("hm", "hm", 100),
    "hm-var": RuleSpec("hm-var", "hm-var", 100),
    "memristor-sgd": RuleSpec("memristor-sgd", "hm-var", None, {"rule": "memristor-sgd"}),
    "mixed-precision": RuleSpec("mixed-precision", "hm-var", 1, {"rule": "mixed-precision"}),
    "tiki-taka": RuleSpec("tiki-taka", "hm-var", 1, {"rule": "tiki-taka"}),
}
DEFAULT_RULES = tuple(PRESETS)
_SCHEME_FIELDS = {f.name: f.type for f in dataclasses.fields(SchemeConfig) if f.name != "rule"}
_RULE_FIELDS = {"lr": float, "p": float, "rounding": str}
_LEDGER_FIELDS = {"transfer_writes_unchanged": bool, "count_zero_updates": bool}  # the hybrid's counting options


def _value(text: str, kind):
    if kind in (bool, "bool"):
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    return text


_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false"}  # by type name: fields' types may be strings


def _setting_type(base: RuleSpec, key: str):
    """The type parse_rule reads setting ``key`` of preset ``base`` as; None where it takes any text."""
    if key == "k":
        return int
    if key in _RULE_FIELDS:
        return _RULE_FIELDS[key]
    if key in _SCHEME_FIELDS and base.scheme:
        return _SCHEME_FIELDS[key]
    return bool if key in _LEDGER_FIELDS and base.mode != "fp" and not base.scheme else None


def parse_rule(text: str, baseline_mode: str = "hm-var") -> RuleSpec:
    """'name[:key=value,...]' → RuleSpec. ``baseline_mode`` sets the writes of the baselines (hm: ideal).
    A setting given twice, or a value not of its setting's type, is refused, naming it."""
    name, _, rest = text.partition(":")
    if name not in PRESETS:
        raise ConfigError("rules", text, "presets " + ", ".join(PRESETS) + ", each optionally followed by "
                          ":key=value,… (k, mode, lr, p, rounding, or a SchemeConfig field)")
    base = PRESETS[name]
    spec = RuleSpec(text, base.mode, base.k, dict(base.scheme), {})
    if base.scheme:
        spec.mode = baseline_mode
    seen: set[str] = set()
    for item in filter(None, rest.split(",")):
        key, eq, val = item.partition("=")
        if eq and key in seen:  # it had kept the last value, under a label that shows both
            raise ConfigError("rules", text, reason=f"the setting {key} is given twice")
        seen.add(key)
        kind = _setting_type(base, key) if eq else None
        type_name = getattr(kind, "__name__", kind)  # not `name`: that is the preset, named in the errors below
        if type_name in _EXPECTED:
            try:
                _value(val, kind)
            except ValueError:
                expected = "an integer ≥ 1" if key == "k" else _EXPECTED[type_name]
                raise ConfigError("rules", text, reason=f"{item}: expected {expected}") from None
        try:
            if not eq:
                raise ValueError(item)
            if key == "k":
                spec.k = int(val)
            elif key == "mode":
                spec.mode = val
            elif key in _RULE_FIELDS:
                spec.rule[key] = _value(val, _RULE_FIELDS[key])
            elif key in _SCHEME_FIELDS and base.scheme:
                spec.scheme[key] = _value(val, _SCHEME_FIELDS[key])
            elif key in _LEDGER_FIELDS and base.mode != "fp" and not base.scheme:
                spec.ledger[key] = _value(val, bool)
            else:
                raise KeyError(key)
        except KeyError:
            allowed = "k, mode, lr, p, rounding" + (", " + ", ".join(_SCHEME_FIELDS) if base.scheme else
                                                    ", " + ", ".join(_LEDGER_FIELDS) if base.mode != "fp" else "")
            raise ConfigError("rules", text, reason=f"unknown setting {key!r} for {name} (allowed: {allowed})") from None
        except ValueError:
            raise ConfigError("rules", text, reason=f"cannot read {item!r} as key=value") from None
    if spec.k is not None and spec.k < 1:
        raise ConfigError("rules", text, reason="k must be an integer ≥ 1")
    _refuse_unread(spec, text, rest)
    return spec


# What mode 'fp' never reads: its weights are float32, with no transfer and no grid. (A sweep may cross
# the modes at one k, so TrainConfig lets them pass there; a compare-rules row is one rule alone.)
_FP_IGNORES = {"k": "float weights have no transfer", "rounding": "float weights have no grid to round onto"}


def _refuse_unread(spec: RuleSpec, text: str, rest: str) -> None:
    """A setting given to a rule that never reads it (``config.IGNORED_BY_RULE``; k and rounding in mode
    fp) is refused, named as typed: the row would show a value that did nothing."""
    rule = spec.scheme.get("rule", "hybrid")
    ignored = dict(_FP_IGNORES) if spec.mode == "fp" else \
        {path.split(".")[1]: why for path, why in IGNORED_BY_RULE.get(rule, {}).items() if path.startswith("rule.")}
    for item in filter(None, rest.split(",")):
        key = item.partition("=")[0]
        if key in ignored:
            who = "mode 'fp'" if spec.mode == "fp" else f"rule {rule!r}"
            raise ConfigError("rules", text, reason=f"{item} does nothing for {who}: {ignored[key]}; leave it out")


def rule_config(dataset: str, spec: RuleSpec, **run) -> TrainConfig:
    """The training config of one rule on one dataset (the task's network, lr and p: digest §4)."""
    kw = {**spec.rule, **spec.ledger}
    if spec.k is not None:
        kw["k"] = spec.k
    return task_config(dataset, spec.mode, **spec.scheme, **kw, **run)


@run_folder.claimed
def train_rule(cfg: TrainConfig, out_dir: str | Path | None = None, *, progress: bool = True, dataset=None,
               loaded: dict | None = None) -> dict:
    """``experiments.train.train`` plus the generic device ledger of every chip in ``results['devices']``.
    ``loaded``: a dict the caller keeps across rules, so each dataset is read (and checked) once."""
    from ..nn.ledger import device_ledger

    set_threads(cfg.threads)
    with use_backend(cfg.backend):
        data = dataset or _load(cfg, {} if loaded is None else loaded)
        check_data(cfg, data)
        model = build_model(cfg)
        # the device ledger joins the results before run_fit's one write of results.json: a run killed
        # between two writes had left a results.json without it that looked finished
        fit = run_fit(model, data, optimizer=build_optimizer(cfg, model), out=out_dir, progress=progress,
                      extra_results=lambda m: {"devices": device_ledger(m) or []}, **fit_options(cfg))
    return fit.results


def _load(cfg: TrainConfig, loaded: dict):
    key = (cfg.dataset, str(cfg.data_dir), repr(cfg.ecg))  # what the read depends on
    if key not in loaded:
        loaded[key] = load_dataset(cfg.dataset, cfg.data_dir, ecg=cfg.ecg)
    return loaded[key]


# A finished run of other settings than the ones asked for, met by a table without training.
TABLE_HINT = "ask for the settings it was trained with, or train it anew with {fresh}"


def finished_results(folder: str | Path, cfg: TrainConfig | None) -> dict | None:
    """The results of ``cfg``'s run in ``folder``, for a table without training (``--table-only``):
    None when it has none yet, or none complete (:func:`is_complete`); a ConfigMismatchError naming
    the settings that differ, as a run resumed in the folder gets (``run_folder.config_differences``),
    when they are another configuration's, so a table never shows another run's numbers as the ones
    asked for. ``cfg`` None: the run's results whatever its settings (a DataError still, if they are
    unreadable)."""
    path = Path(folder) / run_folder.RESULTS
    if not path.exists():
        return None
    results = run_folder.read_results(path)
    if cfg is not None:
        run_folder.refuse_other_config(Path(folder), results["config"], to_dict(cfg), "the results", TABLE_HINT)
    if not is_complete(results):
        return None
    return results


# The training options compare-rules takes; given to --table-only they select the runs shown.
SELECTING = ("seeds", "epochs", "eval_every", "test_limit")


def table_config(dataset: str, spec: RuleSpec, folder: str | Path, given: dict, baseline_mode_given: bool,
                 **local) -> TrainConfig | None:
    """The config a ``--table-only`` row must have been trained with: the options given (``given``, of
    ``SELECTING``) and, with ``baseline_mode_given``, a baseline's mode as asked; the others as the run
    in ``folder`` recorded them, so an option not given selects nothing. None where it has no results."""
    path = Path(folder) / run_folder.RESULTS
    if not path.exists():
        return None
    recorded = run_folder.read_results(path).get("config") or {}
    run = {n: given[n] if n in given else recorded[n] for n in SELECTING if n in given or n in recorded}
    if spec.scheme and not baseline_mode_given and recorded.get("mode") in ("hm", "hm-var"):
        spec = dataclasses.replace(spec, mode=recorded["mode"])
    return rule_config(dataset, spec, **run, **local)


def runs_left_out(dataset_dir: str | Path, specs: list[RuleSpec]) -> list[str]:
    """Folders of ``dataset_dir`` holding a finished run of a rule not in ``specs``: a training of some
    of the rules writes a table of those alone, and says which saved runs it leaves out."""
    ours = {s.folder for s in specs}
    base = Path(dataset_dir)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in ours and (p / "results.json").is_file())


def is_complete(results: dict) -> bool:
    """Whether a rule's results hold all that :func:`train_rule` writes: a device rule's carry its
    ``devices`` ledger (a results.json without it is a run stopped before the ledger was written, or
    one of ``ferristor train``); training the rule again in its folder completes it."""
    return "devices" in results or results.get("config", {}).get("mode") == "fp"


# --- the table ---------------------------------------------------------------------------------------

def _kind(rep: dict, kind: str) -> dict | None:
    return rep["network"]["devices"]["kinds"].get(kind)


def _per_chip(results: dict, kind: str, *path) -> list[float]:
    out = []
    for rep in results.get("devices") or []:
        k = _kind(rep, kind)
        v = k
        for p in path:
            v = None if v is None else v[p]
        out.append(0.0 if v is None else float(v))
    return out


def _role_max_mean(rep: dict, kind: str) -> float:
    k = _kind(rep, kind)
    return max((r["mean"] for r in k["roles"].values()), default=0.0) if k else 0.0


def rule_row(label: str, results: dict, rate: float) -> dict:
    """One rule's line: accuracy over seeds, device figures averaged over the chips, lifetime of the
    worst device of the worst chip at ``rate`` samples/s."""
    cfg = results["config"]
    acc = 100 * np.asarray(results["final_test_accuracy"], dtype=float)
    devs = results.get("devices") or []
    scheme = cfg.get("scheme") or {"rule": "hybrid"}
    is_fp = cfg["mode"] == "fp"
    row = {"rule": label, "mode": cfg["mode"], "scheme": scheme["rule"], "k": None if scheme["rule"] == "memristor-sgd" else cfg["rule"]["k"],
           "seeds": len(acc), "accuracy": acc.tolist(), "accuracy_mean": float(acc.mean()),
           "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
           "samples_per_replica": results["samples_per_replica"], "not_a_device": is_fp,
           "us_per_sample": results["timing"]["us_per_sample_replica"], "train_seconds": results["timing"]["train_seconds"]}
    if not devs:
        return row
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    costs = device_costs(LedgerConfig(**(cfg.get("ledger") or {})))
    for kind in ("memristor", "fecap", "digital"):
        row[f"{kind}_mean"] = mean(_per_chip(results, kind, "ops", "mean"))
        row[f"{kind}_worst"] = mean(_per_chip(results, kind, "ops", "worst"))
        row[f"{kind}_worst_max"] = max(_per_chip(results, kind, "ops", "worst"))
        row[f"{kind}_devices"] = int(_per_chip(results, kind, "devices")[0])
        if kind != "digital":
            row[f"{kind}_energy_nJ"] = mean(_per_chip(results, kind, "energy_nJ", "total"))
            # the digest §5 convention: the most written device of each kind (a sign/MSB FeCAP)
            row[f"{kind}_energy_device_nJ"] = mean([_role_max_mean(r, kind) for r in devs]) * costs[kind].energy_nJ_per_op
    row["energy_nJ"] = row["memristor_energy_nJ"] + row["fecap_energy_nJ"]
    row["energy_device_nJ"] = row["memristor_energy_device_nJ"] + row["fecap_energy_device_nJ"]
    if not is_fp:
        # as ``ferristor lifetime`` and the report read the same run folder (one implementation): the
        # worst chip's worst devices, the memristor's operations per transfer, a transfer every k samples
        p = measured_lifetime(run_of(results, Path(label) / "results.json", label))
        if p is not None:
            row["lifetime_days"] = dict(zip(("memristor", "fecap"), p.days(rate)))
    return row


def _e(x: float) -> str:
    return "0" if not x else (f"{x:,.1f}" if x >= 100 else f"{x:.3g}")


def _ops(x: float) -> str:
    return "0" if not x else (f"{x:,.0f}" if x >= 10 else f"{x:.3g}")


MODE_WORDS = {"hm": "ideal memristor writes", "hm-var": "memristor writes with variability, σ = 0.594 level, digest §3",
              "fp": "float32 weights, no device"}


def modes_differ(rows: list[dict]) -> bool:
    """Whether the device rows were trained in more than one mode (``--baseline-mode hm`` beside hm-var)."""
    return len({r["mode"] for r in rows if not r["not_a_device"]}) > 1


def format_table(rows: list[dict], rate: float) -> str:
    """The table; where the device rows' modes differ, a mode column and a line saying what each means."""
    with_mode = modes_differ(rows)
    head = ["rule", *(["mode"] if with_mode else []), "k", "accuracy % (mean ± std)", "memristor ops/device: mean · worst", "FeCAP ops/device: mean · worst",
            "energy/device nJ: memristor + FeCAP", "network energy µJ: memristor + FeCAP",
            f"lifetime at {rate:g} sample/s: memristor · FeCAP", "µs/sample"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        spread = f"{r['accuracy_std']:.2f}" if r["seeds"] > 1 else "n/a"  # one seed has no spread (as compare's)
        acc = f"{r['accuracy_mean']:.2f} ± {spread} (n={r['seeds']})"
        if r["not_a_device"]:
            dev = ["not a device (digital float32)"] * 2 + ["–", "–", "–"]
            if "digital_mean" in r:
                dev[0] = f"not a device: {_ops(r['digital_mean'])} digital updates/weight"
        elif "memristor_mean" not in r:
            dev = ["–"] * 5
        else:
            life = r.get("lifetime_days", {})
            dev = [f"{_ops(r['memristor_mean'])} · {_ops(r['memristor_worst'])}",
                   f"{_ops(r['fecap_mean'])} · {_ops(r['fecap_worst'])}" if r["fecap_devices"] else "no FeCAP",
                   f"{r['memristor_energy_device_nJ']:.3g} + {r['fecap_energy_device_nJ']:.3g}",
                   f"{_e(r['memristor_energy_nJ'] / 1e3)} + {_e(r['fecap_energy_nJ'] / 1e3)}",
                   (f"{format_days(life['memristor'])} · " + (format_days(life["fecap"]) if r["fecap_devices"] else "–"))
                   if life else NA]  # no ledger to measure it on
        k = "–" if r["k"] is None or r["not_a_device"] else str(r["k"])
        mode = [r["mode"]] if with_mode else []
        lines.append("| " + " | ".join([r["rule"], *mode, k, acc, *dev, f"{r['us_per_sample']:.0f}"]) + " |")
    if with_mode:
        shown = sorted({r["mode"] for r in rows})
        lines.append("\nmode: " + "; ".join(f"{m} = {MODE_WORDS.get(m, m)}" for m in shown)
                     + " (--baseline-mode sets the baselines')")
    return "\n".join(lines)


def _reached(results: dict, target: float) -> tuple[int, float] | None:
    """(step, epoch) of the first evaluation whose mean accuracy reaches ``target`` %."""
    for h in results.get("history") or []:
        if 100 * float(np.mean(h["test_accuracy"])) >= target:
            return int(h["step"]), float(h["epoch"])
    return None


def _ratio(num: float, den: float) -> float | None:
    """num / den, or None where den is 0 (no writes to compare with: the ratio is undefined)."""
    return num / den if den else None


def headline(rows: dict[str, dict], results: dict[str, dict], hybrid: str = "hm-var",
             baseline: str = "memristor-sgd") -> dict | None:
    """How many times less memristor programming energy the hybrid rule needs than a baseline (by
    default memristor-only SGD):
    over the same training, and at equal accuracy — the hybrid's energy at the first evaluation where
    its test accuracy had reached the baseline's final accuracy (it may have got there earlier, so
    the ratio is a lower bound; the FeCAP energy is scaled by the share of samples, approximately). The hybrid writes every pair at every transfer, so its
    memristor operations after s samples are exactly 2·2·floor(s/k) per pair (digest §5).
    A ratio over an energy of 0 (a hybrid that had made no transfer yet, or none in the whole run)
    is None, not a division: ``equal_accuracy_transfers`` 0 says the hybrid got there with no
    memristor write."""
    if hybrid not in rows or baseline not in rows or "memristor_energy_nJ" not in rows[hybrid] \
            or "memristor_energy_nJ" not in rows[baseline]:
        return None
    h, b = rows[hybrid], rows[baseline]
    out = {"hybrid": hybrid, "baseline": baseline, "hybrid_accuracy": h["accuracy_mean"],
           "baseline_accuracy": b["accuracy_mean"], "hybrid_mode": h["mode"], "baseline_mode": b["mode"],
           "hybrid_memristor_energy_nJ": h["memristor_energy_nJ"], "baseline_memristor_energy_nJ": b["memristor_energy_nJ"],
           "same_training_memristor": _ratio(b["memristor_energy_nJ"], h["memristor_energy_nJ"]),
           "same_training_total": _ratio(b["energy_nJ"], h["energy_nJ"])}
    reached = _reached(results[hybrid], b["accuracy_mean"]) if b["accuracy_mean"] <= h["accuracy_mean"] else None
    if reached is not None:
        step, epoch = reached
        k, n = h["k"], h["samples_per_replica"]
        done, total = step // k, n // k  # batch 1: a step is a sample
        out.update(equal_accuracy_epoch=epoch, equal_accuracy_transfers=done)
        if done and total:
            share = done / total
            out.update(equal_accuracy_memristor=_ratio(b["memristor_energy_nJ"], share * h["memristor_energy_nJ"]),
                       equal_accuracy_total=_ratio(b["energy_nJ"], share * h["energy_nJ"]))
    return out


def _of_kind(labels: list[str], kind: str) -> list[str]:
    """The rows standing for ``kind``: the one labelled exactly so, else every row of that kind (a rule
    with settings, 'hm-var:k=1000', is still the hybrid; 'memristor-sgd:lr=0.05' still memristor-sgd)."""
    return [kind] if kind in labels else labels


def headlines(rows: dict[str, dict], results: dict[str, dict]) -> list[dict]:
    """:func:`headline` for every baseline against the hybrid (``hm-var``), and every other hybrid
    variant against ``memristor-sgd`` (the issue's question first). Rows pair by their rule's kind (the
    preset before any settings), not the exact label, so rules with settings keep their headline."""
    preset = {k: k.split(":")[0] for k in rows}
    hybrids = [k for k, r in rows.items() if r["scheme"] == "hybrid" and not r["not_a_device"]]
    baselines = [k for k, r in rows.items() if r["scheme"] != "hybrid"]
    reference = _of_kind([k for k in hybrids if preset[k] == "hm-var"], "hm-var")
    sgd = _of_kind([k for k in baselines if rows[k]["scheme"] == "memristor-sgd"], "memristor-sgd")
    pairs = [(h, b) for h in reference for b in baselines] + [(h, b) for h in hybrids if h not in reference for b in sgd]
    pairs.sort(key=lambda p: not (p[0] in reference and p[1] in sgd))
    return [hl for h, b in pairs if (hl := headline(rows, results, h, b)) is not None]


def _same_training(hl: dict) -> str:
    """The over-the-same-training part of a headline; where the hybrid wrote no memristor, why there is
    no ratio (instead of a division by 0)."""
    if hl["same_training_memristor"] is not None:
        text = f"{hl['same_training_memristor']:.3g}× over the same training"
        if hl["same_training_total"] is not None:
            text += f" ({hl['same_training_total']:.3g}× counting the FeCAPs' energy too)"
        return text
    if hl.get("baseline_memristor_energy_nJ"):
        return (f"no ratio over the same training: {hl['hybrid']} wrote no memristor during training (no transfer), "
                f"{hl['baseline']} {hl['baseline_memristor_energy_nJ']:.3g} nJ")
    return "no ratio over the same training: neither wrote a memristor during training"


def format_headline(hl: dict | None) -> str:
    if hl is None:
        return ("headline: needs a hybrid run (hm-var, with any settings) and a baseline run (memristor-sgd, "
                "mixed-precision or tiki-taka)")
    text = (f"memristor programming energy of {hl['baseline']} ({hl['baseline_accuracy']:.2f} %) over {hl['hybrid']} "
            f"({hl['hybrid_accuracy']:.2f} %): {_same_training(hl)}")
    if "equal_accuracy_memristor" in hl and hl["equal_accuracy_memristor"] is not None:
        total = hl["equal_accuracy_total"]
        text += (f"; ≥ {hl['equal_accuracy_memristor']:.3g}× at equal accuracy ("
                 + (f"≥ {total:.3g}× with the FeCAPs; " if total is not None else "")
                 + f"the hybrid was at {hl['baseline_accuracy']:.2f} % by the evaluation after "
                 f"{hl['equal_accuracy_epoch']:g} epochs, perhaps earlier)")
    elif "equal_accuracy_epoch" in hl:
        text += (f"; the hybrid was at {hl['baseline_accuracy']:.2f} % by the evaluation after "
                 f"{hl['equal_accuracy_epoch']:g} epochs, "
                 + ("before its first transfer: no memristor writes yet, so no equal-accuracy ratio"
                    if not hl.get("equal_accuracy_transfers") else
                    "with no memristor energy spent yet to compare with, so no equal-accuracy ratio"))
    elif hl["baseline_accuracy"] > hl["hybrid_accuracy"]:
        text += "; the baseline ends more accurate than the hybrid, so there is no equal-accuracy point"
    else:
        text += "; the hybrid reached the baseline's accuracy at no evaluation, so there is no equal-accuracy point"
    if hl.get("baseline_mode", hl.get("hybrid_mode")) != hl.get("hybrid_mode"):
        text += (f". Not the same devices: {hl['baseline']} was trained in mode {hl['baseline_mode']} "
                 f"({MODE_WORDS.get(hl['baseline_mode'], hl['baseline_mode'])}), {hl['hybrid']} in mode "
                 f"{hl['hybrid_mode']} ({MODE_WORDS.get(hl['hybrid_mode'], hl['hybrid_mode'])})")
    if hl["baseline"].startswith("memristor-sgd"):  # the paper's own figure is of another pair: say which
        text += (". The paper's 38× (digest §5) is another pair: the hybrid at k = 100 against the hybrid at k = 1 "
                 "(a transfer after every sample; --rules hm-var,hm-var:k=1), FeCAP + memristor energy per device")
    return text


# --- the plot ---------------------------------------------------------------------------------------

_COLORS = {"fp": "#4c72b0", "hm": "#dd8452", "hm-var": "#55a868", "memristor-sgd": "#c44e52",
           "mixed-precision": "#8172b3", "tiki-taka": "#937860"}


def plot_rules(rows_by_dataset: dict[str, list[dict]], path: str | Path, mem_endurance_ops: float = 2e5) -> Path:
    """Per dataset, accuracy against the network's training energy and against the worst memristor's
    operations; fp (no device) as a dashed line. Needs matplotlib (``pip install ferristor[plot]``)."""
    from matplotlib.figure import Figure

    from ..atomic import atomic_write

    n = len(rows_by_dataset)
    fig = Figure(figsize=(10, 3.8 * n))
    for i, (dataset, rows) in enumerate(rows_by_dataset.items()):
        axes = [fig.add_subplot(n, 2, 2 * i + 1), fig.add_subplot(n, 2, 2 * i + 2)]
        for ax, key, xlabel in ((axes[0], "energy_nJ", "network training energy, memristor + FeCAP (µJ)"),
                                (axes[1], "memristor_worst", "worst memristor: programming operations")):
            for r in rows:
                color = _COLORS.get(r["rule"].split(":")[0], "#333333")
                if r["not_a_device"]:
                    ax.axhline(r["accuracy_mean"], ls="--", color=color, lw=1, label=f"{r['rule']} (not a device)")
                    continue
                if key not in r:
                    continue
                x = r[key] / 1e3 if key == "energy_nJ" else r[key]
                ax.errorbar([x], [r["accuracy_mean"]], yerr=[r["accuracy_std"]], fmt="o", color=color, capsize=3,
                            label=r["rule"])
                ax.annotate(r["rule"], (x, r["accuracy_mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
            ax.set_xscale("log")
            ax.set_title(dataset, fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{dataset}: test accuracy (%)")
            ax.grid(alpha=0.3, which="both")
        axes[1].axvline(mem_endurance_ops, ls=":", color="black", lw=1, label="memristor endurance (10⁵ cycles)")
        axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=150, bbox_inches="tight")
    return path

"""``ferristor train``'s config: its options, a spec file's ``[base]`` (``--config``) and ``--set
PATH=VALUE``, on the task's preset. One way in for every field: an option is a named shortcut for a
config path; ``--set``/``--config`` reach every other field (the device chain of the circuit
transfer, the ledger's energies…) with the same parsing, checks and messages as ``ferristor sweep``.

Precedence: the task's preset (train's option defaults are the config's own), then the file, then
``--set``; an option given on the command line and a file or ``--set`` setting the same path is
refused, naming both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..experiments.config import TrainConfig, warn_unread_in_fp

# Each option of ``train`` (its parameter name) → the config path it sets. ``tests/cli`` checks that
# every option is here or in NOT_CONFIG and that every path exists.
OPTION_PATHS = {
    "dataset": "dataset", "mode": "mode", "k": "rule.k", "p": "rule.p", "lr": "rule.lr", "epochs": "epochs",
    "batch": "batch", "norm": "network.norm", "seeds": "seeds", "rounding": "rule.rounding",
    "k_unit": "rule.k_unit", "batch_reduction": "rule.batch_reduction", "sampler": "rule.sampler",
    "init_scale": "rule.init_scale", "init_shape": "rule.init_shape", "hidden_lsb": "rule.hidden_lsb",
    "sigma_levels": "transfer.sigma_levels", "level_means": "transfer.level_means",
    "transfer_model": "transfer.model", "skip_zero_updates": "ledger.count_zero_updates",
    "skip_unchanged_transfers": "ledger.transfer_writes_unchanged",
    "memristor_ops_unselected": "ledger.memristor_ops_unselected", "eval_every": "eval_every",
    "test_limit": "test_limit", "eval_batch": "eval_batch", "validation": "validation",
    "validation_seed": "validation_seed", "bias": "network.bias", "output_norm": "network.output_norm",
    "threads": "threads", "backend": "backend", "device": "device", "data_dir": "data_dir",
}
NEGATED = ("skip_zero_updates", "skip_unchanged_transfers")  # flags that turn a True field off
NOT_CONFIG = ("out", "fresh", "progress", "config_file", "sets")  # where and how, not what is computed
_GIVEN = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def option_values(ctx: click.Context) -> dict[str, tuple[str, Any]]:
    """{'--k': ('rule.k', 10)} for the options given on the command line (or by their environment
    variable), each named by the flag as typed (--no-bias, not --bias). Options not given add
    nothing: their defaults are the config's own (``configs.default``) or the task's."""
    given = {}
    for p in ctx.command.params:
        if p.name not in OPTION_PATHS or ctx.get_parameter_source(p.name) not in _GIVEN:
            continue
        value = ctx.params[p.name]
        if value is None:
            continue
        flag = p.secondary_opts[0] if p.secondary_opts and value is False else p.opts[0]
        given[flag] = (OPTION_PATHS[p.name], (not value) if p.name in NEGATED else value)
    return given


def train_config(ctx: click.Context, config_file: Path | None, sets: tuple[str, ...]) -> TrainConfig:
    from ..errors import ConfigError, NegatedFlag
    from ..sweeps import configs
    from ..sweeps.spec import SpecError, blame, build_spec
    from .common import current_namer, name_fields

    given = option_values(ctx)
    options_namer = current_namer()

    negated = {OPTION_PATHS[name] for name in NEGATED}

    def namer(field: str) -> str | None:
        """A config field by the option the user typed, else by its path (the preset, a default, the
        file or --set gave it, not an option); anything else (--out, --fresh) as before. A flag that
        turns its field off (NEGATED) is a NegatedFlag: its field's values are said as the flag's."""
        typed = next((NegatedFlag(flag) if path in negated else flag
                      for flag, (path, _) in given.items() if configs.field_is(field, path)), None)
        if typed or any(configs.field_is(field, path) for path in OPTION_PATHS.values()):
            return typed
        return options_namer(field) if options_namer else None
    name_fields(namer)
    spec = build_spec(config_file, sets, (), check_values=False)  # paths and parsing checked here
    if spec.grid or spec.points:
        raise SpecError(f"--config {config_file}: its [grid]/[[points]] make a sweep of several runs: run it with "
                        f"'ferristor sweep {config_file}', or keep only [base] for one run")
    if spec.seeds_per_trial is not None:
        raise SpecError(f"--config {config_file}: seeds_per_trial splits a sweep's seeds into trials; train runs all "
                        f"its seeds as replicas of one run: remove it, or run 'ferristor sweep {config_file}'")
    for flag, (path, _) in given.items():
        if path in spec.base or (path == "seeds" and "seeds" in spec.origin):
            where = spec.where(path)
            hint = "" if where.startswith("--set") else f" (to override the file: --set {path}=VALUE)"
            raise SpecError(f"{flag} and {where} both set {path}: give it once{hint}")
    overrides = {**spec.base, **dict(given.values())}
    if "seeds" in spec.origin and "--seeds" not in given:
        overrides["seeds"] = spec.seeds
    try:
        cfg = configs.resolve(overrides)
    except ConfigError as e:  # a value of the file or --set is named by where it was given
        who = blame(spec, spec.base, e)
        if who is None:
            raise
        raise SpecError(f"{who}: {e.render(namer)}") from None
    warn_unread_in_fp(cfg)  # one run: its k, rounding, ledger… that fp never reads (a sweep's points stay quiet)
    return cfg

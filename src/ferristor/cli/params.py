"""``ferristor params`` — every parameter of every model, with its default, unit and source."""
from __future__ import annotations

import dataclasses
import importlib

import click

from ..config_base import describe

# Modules whose dataclasses are parameters a user may change, bottom-up.
_MODULES = ("ferristor.physics.fecap", "ferristor.physics.memristor", "ferristor.physics.transistor",
            "ferristor.circuit.layout", "ferristor.circuit.ledger", "ferristor.circuit.transfer",
            "ferristor.circuit.charge_transfer", "ferristor.rule.config", "ferristor.rule.schemes", "ferristor.nn.mlp",
            "ferristor.data.ecg", "ferristor.experiments.config")
# Modules that hold other dataclasses too (results): only these classes are parameters.
_CLASSES = {"ferristor.transfer_learning.heads": ("OfflineConfig", "OnlineConfig"),
            "ferristor.transfer_learning.protocol": ("ProtocolConfig",),
            "ferristor.backbones.backbone": ("BackboneSpec",),
            "ferristor.transfer_learning.pretrain": ("PretrainConfig",),
            "ferristor.transfer_learning.fig6": ("Fig6Config",)}


def _is_settings(cls) -> bool:
    """A config a user may make as it is, every field with a default; a record the engine fills in
    (``circuit.ledger.LayerCounts``: a layer's counters) has fields without one and is no parameter."""
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))


def config_classes():
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(mod).values():
            if dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == name and _is_settings(obj):
                yield obj
    for name, names in _CLASSES.items():
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        yield from (getattr(mod, n) for n in names)


@click.command("params")
@click.argument("name", required=False)
@click.option("--paths", is_flag=True, help="list train's config paths (what --set and a sweep's --grid take), "
                                             "each with its default, unit and source; NAME: a path or section to start "
                                             "from (fig6's paths: ferristor fig6 --list-paths)")
def params(name, paths):
    """List the parameters of every config (or of those whose class name contains NAME); with --paths,
    or a dotted NAME (transfer.circuit), train's config paths."""
    if paths or (name and "." in name):
        _paths(name)
        return
    classes = list(config_classes())
    chosen = [c for c in classes if not name or name.lower() in c.__name__.lower()]
    if not chosen:
        raise click.BadParameter(f"{name!r} matches no config class; known: {', '.join(c.__name__ for c in classes)}",
                                 param_hint="NAME")
    for cls in chosen:
        click.echo(f"\n{cls.__name__} ({cls.__module__})")
        nested = _nested_defaults(cls)
        for row in describe(cls):
            if row["name"] in nested:  # a whole config: its fields are listed under its own name
                click.echo(f"  {row['name']} → {nested[row['name']]} (`ferristor params {nested[row['name']]}`)")
                continue
            click.echo(f"  {row['name']} = {row['default']}{_described(row)}")


def _nested_defaults(cls) -> dict[str, str]:
    """Field name → class name, for the fields of ``cls`` whose default is itself a config."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                out[f.name] = type(value).__name__
    return out


def _paths(prefix: str | None) -> None:
    """Every config path under ``prefix`` (a section or a path), with its default and metadata."""
    from ..sweeps import configs
    chosen = [p for p in configs.config_paths() if not prefix or p == prefix or p.startswith(prefix + ".")]
    if not chosen:
        raise click.BadParameter(f"{prefix!r} is no config path or section: expected {configs.expected_paths(prefix)}",
                                 param_hint="NAME")
    print_paths(chosen, configs.field, configs.default)


def _described(m) -> str:
    """' [unit] — doc  (source)' of a field's metadata (or a describe() row), each part where given."""
    unit = f" [{m['unit']}]" if m.get("unit") else ""
    doc = f" — {m['doc']}" if m.get("doc") else ""
    src = f"  ({m['source']})" if m.get("source") else ""
    return f"{unit}{doc}{src}"


def print_paths(chosen, field_of, default_of) -> None:
    """One line per config path: its default, unit, doc and source (train's paths here, fig6's too)."""
    for path in chosen:
        click.echo(f"{path} = {default_of(path)!r}{_described(field_of(path).metadata)}")

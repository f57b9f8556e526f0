"""A sweep's specification: a base config, axes, seeds; read from a TOML or YAML file and/or from
``--set``/``--grid`` options, and checked against the config's fields before any work starts.

File form (TOML shown; YAML has the same keys)::

    name = "k-sweep"                  # optional
    seeds = "0-9"                     # one replica per seed; a trial runs its seeds in one process
    seeds_per_trial = 10              # optional: split the seeds into trials of this many
    [base]                            # any config field, nested or dotted
    dataset = "mnist"
    mode = "hm"
    epochs = 10
    [grid]                            # axes crossed with each other
    "rule.k" = [1, 2, 5, 10]
    [[points]]                        # optional explicit points, each crossed with the grid
    "rule.rounding" = "nearest"       # (a point's value replaces the base's; a grid axis's path is in neither)

``--set``/``--grid`` (and options such as ``--threads``) replace the file's value of their path
wherever it is: in [base], [grid] and every point.

Every path is a dotted field of ``TrainConfig`` (``ferristor params`` lists them); an unknown path
fails at once with the list of allowed ones, and every value is checked by the config's own
validation, naming where it was given (``--grid rule.k``, ``spec.toml [grid] rule.k``).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, FerristorError, FerristorWarning
from ..experiments.config import TrainConfig
from ..experiments.seeds import parse_seeds
from . import configs


class SpecError(FerristorError):
    """A sweep specification is malformed: the message names the file or option and what is wrong."""


SPEC_KEYS = ("name", "seeds", "seeds_per_trial", "base", "grid", "points")
# Config paths that only an option of the command sets, for every trial at once: the driver loads each
# dataset once, from --data-dir, and ships the tensors to the workers, which read no data folder; a
# data_dir per trial (or in the base) could only be ignored or contradict --data-dir.
OPTION_ONLY = {"data_dir": "--data-dir"}
# Config fields that say only where and how a trial runs, not what it computes: no trial's key holds
# them (a sweep resumes elsewhere, with other threads), so trials differing only in them are one.
EXECUTION_FIELDS = ("data_dir", "threads", "checkpoint_every")


@dataclass
class SweepSpec:
    base: dict[str, Any] = field(default_factory=dict)  # path → value
    grid: dict[str, list] = field(default_factory=dict)  # path → values, crossed
    points: list[dict[str, Any]] = field(default_factory=list)  # explicit points, crossed with the grid
    seeds: list[int] = field(default_factory=lambda: [0])
    seeds_per_trial: int | None = None  # None: all seeds in one trial
    name: str | None = None
    origin: dict[str, str] = field(default_factory=dict)  # path → where it was given, for messages

    def where(self, path: str) -> str:
        return self.origin.get(path, path)

    def points_overrides(self) -> list[tuple[dict, dict]]:
        """(params, overrides) per point of the sweep, seeds excluded: params are what varies."""
        axes = list(self.grid)
        out = []
        for point in self.points or [{}]:
            for values in itertools.product(*(self.grid[a] for a in axes)):
                params = {**point, **dict(zip(axes, values))}
                out.append((params, {**self.base, **params}))
        return out

    def seed_groups(self) -> list[list[int]]:
        n = self.seeds_per_trial or len(self.seeds)
        return [self.seeds[i:i + n] for i in range(0, len(self.seeds), n)]


def flatten(tree: dict, where: str, cls=TrainConfig, prefix: str = "", _seen: dict | None = None,
            _keys: tuple = ()) -> dict[str, Any]:
    """{'rule': {'k': 1}, 'transfer.sigma_levels': 0.3} → {'rule.k': 1, 'transfer.sigma_levels': 0.3},
    following the config's structure (a nested dataclass field is a table, anything else a leaf).
    A path given twice ('rule.k' and rule = {k = …}) is refused: one of the two would be dropped."""
    if not isinstance(tree, dict):
        raise SpecError(f"{where}: expected a table of config fields, got {tree!r}")
    seen = {} if _seen is None else _seen  # path → how it was spelled, for the message
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        keys = (*_keys, str(key))
        if isinstance(value, dict):
            out.update(flatten(value, where, cls, f"{path}.", seen, keys))
            continue
        try:
            configs.check_path(path)
        except ConfigError:
            raise SpecError(f"{where}: unknown config path '{path}': expected {configs.expected_paths(path)}") from None
        if path in OPTION_ONLY:
            raise SpecError(f"{where} {path}: {_option_only(path)}")
        if path in seen:
            raise SpecError(f"{where}: {path} was already given (as {seen[path]}), and again as {_spelled(keys)}; "
                            f"give each config path once")
        seen[path] = _spelled(keys)
        out[path] = value
    return out


def _spelled(keys: tuple) -> str:
    """How a path was written: key 'rule.k', or key 'k' of table 'rule'."""
    if len(keys) == 1:
        return f"key '{keys[0]}'"
    return f"key '{keys[-1]}' of table '{'.'.join(keys[:-1])}'"


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, true/false/null, [lists]), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def parse_assignment(text: str, option: str, many: bool) -> tuple[str, Any]:
    """'rule.k=1,10,100' → ('rule.k', [1, 10, 100]) (many) or 'epochs=0.5' → ('epochs', 0.5)."""
    path, eq, raw = text.partition("=")
    path = path.strip()
    if not eq or not path or not raw.strip():
        raise SpecError(f"{option} {text!r}: expected PATH=VALUE{',VALUE...' if many else ''}, e.g. "
                        f"{'rule.k=1,10,100' if many else 'epochs=0.5'}")
    try:
        configs.check_path(path)
    except ConfigError:
        raise SpecError(f"{option} {text!r}: unknown config path '{path}': expected {configs.expected_paths(path)}") from None
    if path in OPTION_ONLY:
        raise SpecError(f"{option} {text!r}: {_option_only(path)}")
    if not many:
        return path, parse_value(raw)
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]") and raw.count("[") > 1:  # JSON list of list values
        values = parse_value(raw)
        if not isinstance(values, list):
            raise SpecError(f"{option} {text!r}: '{raw}' is not a JSON list of values")
    else:
        values = [parse_value(v) for v in raw.split(",")]
    if any(v == "" for v in values):
        raise SpecError(f"{option} {text!r}: an empty value in the list")
    return path, values


def _option_only(path: str) -> str:
    return (f"not a setting of a spec file or --set: use {OPTION_ONLY[path]} (the data are loaded once, "
            f"before any work, and a sweep sends them to every trial)")


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"spec file {path}: cannot be read ({e})") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"spec file {path}: not valid TOML ({e})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise SpecError(f"spec file {path}: YAML needs PyYAML (pip install 'ferristor[cluster]' or pyyaml); "
                            f"or write the spec as TOML") from None
        try:
            data = yaml.load(text, Loader=_yaml_loader(yaml))
        except _DuplicateKey as e:
            lines = f"line {e.lines[0]}" if e.lines[0] == e.lines[1] else f"lines {e.lines[0]} and {e.lines[1]}"
            raise SpecError(f"spec file {path}: {e.path} is given twice ({lines}), and "
                            f"YAML would keep the last silently; give each config path once") from None
        except yaml.YAMLError as e:
            raise SpecError(f"spec file {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    else:
        raise SpecError(f"spec file {path}: expected a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise SpecError(f"spec file {path}: expected a table at the top level")
    return data


def _yaml_loader(yaml):
    """PyYAML's safe loader, reading ``1e-2`` and ``5E3`` as floats: YAML 1.1 wants a dot in a float
    (``1.0e-2``) and gives a string, refused as "expected a number" where TOML and --grid read a
    float. The known fix: YAML 1.1's float pattern with the dot optional before an exponent."""
    class Loader(yaml.SafeLoader):  # a subclass: add_implicit_resolver copies the table, SafeLoader is unchanged
        def construct_document(self, node):
            # PyYAML keeps the last of a mapping's duplicate keys ({k: 5, k: 7} is {k: 7}): refused first
            _no_duplicate_keys(node, "", set())
            return super().construct_document(node)
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))
    return Loader


class _DuplicateKey(Exception):
    def __init__(self, path: str, lines: tuple[int, int]):
        super().__init__(path)
        self.path, self.lines = path, lines


def _no_duplicate_keys(node, prefix: str, visited: set) -> None:
    """Raise :class:`_DuplicateKey` for a YAML mapping that holds a key twice (its dotted path and both
    lines); the keys a merge (<<) brings in may be replaced, as YAML means them to."""
    import yaml
    if id(node) in visited:  # an alias: its node was walked where its anchor is
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            if name is not None:
                if name in first:
                    raise _DuplicateKey(f"{prefix}{name}", (first[name], key.start_mark.line + 1))
                first[name] = key.start_mark.line + 1
            _no_duplicate_keys(value, f"{prefix}{name}." if name is not None else prefix, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_duplicate_keys(item, f"{prefix.rstrip('.')}[{i}].", visited)


def from_file(path: str | Path) -> SweepSpec:
    path = Path(path)
    data = _read(path)
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        raise SpecError(f"spec file {path}: unknown key '{unknown[0]}': expected {', '.join(SPEC_KEYS)}")
    spec = SweepSpec(name=data.get("name"))
    base = flatten(data.get("base", {}), f"spec file {path} [base]")
    if "seeds" in base:
        raise SpecError(f"spec file {path} [base]: give the seeds at the top level (seeds = \"0-9\")")
    for p in base:
        spec.origin[p] = f"{path.name} [base] {p}"
    grid = flatten(data.get("grid", {}), f"spec file {path} [grid]")
    for p, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"spec file {path} [grid] {p}: expected a non-empty list of values, got {values!r}")
        spec.origin[p] = f"{path.name} [grid] {p}"
    points = data.get("points", [])
    if not isinstance(points, list):
        raise SpecError(f"spec file {path} points: expected a list of tables ([[points]] in TOML)")
    spec.points = [flatten(pt, f"spec file {path} points[{i}]") for i, pt in enumerate(points)]
    for i, pt in enumerate(spec.points):
        for p in pt:
            spec.origin.setdefault(p, f"{path.name} points[{i}] {p}")
    # every trial takes an axis's values: a [base] or [[points]] value on its path could only be dropped
    for p in grid:
        if p in base:
            raise SpecError(f"spec file {path} [grid] {p}: also set in [base] ({p}={base[p]!r}), which no trial would "
                            f"use (every trial takes the grid's values): set {p} in [base] or in [grid], not both")
        for i, pt in enumerate(spec.points):
            if p in pt:
                raise SpecError(f"spec file {path} [grid] {p}: also set by points[{i}] ({p}={pt[p]!r}), which no trial "
                                f"would use (each point is crossed with every grid value): set {p} in [grid] or in "
                                f"[[points]], not both")
    spec.base, spec.grid = base, grid
    if "seeds" in data:
        spec.seeds = _seeds(data["seeds"], f"spec file {path} seeds")
        spec.origin["seeds"] = f"{path.name} seeds"
    if "seeds_per_trial" in data:
        spec.seeds_per_trial = _per_trial(data["seeds_per_trial"], f"spec file {path} seeds_per_trial")
    if spec.name is not None and not isinstance(spec.name, str):
        raise SpecError(f"spec file {path} name: expected a string")
    return spec


def _seeds(value, where: str) -> list[int]:
    try:
        return parse_seeds(value)
    except ConfigError as e:
        raise SpecError(f"{where}: {e.allowed}, got {value!r}") from None


def _per_trial(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{where}: expected an integer ≥ 1, got {value!r}")
    return value


def build_spec(file: str | Path | None = None, sets: tuple[str, ...] = (), grids: tuple[str, ...] = (),
               seeds: str | None = None, seeds_per_trial: int | None = None,
               options: dict[str, tuple[str, Any]] | None = None, check_values: bool = True) -> SweepSpec:
    """The spec of a file (optional) with command-line ``--set``/``--grid``/``--seeds`` on top: a path
    given on the command line replaces the file's value wherever it is, in [base], [grid] or [[points]];
    ``options``: config fields given by an option of their own ({'--threads': ('threads', 2)}), named
    by it in messages. A path given twice on the command line is refused, naming both. The values are
    checked on the base config (:func:`check`) unless ``check_values`` is False (the caller resolves
    them with more settings and names the culprit itself: :func:`blame`)."""
    spec = from_file(file) if file else SweepSpec()
    given: dict[str, str] = {}  # path → the option that gave it on the command line

    def once(path: str, how: str) -> None:
        if path in given:
            raise SpecError(f"{how}: {path} was already given by {given[path]}; give each config path once"
                            f"{' (one --grid holds all its values)' if how.startswith('--grid') else ''}")
        given[path] = how

    def override(path: str, how: str) -> None:
        """The command line wins over the file: ``path`` leaves its [[points]] (the caller drops it from
        [base] or [grid]). Points that then differ in nothing would be one trial twice: refused, named."""
        before = [config_key(pt) for pt in spec.points]
        first: dict[str, int] = {}
        for j, pt in enumerate(spec.points):
            pt.pop(path, None)
            i = first.setdefault(config_key(pt), j)
            if before[i] != before[j]:
                raise SpecError(f"{how}: replaces {path} in the points of {Path(file).name}, which leaves points[{i}] "
                                f"and points[{j}] the same ({json.dumps(pt)}): drop one of them from the file, or "
                                f"leave {path} to the points")
    for text in sets:
        path, value = parse_assignment(text, "--set", many=False)
        if path == "seeds":
            raise SpecError(f"--set {text!r}: use --seeds for the seeds")
        once(path, f"--set {text!r}")
        override(path, f"--set {text!r}")
        spec.base[path], spec.origin[path] = value, f"--set {path}"
        spec.grid.pop(path, None)
    for text in grids:
        path, values = parse_assignment(text, "--grid", many=True)
        if path == "seeds":
            raise SpecError(f"--grid {text!r}: use --seeds (all seeds of a trial run as replicas in one process) "
                            f"and --seeds-per-trial to split them")
        once(path, f"--grid {text!r}")
        override(path, f"--grid {text!r}")
        spec.grid[path], spec.origin[path] = values, f"--grid {path}"
        spec.base.pop(path, None)
    for option, (path, value) in (options or {}).items():
        once(path, f"{option} {value}")
        override(path, f"{option} {value}")
        spec.base[path], spec.origin[path] = value, option
        spec.grid.pop(path, None)
    _no_execution_axes(spec)
    if seeds is not None:
        spec.seeds = _seeds(seeds, "--seeds")
    if seeds_per_trial is not None:
        spec.seeds_per_trial = _per_trial(seeds_per_trial, "--seeds-per-trial")
    if check_values:
        check(spec)
    return spec


def check(spec: SweepSpec) -> None:
    """Each value alone on the base config, then every point: the first bad one fails, named."""
    try:
        configs.resolve(spec.base)
    except ConfigError as e:
        who = _blame(spec, spec.base, e)
        if by_option(who):  # an option of its own (--threads) names the field
            raise SpecError(e.render(lambda f: who if f == e.field else None)) from None
        raise SpecError(f"{who}: {e}") from None
    for path, values in spec.grid.items():
        _no_repeats([config_key(v, path) for v in values], lambda i: f"{spec.where(path)}: {values[i]!r}",
                    lambda i: repr(values[i]))
        for v in values:
            try:
                configs.resolve({**spec.base, path: v})
            except ConfigError as e:
                raise SpecError(f"{spec.where(path)}={v!r}: {e}") from None
    _no_repeats([config_key(pt) for pt in spec.points], lambda i: f"the point {json.dumps(spec.points[i])}")
    for params, overrides in spec.points_overrides():
        try:
            configs.resolve(overrides)
        except ConfigError as e:
            raise SpecError(f"the point {json.dumps(params)}: {e}") from None


def by_option(where: str) -> bool:
    """Whether ``spec.where`` names an option of its own (``--threads``), not ``--set PATH``/``--grid PATH``
    or a file: such an option names the field itself, so its value reads ``--threads 4``, not ``…=4``."""
    return where.startswith("--") and " " not in where


def _no_execution_axes(spec: SweepSpec) -> None:
    """A grid over threads (or points differing only in them) would be one trial per point, the other
    values dropped without a word (trials differing only in EXECUTION_FIELDS share a key): refused."""
    for path, values in spec.grid.items():
        if path in EXECUTION_FIELDS and len(values) > 1:
            raise SpecError(f"{spec.where(path)}: {path} says how a trial runs, not what it computes (no trial's key "
                            f"holds it), so its values would be one trial: give it one value")
    first: dict[str, int] = {}
    for j, pt in enumerate(spec.points):
        i = first.setdefault(config_key({k: v for k, v in pt.items() if k not in EXECUTION_FIELDS}), j)
        differ = sorted(k for k in EXECUTION_FIELDS if spec.points[i].get(k) != pt.get(k))
        if differ:  # equal points are check's (given twice)
            raise SpecError(f"points[{i}] and points[{j}] differ only in {', '.join(differ)}, which says how a trial runs, "
                            f"not what it computes (no trial's key holds it): they would be one trial; drop one")


def config_key(value, path: str | None = None) -> str:
    """What a trial sees of a point (``path`` None: {path: value}) or of one value of ``path``, as JSON:
    each value as the config takes it (``configs.coerce``: rule.k=1e2 is 100), so values that would
    make one trial compare equal. The one way to compare values: a spec's repeats here, a recorded
    spec against a new one in ``run.spec_changes``."""
    if path is not None:
        return json.dumps(_as_config(path, value), sort_keys=True)
    return json.dumps({p: _as_config(p, v) for p, v in value.items()}, sort_keys=True)


def _as_config(path: str, value) -> Any:
    """``value`` as the config takes it at ``path``; as written at a path this version does not know
    (a spec recorded by another one: it compares, it is not refused here)."""
    try:
        return configs.coerce(path, value)
    except ConfigError:  # coerce refuses only an unknown path, never a value
        return value


def _no_repeats(keys: list[str], name, shown=None) -> None:
    """A value given twice would have been one trial, silently: refused, named by ``name(index)``;
    ``shown(index)``, where given, names the earlier value when it was written otherwise (1e1, 10)."""
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in first:
            same = f" (the same value as {shown(first[k])} before)" if shown and shown(first[k]) != shown(i) else ""
            raise SpecError(f"{name(i)} is given twice{same}: each value once")
        first[k] = i


def check_against_data(spec: SweepSpec, datasets: dict) -> None:
    """Every point's network and batch against the data it trains on (features, classes, samples):
    the driver loads each dataset once anyway, for the trial keys, so a point that cannot train fails
    here, named, before any trial runs (and in --dry-run), not as a failed trial."""
    from ..experiments.preflight import check_data
    from .provenance import data_key
    seen = set()
    for params, overrides in spec.points_overrides():
        cfg = configs.resolve(overrides)
        key = data_key(configs.canonical(cfg))
        fit = (key, tuple(cfg.network.sizes), cfg.network.output, cfg.batch)
        if fit in seen:
            continue
        seen.add(fit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FerristorWarning)  # a k beyond the run: the trial itself warns
                check_data(cfg, datasets[key])
        except (ConfigError, DataError) as e:
            path = _blame_fit(spec, params, e)
            if path is None or (path in params and path not in spec.grid):  # a [[points]] entry: as check() names it
                raise SpecError(f"the point {json.dumps(params)}: {e}") from None
            raise SpecError(f"{spec.where(path)}={({**spec.base, **params})[path]!r}: {e}") from None


def _blame_fit(spec: SweepSpec, params: dict, e: Exception) -> str | None:
    """The path, varied by the point else set in the base, that made its network not fit its data."""
    paths = [e.field] if isinstance(e, ConfigError) else []
    paths += ["network.sizes", "network.output", "dataset", "batch"]
    for given in (params, spec.base):
        found = next((p for p in paths if p in given), None)
        if found is not None:
            return found
    return None


def _blame(spec: SweepSpec, overrides: dict, e: ConfigError) -> str:
    """The option that set the failing field, when it can be told, else 'the base config'."""
    return blame(spec, overrides, e) or "the base config"


def blame(spec: SweepSpec, overrides: dict, e: ConfigError) -> str | None:
    """Where (``spec.where``) the path of ``overrides`` that set the failing field was given, or None.
    Exact (``configs.field_is``): two paths ending in the same word (transfer.model and
    transfer.circuit.fecap.switching.model) are told apart by their owning class. A field refused for
    another one's value (``e.context``) where it was not itself given is named by where that one was."""
    for fields in ([e.field], list(e.context)):
        who = next((spec.where(path) for f in fields for path in overrides if configs.field_is(f, path)), None)
        if who is not None:
            return who
    return None


def describe(spec: SweepSpec) -> dict:
    """A JSON-ready record of the spec, kept in the store's metadata."""
    d = dataclasses.asdict(spec)
    d.pop("origin")
    return d

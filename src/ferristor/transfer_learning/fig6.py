"""Fig. 6 in kind: pretrain a 4-bit backbone on a source task, freeze it, train five classifier heads on
a target task with the paper's protocol, compare the gaps with the paper's.

The paper's pairs (CIFAR-10, ImageNet-derived tasks, digest §6; CIFAR-100 → CIFAR-10 and ImageNet → Pets/Flowers/Birds/Cars
in issue 9's account) cannot be fetched here;
the figure is reproduced in kind on MNIST/Fashion-MNIST (``PAIRS``), with the backbone pretrained on
the CPU. Any pair of image sets works (``SOURCE->TARGET``, names as ``images.resolve`` reads them).

Folder ``out``: ``backbones/<source>-<arch>/`` (pretraining, cached and resumable), ``features/``
(the feature cache), ``pairs/<pair>.json`` (one file per finished pair: a rerun skips it),
``fig6.json``, ``fig6.png`` and ``fig6.txt`` (the table). Names that read alike (``task_a`` and
``task/a``) get a short hash of the name after the second (:func:`unique_paths`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..config_base import param
from ..errors import ConfigError, ConfigMismatchError, FerristorWarning
from ..experiments import run_folder
from ..experiments.results import read_json, versions, write_json
from .features import cached_features
from .folds import balanced_pool
from .images import ImageSet, check_name, resolve
from .ledger import format_summary
from .paper import FIG6_TEXT
from .pretrain import (EVALUATION_ONLY, RESULTS_FILE, WEIGHTS_SHA256, PretrainConfig, pretrain, rounding_note, saved_differences,
                       trained, unfingerprinted, warn_unfingerprinted)
from .protocol import HEADS, ProtocolConfig, run_protocol

PAIRS = ("mnist->fashion-mnist", "fashion-mnist->mnist", "fashion-mnist[0-4]->fashion-mnist[5-9]")


def parse_pair(text: str) -> tuple[str, str]:
    parts = text.split("->")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError("pairs", text, "SOURCE->TARGET, e.g. mnist->fashion-mnist")
    return parts[0].strip(), parts[1].strip()


def slug(text: str) -> str:
    """A readable file name for ``text``; not one to one ('_', '/', '[0-4]' and '[0,4]' all become '-',
    and it is cut at 80 characters): :func:`unique_paths` makes the names a folder uses unique."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text.replace("->", "-to-")).strip("-")[:80]


def unique_paths(parent: Path, texts, held, suffix: str = "") -> dict[str, Path]:
    """Each of ``texts``' path under ``parent``: its readable slug, as ever, where that is its own —
    no text before it in ``texts`` takes it and ``held(path)`` (the text whose results are there, or
    None) names no other — else the slug with a short hash of the text. So names that slug alike
    never share a backbone or a pair file, and folders written before keep their names."""
    out: dict[str, Path] = {}
    for text in dict.fromkeys(texts):
        path = parent / f"{slug(text)}{suffix}"
        if any(p == path for p in out.values()) or held(path) not in (None, text):
            path = parent / f"{slug(text)}-{hashlib.sha256(text.encode()).hexdigest()[:8]}{suffix}"
        out[text] = path
    return out


def _backbone_held(folder: Path) -> str | None:
    """'SOURCE-ARCH' of the pretraining in a backbone folder (finished or checkpointed), or None."""
    try:
        if (folder / RESULTS_FILE).exists():
            ident = read_json(folder / RESULTS_FILE).get("identity")
        elif (folder / run_folder.CHECKPOINT).exists():
            ident = torch.load(folder / run_folder.CHECKPOINT, map_location="cpu", weights_only=True, mmap=True)["config"]
        else:
            return None
        return f"{ident['dataset']}-{ident['arch']}"
    except Exception:  # unreadable: taken as this source's, and named as such when it is used
        return None


def _pair_held(path: Path) -> str | None:
    """The pair whose results a pair file holds, or None."""
    try:
        return read_json(path)["identity"]["pair"] if path.exists() else None
    except Exception:  # unreadable: recomputed in its place (``_read_pair`` warns)
        return None


@dataclass
class Fig6Config:
    pairs: tuple[str, ...] = param(PAIRS, source="[I] in kind: the paper's pairs (digest §6) cannot be fetched here",
                                   doc="SOURCE->TARGET image sets, names as images.resolve reads them")
    pretrain: PretrainConfig = param(PretrainConfig(arch="lenet", epochs=2.0),
                                     source="[I] the CPU budget: LeNet, 2 epochs (the paper: MobileNet-V2, digest §6)",
                                     doc="the backbone's pretraining (PretrainConfig); its dataset is each pair's source")
    protocol: ProtocolConfig = param(ProtocolConfig(), source="[issue 9] the paper's protocol; digest §6 for p, k, lr",
                                     doc="the cross-validation and the five heads (ProtocolConfig)")
    per_class: int | None = param(1000, unit="image", source="[I] the CPU budget",
                                  doc="target images per class in the pool (before flips; None: all), a multiple of the folds")

    def __post_init__(self):
        for p in self.pairs:  # every name, before any data is read
            for name in parse_pair(p):
                try:
                    check_name(name)
                except ConfigError as e:
                    raise ConfigError("pairs", p, reason=f"{name!r} is not allowed: expected {e.allowed}") from None
        n, folds = self.per_class, self.protocol.folds
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < folds or n % folds):
            lo = max(folds, n // folds * folds) if isinstance(n, int) else folds
            near = f"{lo} or {lo + folds}" if isinstance(n, int) and lo < n else str(lo)
            raise ConfigError("per_class", n, f"a multiple of the folds (every fold the same size), e.g. {near}",
                              context={"protocol.folds": folds})

    def pair_identity(self, pair: str) -> dict:
        source, _ = parse_pair(pair)
        return {"pair": pair, "pretrain": {**dataclasses.replace(self.pretrain, dataset=source).identity()},
                "protocol": self.protocol.identity(), "per_class": self.per_class}


def check_folders(pairs, images: dict[str, ImageSet] | None = None) -> None:
    """Before any work: a ConfigError naming the pair (``--pairs``) of each folder:PATH that is no
    folder (names given in ``images`` are not read from disk)."""
    for pair in pairs:
        for name in parse_pair(pair):
            path = Path(name[len("folder:"):]) if name.startswith("folder:") else None
            if path is not None and name not in (images or {}) and not path.is_dir():
                raise ConfigError("pairs", pair, reason=f"{name}: {'no such folder' if not path.exists() else 'not a folder'} "
                                  f"(folder:PATH is a folder of class folders, PATH/<class>/<image>)")


def target_pool(target: ImageSet, per_class: int | None, folds: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's training images, class-balanced (``folds.balanced_pool``); the target's test split
    is not used (the cross-validation tests on held-out folds)."""
    idx = torch.from_numpy(balanced_pool(target.y_train, per_class, folds, seed))
    return target.x_train[idx], target.y_train[idx]


def backbone_folders(cfg: Fig6Config, out: Path, sources=None) -> dict[str, Path]:
    """Source → the folder of its backbone (cached across runs, and --fresh), for ``sources`` (default:
    those of the config's pairs): ``backbones/<source>-<arch>``, unique (:func:`unique_paths`)."""
    sources = dict.fromkeys(parse_pair(p)[0] for p in cfg.pairs) if sources is None else dict.fromkeys(sources)
    paths = unique_paths(out / "backbones", [f"{s}-{cfg.pretrain.arch}" for s in sources], _backbone_held)
    return {s: paths[f"{s}-{cfg.pretrain.arch}"] for s in sources}


def pair_files(pairs, out: Path) -> dict[str, Path]:
    """Pair → its results file ``pairs/<pair>.json``, unique (:func:`unique_paths`)."""
    return unique_paths(out / "pairs", pairs, _pair_held, ".json")


def _backbone(cfg: Fig6Config, source: str, out: Path, folders: dict[str, Path] | None = None):
    """The pretraining of the pairs from ``source`` and its folder (of ``folders``, else found alone)."""
    pcfg = dataclasses.replace(cfg.pretrain, dataset=source)
    return pcfg, (folders or backbone_folders(cfg, out, [source]))[source]


def _remedy(folders: list[Path]) -> str:
    """The way out of backbones of another pretraining: --fresh keeps the backbones (the long part of
    the figure), so delete them (braces doubled: the remedy is a format string)."""
    shown = [str(f).replace("{", "{{").replace("}", "}}") for f in folders]
    names = ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]
    return (f"delete {names} to pretrain {'it' if len(folders) == 1 else 'them'} anew ({{fresh}} keeps pretrained "
            f"backbones), or choose another {{out_dir}}")


def _named(differences) -> list[tuple]:
    """Pretraining settings as the figure names them (``pretrain.epochs``: ``fig6 --pretrain-epochs``)."""
    return [(f"pretrain.{k}", there, now) for k, there, now in differences]


def check_backbones(cfg: Fig6Config, out: Path, pairs, folders: dict[str, Path] | None = None) -> None:
    """Before any work: a ConfigMismatchError naming every cached backbone that the ``pairs`` would
    use (in ``folders``: source → folder, default :func:`backbone_folders`) but was pretrained with
    other settings, and how to get past it."""
    stale, differences = [], []
    folders = folders or backbone_folders(cfg, out, [parse_pair(p)[0] for p in pairs])
    for source in dict.fromkeys(parse_pair(p)[0] for p in pairs):
        pcfg, where = _backbone(cfg, source, out, folders)
        diffs = saved_differences(pcfg, where, _remedy([where]), any_evaluation=True)
        if diffs:
            stale.append(where)
            differences = differences or diffs
    if stale:
        what = "a pretrained backbone" if len(stale) == 1 else f"{len(stale)} pretrained backbones"
        raise ConfigMismatchError(run_folder.FIELD, str(out), what, _named(differences), _remedy(stale))


def run_pair(pair: str, cfg: Fig6Config, out: Path, data_dir: str | None, progress: bool, log=print,
             images: dict[str, ImageSet] | None = None, folders: dict[str, Path] | None = None) -> dict:
    """One source→target pair, end to end (pretraining and features from their caches when there);
    ``folders``: source → backbone folder (default: :func:`backbone_folders` of this pair alone)."""
    source_name, target_name = parse_pair(pair)
    get = (lambda n: images[n]) if images and all(n in images for n in (source_name, target_name)) else \
        (lambda n: resolve(n, data_dir))
    source, target = get(source_name), get(target_name)
    if source.image_shape != target.image_shape:
        raise ConfigError("pairs", pair, f"source and target images of one shape ({source.image_shape} vs {target.image_shape})")
    x, y = target_pool(target, cfg.per_class, cfg.protocol.folds, cfg.protocol.seed)  # refused before any work
    t0 = time.perf_counter()
    pcfg, where = _backbone(cfg, source_name, out, folders)
    try:
        # the heads need the weights only: a backbone evaluated on other test images is the same one
        pre = pretrain(pcfg, where, data=source, progress=progress, remedy=_remedy([where]), any_evaluation=True)
    except ConfigMismatchError as e:  # named as the folder the user gave, in the figure's own options
        what = "an unfinished pretraining" if e.what == "a checkpoint" else e.what
        raise ConfigMismatchError(e.field, str(out), what, _named(e.differences), e.remedy) from None
    note = rounding_note(pcfg, pre.results, "--pretrain-epochs")
    if note:
        log(f"{pair}: {note}")
    backbone = pre.backbone.freeze()
    checksum_before = backbone.checksum()
    test_limit = pre.results["identity"].get("test_limit") or 0  # as that backbone was evaluated
    on = f" (first {test_limit:,} test images)" if test_limit else ""
    log(f"{pair}: backbone {pcfg.arch} on {source_name}, source test accuracy "
        f"{100 * (pre.results['final_test_accuracy'] or 0):.2f} %{on}, checksum {checksum_before[:12]}")
    t1 = time.perf_counter()
    original, flipped, info = cached_features(backbone, x, out / "features", progress)
    t_features = time.perf_counter() - t1
    log(f"  features {tuple(original.shape)} ×2 (flips), cache {'hit' if info['hit'] else 'written'} ({t_features:.0f} s)")
    res = run_protocol(original, flipped, y, target.n_classes, cfg.protocol, progress, log)
    if backbone.checksum() != checksum_before:  # the frozen backbone is never touched
        raise RuntimeError("the frozen backbone changed during head training")
    pre_hist = pre.results["history"]
    res.update({"identity": cfg.pair_identity(pair), "source": source_name, "target": target_name,
                "backbone": {"arch": pcfg.arch, "checksum": checksum_before, "bits": pcfg.bits,
                             "source_test_accuracy": pre.results["final_test_accuracy"],
                             "source_test_limit": test_limit,
                             "pretrain_epochs": pcfg.epochs, "pretrain_trained": trained(pre.results),
                             "pretrain_seconds_per_epoch":
                                 [h["wall_seconds"] for h in pre_hist], "implementation": pre.results["implementation"],
                             "levels_used": pre.results["levels_used"]},
                "features": {"cache_hit": info["hit"], "seconds": t_features},
                "threads": torch.get_num_threads(),  # the offline heads' bits depend on it (_threads_note)
                "seconds": time.perf_counter() - t0, "versions": versions()})
    return res


def reproduce_fig6(cfg: Fig6Config, out: str | Path, *, data_dir: str | None = None, progress: bool = True,
                   fresh: bool = False, log=print, images: dict[str, ImageSet] | None = None) -> dict:
    """Every pair of ``cfg`` (finished pairs in ``out`` are read back, not rerun); writes fig6.json,
    fig6.txt and, with matplotlib, fig6.png. Returns {pair: result}."""
    out = Path(out)
    check_folders(cfg.pairs, images)
    with run_folder.claim(out, subfolders=("", "pairs", "features")) as folder:
        if fresh:
            run_folder.discard(folder, ("pairs",))
        results, todo = {}, {}
        files, folders = pair_files(cfg.pairs, folder), backbone_folders(cfg, folder)
        for pair in cfg.pairs:
            path = files[pair]
            ident = json.loads(json.dumps(cfg.pair_identity(pair)))
            if path.exists():
                saved = _read_pair(path)
                if saved is not None and _same_pair(saved.get("identity"), ident):
                    warn_unfingerprinted(saved["identity"]["pretrain"], ident["pretrain"], path, "a pair")
                    log(f"{pair}: done before, read from {path}{_threads_note(saved)}")
                    results[pair] = saved
                    continue
            todo[pair] = path
        check_backbones(cfg, folder, todo, folders)
        for pair, path in todo.items():
            results[pair] = run_pair(pair, cfg, folder, data_dir, progress, log, images, folders)
            write_json(path, results[pair])
        results = {pair: results[pair] for pair in cfg.pairs}
        write_json(folder / "fig6.json", {"config": {"pairs": list(cfg.pairs), "per_class": cfg.per_class},
                                          "pairs": results})
        text = format_table(results)
        with atomic_write(folder / "fig6.txt", "w") as f:  # a result file: whole or absent
            f.write(text + "\n")
        try:
            from .plot import plot_fig6
            plot_fig6(results, folder / "fig6.png")
        except ImportError:
            log("matplotlib is not installed: no plot (pip install 'ferristor[plot]')")
    return results


def _threads_note(saved: dict) -> str:
    """Where a finished pair ran on another thread count: what torch computes in it (the features, the
    offline heads) sums in another order at another count, as pretraining does, so computing it here
    could differ in the last bits. Read back all the same, as where a run executes is not its
    identity; said, not silent."""
    there, now = saved.get("threads"), torch.get_num_threads()
    if not isinstance(there, int) or there == now:
        return ""
    return (f" (computed on {there} thread(s), this run has {now}: torch's kernels in it, features and offline heads, "
            f"could differ in their last bits here; --fresh recomputes it)")


def _comparable(identity, drop=()):
    """A pair's identity without the pretraining's EVALUATION_ONLY settings (recorded, not compared):
    the heads see the backbone's weights, which those settings do not change; nor those of ``drop``."""
    if not isinstance(identity, dict) or not isinstance(identity.get("pretrain"), dict):
        return identity
    skip = (*EVALUATION_ONLY, *drop)
    return {**identity, "pretrain": {k: v for k, v in identity["pretrain"].items() if k not in skip}}


def _same_pair(saved, now: dict) -> bool:
    """Whether a saved pair's identity is ``now``'s; one saved before the weights file's contents were
    recorded is compared without them (as it was: ``pretrain.warn_unfingerprinted``)."""
    old = isinstance(saved, dict) and isinstance(saved.get("pretrain"), dict) and \
        unfingerprinted(saved["pretrain"], now["pretrain"])
    return _comparable(saved) == _comparable(now, (WEIGHTS_SHA256,) if old else ())


def _read_pair(path: Path) -> dict | None:
    """A finished pair's results; None, with a warning naming the file, where it is unreadable (a
    truncated or foreign file): the pair is then computed again and the file replaced."""
    try:
        saved = read_json(path)
        if not isinstance(saved, dict):
            raise TypeError(f"a JSON {type(saved).__name__}, not a pair's results")
        return saved
    except (ValueError, TypeError) as e:  # JSONDecodeError, UnicodeDecodeError
        why = (str(e).strip().splitlines() or [""])[0][:160]
        warnings.warn(FerristorWarning(f"{path} is unreadable ({type(e).__name__}: {why}): the pair is computed "
                                       f"again and the file replaced"), stacklevel=3)
        return None


def gaps(res: dict) -> dict[str, float]:
    """Differences of mean accuracies (pp) between heads, where both ran."""
    h = {k: v["mean"] for k, v in res["heads"].items()}
    pairs = {"fp_off-lsq_off": ("fp-offline", "lsq-offline"), "fp_off-hm_var": ("fp-offline", "hm-var"),
             "lsq_off-hm_var": ("lsq-offline", "hm-var"), "fp_off-fp_on": ("fp-offline", "fp-online"),
             "fp_on-hm": ("fp-online", "hm"), "hm-hm_var": ("hm", "hm-var")}
    return {k: h[a] - h[b] for k, (a, b) in pairs.items() if a in h and b in h}


# how the table names the heads that keep a ledger (the hybrid ones: fp-online programs no device)
LEDGER_NAMES = {"hm-var": "HM-var", "hm": "HM"}


def format_table(results: dict[str, dict]) -> str:
    heads = [h for h in HEADS if any(h in r["heads"] for r in results.values())]
    # a transfers column and a ledger line for every head with a ledger, whichever of them ran
    ledgered = [h for h in heads if any("ledger" in r["heads"].get(h, {}) for r in results.values())]
    head_row = ["pair"] + heads + [f"{h} transfers" for h in ledgered]
    rows = [head_row]
    for pair, r in results.items():
        cells = [pair]
        for h in heads:
            e = r["heads"].get(h)
            cells.append(f"{e['mean']:.2f} ± {e['std']:.2f}" if e else "—")
        for h in ledgered:
            led = r["heads"].get(h, {}).get("ledger")
            cells.append(f"{led['transfers_mean']:,.0f}" if led else "—")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head_row))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.append("")
    lines.append("gaps (pp): FP off − 4-bit off | FP off − HM-var | 4-bit off − HM-var || decomposition: "
                 "FP off − FP online (mini-batch) | FP online − HM (4-bit on-chip) | HM − HM-var (variability)")
    for pair, r in results.items():
        g = gaps(r)
        fmt = lambda k: f"{g[k]:+.2f}" if k in g else "—"  # noqa: E731
        lines.append(f"  {pair}: {fmt('fp_off-lsq_off')} | {fmt('fp_off-hm_var')} | {fmt('lsq_off-hm_var')} || "
                     f"{fmt('fp_off-fp_on')} | {fmt('fp_on-hm')} | {fmt('hm-hm_var')}")
    for pair, r in results.items():
        for h in ledgered:
            led = r["heads"].get(h, {}).get("ledger")
            if led:
                lines.append(f"  ledger of the {LEDGER_NAMES.get(h, h)} head, {pair}: {format_summary(led)}")
    lines.append(FIG6_TEXT)
    return "\n".join(lines)

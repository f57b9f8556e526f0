"""Features of a frozen backbone, extracted once and cached on disk.

The cache key is a hash of the backbone's checksum (spec + every weight, step and BatchNorm
statistic), the images' fingerprint and the feature recipe (``RECIPE``): a changed backbone or
changed images never reuse stale features. A file that cannot be read or does not match its key
is recomputed. Files are written atomically.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from ..atomic import atomic_write
from ..backbones import Backbone
from ..backbones.adapter import hflip

RECIPE = "pooled-features+hflip-v1"
CHUNK = 250


def cache_key(backbone: Backbone, images_fingerprint: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in (backbone.checksum(), images_fingerprint, RECIPE):
        h.update(part.encode())
    return h.hexdigest()


def images_fingerprint(x: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tuple(x.shape)}{x.dtype}".encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def extract(backbone: Backbone, x: torch.Tensor, progress: bool = False, desc: str = "features") -> torch.Tensor:
    """Features (N, D) of images x (N, C, H, W), in evaluation mode, without touching the backbone."""
    was = backbone.training
    backbone.eval()
    chunks = range(0, len(x), CHUNK)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc=desc, unit="chunk", mininterval=1.0, dynamic_ncols=True)
    out = torch.cat([backbone.features(x[i:i + CHUNK]) for i in chunks]) if len(x) else torch.zeros(0, backbone.n_features)
    backbone.train(was)
    return out.contiguous()


def cached_features(backbone: Backbone, x: torch.Tensor, cache_dir: str | os.PathLike | None,
                    progress: bool = False, fingerprint: str | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(features of x, features of x flipped horizontally, info) — from the cache when it holds them.
    ``info``: {'key', 'hit', 'path'}."""
    key = cache_key(backbone, fingerprint or images_fingerprint(x))
    path = Path(cache_dir) / f"features-{key}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("key") == key and saved["original"].shape[0] == len(x):
                return saved["original"], saved["flipped"], {"key": key, "hit": True, "path": str(path)}
        except Exception:  # a truncated or foreign file: recompute
            pass
    original = extract(backbone, x, progress, "features")
    flipped = extract(backbone, hflip(x, tuple(x.shape[1:])), progress, "features (flipped)")
    if path is not None:
        with atomic_write(path) as f:
            torch.save({"key": key, "backbone": backbone.checksum(), "recipe": RECIPE,
                        "original": original, "flipped": flipped}, f)
    return original, flipped, {"key": key, "hit": False, "path": str(path) if path else None}

"""How much memory and disk a run needs, estimated before it starts, so that a run that cannot fit
is refused with the numbers instead of dying in an allocation (or in the swap) an hour later.

The estimate follows the per-weight buffers of the training state (``nn/hybrid.py``): update
``BYTES_PER_WEIGHT`` when the engine's buffers change, and everything else follows.
"""
from __future__ import annotations

import os

from ..errors import ConfigError
from .seeds import format_seeds

# Bytes one weight of one replica holds in the training state (the buffers of nn.hybrid.HybridModule).
BYTES_PER_WEIGHT = {
    "fp": 4 + 1 + 8,  # weight float32, pending uint8, events int64
    "hybrid": 4 + 4 + 1 + 8,  # analogue float32, hidden float32, pending uint8, events int64
    "skip_unchanged": 2 + 8,  # + level_code int16, skips int64 (ledger.transfer_writes_unchanged=False)
}
ACTIVATION_COPIES = 3  # activations, normalised copies and temporaries per unit (measured: ~10 MiB per MNIST replica)
HEADROOM = 0.9  # refuse when the estimate exceeds this fraction of the available memory


def weights_per_replica(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def state_bytes(cfg) -> int:
    """Bytes of the training state of all replicas: the size of a checkpoint, too."""
    per_weight = BYTES_PER_WEIGHT["fp" if cfg.mode == "fp" else "hybrid"]
    if cfg.mode != "fp" and not cfg.ledger.transfer_writes_unchanged:
        per_weight += BYTES_PER_WEIGHT["skip_unchanged"]
    return len(cfg.seeds) * weights_per_replica(cfg.network.sizes) * per_weight


def working_bytes(cfg) -> int:
    """Bytes of the activations of one forward pass over an evaluation chunk or a mini-batch, all replicas."""
    samples = max(cfg.eval_batch, cfg.batch)
    return len(cfg.seeds) * samples * sum(cfg.network.sizes[1:]) * 4 * ACTIVATION_COPIES


def estimate_bytes(cfg) -> int:
    return state_bytes(cfg) + working_bytes(cfg)


def available_bytes(device: str = "cpu") -> int | None:
    """Memory available for a new run on ``device``; None where it cannot be told."""
    if not str(device).startswith("cpu"):
        try:
            import torch
            if str(device).startswith("cuda"):
                return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except Exception:
            return None
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def check_memory(cfg, *, concurrent: int = 1, available: int | None = None) -> None:
    """ConfigError naming the seeds when ``concurrent`` runs like ``cfg`` need more memory than is available."""
    per_run = estimate_bytes(cfg)
    need = per_run * concurrent
    have = available if available is not None else available_bytes(cfg.device)
    if have is None or need <= HEADROOM * have:
        return
    replicas = len(cfg.seeds)
    if cfg.batch > cfg.eval_batch and state_bytes(cfg) * concurrent <= HEADROOM * have:
        # the replicas fit; the mini-batch's activations do not
        raise ConfigError("batch", cfg.batch, reason=(
            f"a batch of {cfg.batch:,} needs about {gib(need)} of activations and state, but {gib(have)} is "
            f"available on {cfg.device}"))
    per_replica = per_run / replicas
    fit = max(0, int(HEADROOM * have / concurrent // per_replica))
    runs = f" × {concurrent} runs at once" if concurrent > 1 else ""
    raise ConfigError("seeds", format_seeds(cfg.seeds), reason=(
        f"{replicas:,} replicas{runs} need about {gib(need)} of memory ({gib(per_replica)} per replica), but "
        f"{gib(have)} is available on {cfg.device}; use at most {fit:,} seeds per run"
        + (" or fewer workers" if concurrent > 1 else "") + ", and run the others in another --out"))

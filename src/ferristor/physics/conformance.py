"""A conformance check every device model must pass (in the spirit of sklearn's estimator checks).

A model is described by a :class:`DeviceSpec`; :func:`check_device_model` then asserts that
  * the same seed gives the same state, and another seed a different one (for stochastic models);
  * every state value stays inside its bounds after every step;
  * every operation counter never decreases;
  * the vectorised deterministic core equals the same core applied cell by cell.
Each failure raises AssertionError naming the model and the property.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class DeviceSpec:
    name: str
    make: Callable[[torch.Generator], Any]  # a fresh model of a few cells
    steps: list[Callable[[Any, torch.Generator], None]]  # operations applied in order
    state: Callable[[Any], dict[str, torch.Tensor]]  # tensors compared for determinism
    counters: Callable[[Any], dict[str, torch.Tensor]]  # must never decrease
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # state name → [lo, hi]
    core: Callable[..., torch.Tensor] | None = None  # deterministic, elementwise over dim 0
    core_inputs: Callable[[torch.Generator], dict[str, torch.Tensor]] | None = None
    stochastic: bool = True


def _run(spec: DeviceSpec, seed: int, check: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    model = spec.make(g)
    before = {k: v.clone() for k, v in spec.counters(model).items()}
    for i, step in enumerate(spec.steps):
        step(model, g)
        if not check:
            continue
        now = spec.counters(model)
        for k, v in now.items():
            assert bool((v >= before[k]).all()), f"{spec.name}: counter {k} decreased at step {i}"
        before = {k: v.clone() for k, v in now.items()}
        st = spec.state(model)
        for k, (lo, hi) in spec.bounds.items():
            t = st[k].double()
            assert bool(((t >= lo) & (t <= hi)).all()), f"{spec.name}: {k} left [{lo}, {hi}] at step {i}: {t.min()}…{t.max()}"
    return {k: v.clone() for k, v in spec.state(model).items()}


def check_device_model(spec: DeviceSpec, seed: int = 1234) -> None:
    a = _run(spec, seed, check=True)
    b = _run(spec, seed, check=False)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{spec.name}: same seed gave a different {k}"
    if spec.stochastic:
        c = _run(spec, seed + 1, check=False)
        assert any(not torch.equal(a[k], c[k]) for k in a), f"{spec.name}: another seed gave the same state"
    if spec.core is not None:
        inputs = spec.core_inputs(torch.Generator().manual_seed(seed))
        full = spec.core(**inputs)
        n = next(iter(inputs.values())).shape[0]
        single = torch.cat([spec.core(**{k: v[i:i + 1] for k, v in inputs.items()}) for i in range(n)])
        assert torch.allclose(full, single, rtol=1e-12, atol=1e-12), f"{spec.name}: vectorised core differs from cell-by-cell"

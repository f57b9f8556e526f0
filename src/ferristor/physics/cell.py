"""The dual-mode cell: one HfO2 stack that becomes a FeCAP or a memristor, once (digest §1).

Every cell starts pristine. Wake-up (1,000 bipolar cycles) makes it a FeCAP; forming (adaptive
6 V pulses) makes it a memristor. Both transitions are irreversible — forming's filament cannot be
undone (Ti scavenging layer) and we treat wake-up as a commitment too, since the array assigns each
cell its role at initialization [I]. Asking a cell for an operation of the other mode raises
:class:`CellModeError`. State is one mode tensor over all cells, beside a FeCAP and a memristor model.
"""
from __future__ import annotations

import torch

from ..errors import FerristorError
from .fecap import FeCAPArray, FeCAPModelConfig
from .memristor import MemristorArray, MemristorConfig

PRISTINE, FECAP, MEMRISTOR = 0, 1, 2
MODE_NAMES = {PRISTINE: "pristine", FECAP: "FeCAP", MEMRISTOR: "memristor"}


class CellModeError(FerristorError, RuntimeError):
    """A cell was used in a mode it is not (or can no longer be) in."""


class DualModeCells:
    def __init__(self, n: int, fecap: FeCAPModelConfig | None = None, memristor: MemristorConfig | None = None,
                 generator: torch.Generator | None = None):
        self.n = int(n)
        self.mode = torch.full((self.n,), PRISTINE, dtype=torch.int8)
        self.fecap = FeCAPArray(self.n, fecap, generator, woken=False)
        self.memristor = MemristorArray(self.n, memristor, generator)

    def _mask(self, mask) -> torch.Tensor:
        return torch.ones(self.n, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool)

    def require(self, mask, mode: int, what: str) -> torch.Tensor:
        """The mask, after checking every selected cell is in `mode`; raises CellModeError otherwise."""
        m = self._mask(mask)
        bad = m & (self.mode != mode)
        if bool(bad.any()):
            idx = torch.nonzero(bad).flatten()[:5].tolist()
            found = sorted({MODE_NAMES[int(v)] for v in self.mode[bad].tolist()})
            raise CellModeError(f"{what} needs {MODE_NAMES[mode]} cells; cells {idx} are {', '.join(found)}")
        return m

    def wake_up(self, mask=None) -> None:
        """Pristine (or already woken) cells → FeCAP. Memristors cannot be woken up."""
        m = self._mask(mask)
        if bool((m & (self.mode == MEMRISTOR)).any()):
            raise CellModeError("wake-up of formed memristors: forming is irreversible (digest §1)")
        self.fecap.wake_up(m)
        self.mode = torch.where(m, torch.tensor(FECAP, dtype=torch.int8), self.mode)

    def form(self, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pristine cells → memristor (those the adaptive loop manages to form). Returns pulses used."""
        m = self._mask(mask)
        if bool((m & (self.mode == FECAP)).any()):
            raise CellModeError("forming of cells already committed as FeCAPs (roles are fixed at wake-up)")
        used = self.memristor.form(m & (self.mode == PRISTINE), generator)
        self.mode = torch.where(m & self.memristor.formed, torch.tensor(MEMRISTOR, dtype=torch.int8), self.mode)
        return used

    # FeCAP-mode operations
    def write_bits(self, bits, mask=None) -> None:
        self.fecap.write(bits, self.require(mask, FECAP, "FeCAP write"))

    def read_bits(self, mask=None, generator: torch.Generator | None = None, restore: bool = True) -> torch.Tensor:
        return self.fecap.read(self.require(mask, FECAP, "FeCAP read"), generator, restore)

    # memristor-mode operations
    def reset(self, mask=None, generator: torch.Generator | None = None) -> None:
        self.memristor.reset(self.require(mask, MEMRISTOR, "RESET"), generator)

    def set(self, icc_ua, mask=None, generator: torch.Generator | None = None) -> None:
        self.memristor.set(icc_ua, self.require(mask, MEMRISTOR, "SET"), generator)

    def read_conductance(self, mask=None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.memristor.read(self.require(mask, MEMRISTOR, "conductance read"), generator)

"""The hybrid array (digest §2): 128 transfer lines × (128 FeCAPs + 16 memristors), 8 synapses a line.

Cell index of line l: FeCAP j → l·144 + j, memristor k → l·144 + 128 + k. Synapse s of a line uses
FeCAPs 14s…14s+13 (sign, MSB1 ×4, MSB2 ×2, MSB3 ×1, 6 LSBs) and memristors 2s (G+), 2s+1 (G−).
Every physical operation is counted per device; energy = operations × the LedgerConfig costs.
A transfer costs each sign/MSB FeCAP 4 operations (save = read + rewrite, the destructive chain
read, reload; digest §5) and each memristor of the pair a RESET, plus a SET on the selected one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config_base import check_number, param
from ..errors import ConfigError
from ..physics.cell import DualModeCells
from ..physics.transistor import compliance_current_ua
from .charge_transfer import ChargeTransferConfig, tl_voltage
from .layout import PAPER_LAYOUT, SynapseLayout
from .ledger import LedgerConfig


@dataclass
class ArrayConfig:
    lines: int = param(128, unit="TL", source="digest §2 [P]")
    fecaps_per_line: int = param(128, unit="FeCAP", source="digest §2 [P]")
    memristors_per_line: int = param(16, unit="memristor", source="digest §2 [P]")
    synapses_per_line: int = param(8, unit="synapse", source="digest §2 [P]")

    def __post_init__(self):
        for name in ("lines", "fecaps_per_line", "memristors_per_line", "synapses_per_line"):
            check_number(f"ArrayConfig.{name}", getattr(self, name), lo=1, integer=True)

    def check_fits(self, layout: SynapseLayout) -> None:
        if self.synapses_per_line * layout.fecaps > self.fecaps_per_line:
            raise ConfigError("ArrayConfig.synapses_per_line", self.synapses_per_line,
                              f"at most {self.fecaps_per_line // layout.fecaps} synapses of {layout.fecaps} FeCAPs per line")
        if self.synapses_per_line * layout.memristors > self.memristors_per_line:
            raise ConfigError("ArrayConfig.synapses_per_line", self.synapses_per_line,
                              f"at most {self.memristors_per_line // layout.memristors} memristor pairs per line")


class HybridArray:
    """The array with its devices' state. ``initialize()`` wakes the FeCAPs and forms the memristors."""

    def __init__(self, config: ArrayConfig | None = None, transfer: ChargeTransferConfig | None = None,
                 ledger: LedgerConfig | None = None, layout: SynapseLayout = PAPER_LAYOUT,
                 generator: torch.Generator | None = None):
        from ..physics.presets import martemucci2025
        self.config = config or ArrayConfig()
        self.transfer_config = transfer or martemucci2025()
        self.ledger = ledger or LedgerConfig()
        self.layout = layout
        self.config.check_fits(layout)
        c = self.config
        self.per_line = c.fecaps_per_line + c.memristors_per_line
        self.cells = DualModeCells(c.lines * self.per_line, self.transfer_config.fecap, self.transfer_config.memristor, generator)
        lines = torch.arange(c.lines).repeat_interleave(c.synapses_per_line)
        syn = torch.arange(c.synapses_per_line).repeat(c.lines)
        base = lines * self.per_line
        # (lines·synapses, 14) FeCAP indices and (…, 2) memristor indices, row = line·8 + synapse
        self.fecap_idx = base[:, None] + syn[:, None] * layout.fecaps + torch.arange(layout.fecaps)
        self.mem_idx = base[:, None] + c.fecaps_per_line + syn[:, None] * layout.memristors + torch.arange(layout.memristors)
        self.is_fecap = (torch.arange(self.cells.n) % self.per_line) < c.fecaps_per_line

    @property
    def n_synapses(self) -> int:
        return self.config.lines * self.config.synapses_per_line

    def synapse_index(self, line, synapse) -> torch.Tensor:
        line, synapse = torch.as_tensor(line), torch.as_tensor(synapse)
        if bool(((line < 0) | (line >= self.config.lines) | (synapse < 0) | (synapse >= self.config.synapses_per_line)).any()):
            raise IndexError(f"(line, synapse) outside {self.config.lines} × {self.config.synapses_per_line}")
        return (line * self.config.synapses_per_line + synapse).long().reshape(-1)

    def initialize(self, generator: torch.Generator | None = None) -> None:
        self.cells.wake_up(self.is_fecap)
        self.cells.form(~self.is_fecap, generator)

    def _cell_mask(self, idx: torch.Tensor) -> torch.Tensor:
        m = torch.zeros(self.cells.n, dtype=torch.bool)
        m[idx.reshape(-1)] = True
        return m

    # --- hidden weights (FeCAPs) -----------------------------------------------------------------
    def _bits_of(self, values: torch.Tensor) -> torch.Tensor:
        """(S, 14) cell bits of signed hidden integers: sign, MSB1×4, MSB2×2, MSB3×1, LSBs (high first)."""
        lay = self.layout
        mag = values.abs().clamp_max(lay.max_hidden).long()
        cols = [(values < 0)]
        nb = lay.hidden_bits - 1
        for j, cells in enumerate(lay.msb_cells):
            cols += [((mag >> (nb - 1 - j)) & 1).bool()] * cells
        for j in range(lay.lsb_cells):
            cols.append(((mag >> (lay.lsb_cells - 1 - j)) & 1).bool())
        return torch.stack(cols, dim=-1)

    def _value_of(self, bits: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        nb = lay.hidden_bits - 1
        mag = torch.zeros(bits.shape[0], dtype=torch.long)
        col = 1
        for j, cells in enumerate(lay.msb_cells):
            maj = bits[:, col:col + cells].float().mean(1) >= 0.5  # majority of the copies
            mag |= maj.long() << (nb - 1 - j)
            col += cells
        for j in range(lay.lsb_cells):
            mag |= bits[:, col + j].long() << (lay.lsb_cells - 1 - j)
        return torch.where(bits[:, 0], -mag, mag)

    def write_hidden(self, syn: torch.Tensor, values) -> None:
        """Write signed hidden integers into synapses (row indices from synapse_index): 1 op a FeCAP."""
        idx = self.fecap_idx[syn]
        bits = torch.zeros(self.cells.n, dtype=torch.bool)
        bits[idx.reshape(-1)] = self._bits_of(torch.as_tensor(values).reshape(-1).expand(len(syn))).reshape(-1)
        self.cells.write_bits(bits, self._cell_mask(idx))

    def read_hidden(self, syn: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Destructive read + rewrite (2 ops a FeCAP) of the synapses' hidden integers."""
        idx = self.fecap_idx[syn]
        sensed = self.cells.read_bits(self._cell_mask(idx), generator, restore=True)
        return self._value_of(sensed[idx])

    def update_hidden(self, syn: torch.Tensor, delta, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hidden-weight update: read (destructive) then write back value + delta, saturated at ±max."""
        idx = self.fecap_idx[syn]
        sensed = self.cells.read_bits(self._cell_mask(idx), generator, restore=False)
        new = (self._value_of(sensed[idx]) + torch.as_tensor(delta).long()).clamp(-self.layout.max_hidden, self.layout.max_hidden)
        self.write_hidden(syn, new)
        return new

    # --- transfer (digest §3) --------------------------------------------------------------------
    def transfer(self, syn: torch.Tensor | None = None, generator: torch.Generator | None = None) -> None:
        """DAC-free transfer of sign + 3 MSBs into the memristor pairs of the given synapses."""
        syn = torch.arange(self.n_synapses) if syn is None else syn
        lay = self.layout
        read_idx = self.fecap_idx[syn][:, :lay.transfer_read_cells]  # sign + MSB cells
        pair = self.mem_idx[syn]
        rmask = self._cell_mask(read_idx)
        # 1. RESET both memristors of every pair.
        self.cells.reset(self._cell_mask(pair), generator)
        # Save: a digital read + rewrite keeps a copy of the bits the chain will destroy.
        saved = self.cells.read_bits(rmask, generator, restore=True)
        # 2. Sign read (destructive) selects G+ (sign 0) or G− (sign 1).
        sign_mask = self._cell_mask(read_idx[:, 0])
        sign_bit = self.cells.read_bits(sign_mask, generator, restore=False)[read_idx[:, 0]]
        # 3. MSB cells read at once onto the floating TL: charge balance with the stored bits.
        msb = read_idx[:, 1:]
        fe = self.cells.fecap
        v_tl = tl_voltage(fe.bits[msb].double(), fe.charge_factor()[msb], self.transfer_config)
        self.cells.write_bits(torch.zeros(self.cells.n, dtype=torch.bool), self._cell_mask(msb))
        # 4. V_TL gates the selected memristor's access transistor during the simultaneous SET.
        icc = torch.zeros(self.cells.n, dtype=torch.float64)
        chosen = torch.where(sign_bit, pair[:, 1], pair[:, 0])
        icc[chosen] = compliance_current_ua(v_tl, self.transfer_config.transistor)
        self.cells.set(icc, self._cell_mask(chosen), generator)
        # 5. Reload the saved bits.
        self.cells.write_bits(saved, rmask)

    def conductances(self, syn: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(S, 2) G+, G− read at 0.4 V (µS)."""
        syn = torch.arange(self.n_synapses) if syn is None else syn
        pair = self.mem_idx[syn]
        return self.cells.read_conductance(self._cell_mask(pair), generator)[pair]

    def weights(self, syn: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Analogue weights in level units, differential as the chip reads them: (G+ − G−) scaled so
        the reference level means span 0…7."""
        g = self.conductances(syn, generator)
        ref = self.transfer_config.reference_means_us
        return (g[:, 0] - g[:, 1]) / (ref[-1] - ref[0]) * (len(ref) - 1)

    # --- counters --------------------------------------------------------------------------------
    def fecap_ops(self) -> torch.Tensor:
        return self.cells.fecap.ops[self.is_fecap]

    def memristor_ops(self) -> torch.Tensor:
        return self.cells.memristor.ops[~self.is_fecap]

    def device_energy(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy spent on each FeCAP (fJ) and each memristor (pJ): operations × LedgerConfig cost."""
        return (self.fecap_ops().double() * self.ledger.fecap_energy_fj,
                self.memristor_ops().double() * self.ledger.memristor_energy_pj)

    def report(self) -> dict:
        """Per-device operation counts and energies (LedgerConfig costs). Wake-up/forming excluded."""
        fe = self.fecap_ops().double()
        me = self.memristor_ops().double()
        led = self.ledger
        return {
            "fecap_ops": {"mean": float(fe.mean()), "worst": float(fe.max()), "total": float(fe.sum())},
            "memristor_ops": {"mean": float(me.mean()), "worst": float(me.max()), "total": float(me.sum())},
            "energy_nJ": {"fecap_total": float(fe.sum()) * led.fecap_energy_fj * 1e-6,
                          "memristor_total": float(me.sum()) * led.memristor_energy_pj * 1e-3},
            "endurance_cycles_worst": {"fecap": float(fe.max()) / led.ops_per_cycle, "memristor": float(me.max()) / led.ops_per_cycle},
        }

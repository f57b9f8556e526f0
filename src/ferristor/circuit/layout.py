"""How one synapse sits in the hybrid array (digest §2).

A weight is a 10-bit sign-magnitude integer held in 14 FeCAPs — 1 sign cell, MSB1 as 4 minimum
cells, MSB2 as 2, MSB3 as 1 (areas 4:2:1 × S_min), 6 LSB cells — plus a G+/G− memristor pair that
holds sign + 3 MSBs as an analogue conductance.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config_base import check_number, param


@dataclass(frozen=True)
class SynapseLayout:
    hidden_bits: int = param(10, unit="bit", source="digest §2 [P]", doc="sign + magnitude bits of the hidden integer")
    analogue_magnitude_bits: int = param(3, unit="bit", source="digest §2–3 [P]", doc="MSBs of the magnitude moved into the memristors")
    sign_cells: int = param(1, unit="FeCAP", source="digest §2 [P]")
    msb_cells: tuple[int, ...] = param((4, 2, 1), unit="FeCAP", source="digest §2 [P]", doc="cells per MSB, MSB1 first (area ratio)")
    lsb_cells: int = param(6, unit="FeCAP", source="digest §2 [P]")
    memristors: int = param(2, unit="memristor", source="digest §2 [P]", doc="G+ and G−")

    def __post_init__(self):
        check_number("SynapseLayout.hidden_bits", self.hidden_bits, lo=2, hi=16, integer=True)
        check_number("SynapseLayout.analogue_magnitude_bits", self.analogue_magnitude_bits,
                     lo=1, hi=self.hidden_bits - 1, integer=True)
        if len(self.msb_cells) != self.analogue_magnitude_bits:
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.msb_cells", self.msb_cells,
                              f"{self.analogue_magnitude_bits} cell counts, one per analogue MSB")
        if self.lsb_cells != self.hidden_bits - 1 - self.analogue_magnitude_bits:
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.lsb_cells", self.lsb_cells,
                              f"{self.hidden_bits - 1 - self.analogue_magnitude_bits} (magnitude bits below the MSBs)")

    @property
    def max_hidden(self) -> int:
        """Largest hidden magnitude: 511 for 10 bits."""
        return 2 ** (self.hidden_bits - 1) - 1

    @property
    def level_shift(self) -> int:
        """Right shift that truncates the magnitude to its analogue MSBs: 6 for 10/3 bits."""
        return self.hidden_bits - 1 - self.analogue_magnitude_bits

    @property
    def max_level(self) -> int:
        """Largest analogue magnitude level: 7 for 3 bits."""
        return 2 ** self.analogue_magnitude_bits - 1

    @property
    def fecaps(self) -> int:
        return self.sign_cells + sum(self.msb_cells) + self.lsb_cells

    @property
    def transfer_read_cells(self) -> int:
        """FeCAPs a transfer reads (and so must restore): the sign and MSB cells."""
        return self.sign_cells + sum(self.msb_cells)


PAPER_LAYOUT = SynapseLayout()

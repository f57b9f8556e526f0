"""How one synapse sits in the hybrid array (digest §2).

A weight is a 10-bit sign-magnitude integer held in 14 FeCAPs — 1 sign cell, MSB1 as 4 minimum
cells, MSB2 as 2, MSB3 as 1 (areas 4:2:1 × S_min), 6 LSB cells — plus a G+/G− memristor pair that
holds sign + 3 MSBs as an analogue conductance.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config_base import check_number, param


PAPER_ANALOGUE_BITS = 3  # sign + 3 MSBs into the memristor pair (digest §2–3)


@dataclass(frozen=True)
class SynapseLayout:
    hidden_bits: int = param(10, unit="bit", source="digest §2 [P]", doc="sign + magnitude bits of the hidden integer")
    analogue_magnitude_bits: int = param(PAPER_ANALOGUE_BITS, unit="bit", source="digest §2–3 [P]", doc="MSBs of the magnitude moved into the memristors")
    sign_cells: int = param(1, unit="FeCAP", source="digest §2 [P]")
    msb_cells: tuple[int, ...] | None = param(None, unit="FeCAP", source="digest §2 [P]: (4, 2, 1)",
                                              doc="cells per MSB, MSB1 first (area ratio); None: binary-weighted, "
                                                  "2^(n−1)…1 for n analogue bits — (4, 2, 1) for the paper's 3")
    lsb_cells: int | None = param(None, unit="FeCAP", source="digest §2 [P]: 6",
                                  doc="cells of the magnitude bits below the MSBs; None: hidden_bits − 1 − analogue_magnitude_bits")
    memristors: int = param(2, unit="memristor", source="digest §2 [P]",
                            doc="G+ and G−: the only count simulated (a transfer programs the one the sign selects, "
                                "and the weight reads as G+ − G−)")

    # the cell counts that follow from the bit widths when left None (sweeps.configs.resolve re-derives
    # them when only the widths are set)
    DERIVED = ("msb_cells", "lsb_cells")

    def __post_init__(self):
        check_number("SynapseLayout.hidden_bits", self.hidden_bits, lo=2, hi=16, integer=True)
        check_number("SynapseLayout.analogue_magnitude_bits", self.analogue_magnitude_bits, lo=1, integer=True)
        self._check_widths()
        # derived values are stored, so the paper's layout reads (4, 2, 1) and 6 as it always did
        if self.msb_cells is None:
            object.__setattr__(self, "msb_cells", tuple(2 ** i for i in reversed(range(self.analogue_magnitude_bits))))
        if self.lsb_cells is None:
            object.__setattr__(self, "lsb_cells", self.hidden_bits - 1 - self.analogue_magnitude_bits)
        if isinstance(self.msb_cells, (str, bytes)) or not hasattr(self.msb_cells, "__len__"):
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.msb_cells", self.msb_cells, "a list of cell counts, one per analogue MSB")
        object.__setattr__(self, "msb_cells", tuple(self.msb_cells))
        for cells in self.msb_cells:
            check_number("SynapseLayout.msb_cells", cells, lo=1, hi=1024, integer=True)
        check_number("SynapseLayout.lsb_cells", self.lsb_cells, lo=0, hi=16, integer=True)
        check_number("SynapseLayout.sign_cells", self.sign_cells, lo=1, hi=16, integer=True)
        check_number("SynapseLayout.memristors", self.memristors, integer=True)
        if self.memristors != 2:  # not a costing knob: only the ledger would have counted another number
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.memristors", self.memristors,
                              "2, the G+/G− pair: the sign cell selects which of the two a transfer programs and "
                              "the weight reads as G+ − G− (digest §2–3); no other count is simulated")
        if len(self.msb_cells) != self.analogue_magnitude_bits:
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.msb_cells", self.msb_cells,
                              f"{self.analogue_magnitude_bits} cell counts, one per analogue MSB")
        if self.lsb_cells != self.hidden_bits - 1 - self.analogue_magnitude_bits:
            from ..errors import ConfigError
            raise ConfigError("SynapseLayout.lsb_cells", self.lsb_cells,
                              f"{self.hidden_bits - 1 - self.analogue_magnitude_bits} (magnitude bits below the MSBs)")

    def _check_widths(self) -> None:
        """The analogue MSBs fit under the sign bit: refused naming the width moved from the paper's —
        hidden_bits when the analogue width is the paper's 3 (``--set layout.hidden_bits=3`` had been
        refused as 'analogue_magnitude_bits=3 is not allowed', a field the user never set), else
        analogue_magnitude_bits — with the other as context, so a front end names what was typed."""
        from ..errors import ConfigError
        h, a = self.hidden_bits, self.analogue_magnitude_bits
        if a <= h - 1:
            return
        if a == PAPER_ANALOGUE_BITS:
            raise ConfigError("SynapseLayout.hidden_bits", h, f"at least {a + 1} (a sign bit and the {a} analogue "
                              "magnitude bits)", context={"SynapseLayout.analogue_magnitude_bits": a})
        raise ConfigError("SynapseLayout.analogue_magnitude_bits", a, f"a value in [1, {h - 1}] (the magnitude bits "
                          f"under the sign of a {h}-bit hidden integer)", context={"SynapseLayout.hidden_bits": h})

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

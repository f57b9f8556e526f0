"""The synapse's layout (circuit/layout.py): the paper's by default, other bit widths with their cells derived."""
import dataclasses

import pytest

from ferristor.circuit.layout import PAPER_LAYOUT, SynapseLayout
from ferristor.errors import ConfigError


def test_the_paper_layout_reads_as_it_always_did():
    """Saved layer settings hash this dict (nn.hybrid._settings_tag): it must not change."""
    assert dataclasses.asdict(SynapseLayout()) == {"hidden_bits": 10, "analogue_magnitude_bits": 3, "sign_cells": 1,
                                                   "msb_cells": (4, 2, 1), "lsb_cells": 6, "memristors": 2}
    assert SynapseLayout() == PAPER_LAYOUT
    assert (PAPER_LAYOUT.max_hidden, PAPER_LAYOUT.level_shift, PAPER_LAYOUT.max_level, PAPER_LAYOUT.fecaps) == (511, 6, 7, 14)


def test_cells_follow_the_bit_widths_unless_given():
    eight = SynapseLayout(hidden_bits=8)
    assert (eight.msb_cells, eight.lsb_cells, eight.max_hidden, eight.level_shift, eight.fecaps) == ((4, 2, 1), 4, 127, 4, 12)
    two = SynapseLayout(analogue_magnitude_bits=2)
    assert (two.msb_cells, two.lsb_cells, two.max_level, two.level_shift) == ((2, 1), 7, 3, 7)
    assert SynapseLayout(msb_cells=[8, 4, 1]).msb_cells == (8, 4, 1)  # a TOML list, kept as a tuple


@pytest.mark.parametrize("kwargs,match", [
    ({"lsb_cells": 3}, r"lsb_cells=3 .*expected 6"),
    ({"msb_cells": (4, 2)}, r"msb_cells=\(4, 2\) .*3 cell counts"),
    ({"msb_cells": "abc"}, r"msb_cells='abc' .*a list of cell counts"),
    ({"msb_cells": (4, 0, 1)}, r"msb_cells=0 .*\[1, 1024\]"),
    ({"analogue_magnitude_bits": 10}, r"analogue_magnitude_bits=10 .*\[1, 9\]"),
    ({"memristors": 0}, r"memristors=0"), ({"sign_cells": 1.5}, r"sign_cells=1.5 .*an integer")])
def test_an_inconsistent_layout_is_refused_by_name(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SynapseLayout(**kwargs)


def test_too_few_hidden_bits_are_refused_as_hidden_bits():
    """hidden_bits=3 had been refused as 'analogue_magnitude_bits=3 is not allowed', a field the user never set:
    the width moved from the paper's is the one named, the other given as context."""
    with pytest.raises(ConfigError, match=r"hidden_bits=3 is not allowed with SynapseLayout.analogue_magnitude_bits=3: "
                                          r"expected at least 4") as e:
        SynapseLayout(hidden_bits=3)
    assert (e.value.field, e.value.context) == ("SynapseLayout.hidden_bits", {"SynapseLayout.analogue_magnitude_bits": 3})
    with pytest.raises(ConfigError, match=r"analogue_magnitude_bits=6 is not allowed with SynapseLayout.hidden_bits=5: "
                                          r"expected a value in \[1, 4\]"):
        SynapseLayout(hidden_bits=5, analogue_magnitude_bits=6)


@pytest.mark.parametrize("memristors", [1, 3, 4])
def test_only_the_g_plus_g_minus_pair_is_taken(memristors):
    """memristors=1 had been taken, changing only the ledger's memristor energy while training (and the
    array, which addresses G+ and G−) still ran a pair: the sign selects one of two, the weight is G+ − G−."""
    with pytest.raises(ConfigError, match=rf"memristors={memristors} is not allowed: expected 2, the G\+/G− pair"):
        SynapseLayout(memristors=memristors)

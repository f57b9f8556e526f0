import pytest
import torch
from hypothesis import given, settings, strategies as st

from ferristor.physics.cell import FECAP, MEMRISTOR, PRISTINE, CellModeError, DualModeCells


def test_cells_start_pristine_and_refuse_every_operation():
    c = DualModeCells(4, generator=torch.Generator().manual_seed(0))
    assert bool((c.mode == PRISTINE).all())
    for op in (lambda: c.write_bits(torch.ones(4, dtype=torch.bool)), lambda: c.read_bits(), lambda: c.reset(),
               lambda: c.set(10.0), lambda: c.read_conductance()):
        with pytest.raises(CellModeError, match="pristine"):
            op()


@settings(max_examples=30, deadline=None)
@given(roles=st.lists(st.booleans(), min_size=1, max_size=32), seed=st.integers(0, 1000))
def test_modes_are_irreversible_and_checked(roles, seed):
    g = torch.Generator().manual_seed(seed)
    fe = torch.tensor(roles)
    c = DualModeCells(len(roles), generator=g)
    c.wake_up(fe)
    c.form(~fe, g)
    assert bool((c.mode[fe] == FECAP).all())
    assert bool((c.mode[~fe & c.memristor.formed] == MEMRISTOR).all())
    if bool((~fe).any()):
        with pytest.raises(CellModeError, match="FeCAP"):
            c.write_bits(torch.ones(len(roles), dtype=torch.bool))  # touches memristors too
        with pytest.raises(CellModeError, match="irreversible"):
            c.wake_up(~fe)
    if bool(fe.any()):
        with pytest.raises(CellModeError, match="memristor"):
            c.reset(fe)
        with pytest.raises(CellModeError):
            c.form(fe, g)
        c.write_bits(torch.ones(len(roles), dtype=torch.bool), fe)  # right mode: fine

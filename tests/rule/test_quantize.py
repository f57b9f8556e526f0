import torch
from hypothesis import given
from hypothesis import strategies as st

from ferristor.rule.quantize import analogue_level, from_bits, round_to_grid, to_bits


def test_sign_magnitude_round_trip_every_hidden_value():
    h = torch.arange(-511, 512, dtype=torch.int16)
    bits = to_bits(h)
    assert bits.shape == (1023, 10)
    assert torch.equal(from_bits(bits), h.to(torch.int64))
    # sign cell is 1 exactly for negatives; magnitude bits are |h| in binary, MSB first
    assert torch.equal(bits[:, 0].bool(), h < 0)
    assert bits[h == 5].tolist() == [[0, 0, 0, 0, 0, 0, 0, 1, 0, 1]]
    assert bits[h == -320].tolist() == [[1, 1, 0, 1, 0, 0, 0, 0, 0, 0]]


def test_analogue_level_is_truncation_of_the_three_msbs():
    h = torch.tensor([0, 63, 64, 127, 128, 511, -1, -63, -64, -511], dtype=torch.int16)
    assert analogue_level(h).tolist() == [0, 0, 1, 1, 2, 7, 0, 0, -1, -7]


@given(st.integers(-511, 511))
def test_level_equals_sign_and_msb_bits(v):
    h = torch.tensor([v], dtype=torch.int16)
    bits = to_bits(h)[0].tolist()
    msb = bits[1] * 4 + bits[2] * 2 + bits[3]
    assert analogue_level(h).item() == (-msb if bits[0] else msb)


def test_rounding_modes():
    v = torch.tensor([-1.5, -0.5, -0.2, 0.2, 0.5, 1.5, 2.7])
    assert round_to_grid(v, "nearest").tolist() == [-1, 0, 0, 0, 1, 2, 3]
    assert round_to_grid(v, "truncate").tolist() == [-1, 0, 0, 0, 0, 1, 2]
    u = torch.zeros_like(v)
    assert round_to_grid(v, "stochastic", u).tolist() == torch.floor(v).tolist()


def test_stochastic_rounding_is_unbiased():
    g = torch.Generator().manual_seed(0)
    v = torch.full((400_000,), 0.3)
    r = round_to_grid(v, "stochastic", torch.rand(v.shape, generator=g))
    assert set(r.unique().tolist()) == {0.0, 1.0}
    assert abs(r.mean().item() - 0.3) < 4 * (0.3 * 0.7 / 400_000) ** 0.5

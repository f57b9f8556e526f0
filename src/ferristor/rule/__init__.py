"""The hybrid learning rule as a functional core: quantisation, the masked hidden update, the transfer.

Nothing here knows about networks or datasets: the rule takes gradients (dense, or as the rank-1
factors δ·xᵀ of a batch-1 linear layer) and integer state, and returns new state plus event counts.
"""
from .config import RuleConfig
from .quantize import analogue_level, from_bits, round_to_grid, to_bits

__all__ = ["RuleConfig", "analogue_level", "from_bits", "round_to_grid", "to_bits"]

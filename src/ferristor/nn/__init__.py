"""PyTorch modules on hybrid FeCAP/memristor synapses: layers, the paper's MLP, normalisation, convert, ledger."""
from .config import MODES, HybridConfig
from .conv import HybridConv2d
from .convert import convert, quantile_scale
from .hybrid import HybridModule, HybridParameter, name_streams
from .ledger import format_ledger, ledger
from .linear import HybridLinear
from .mlp import HybridMLP, NetworkSpec
from .norm import Normalize

__all__ = ["MODES", "HybridConfig", "HybridConv2d", "HybridLinear", "HybridMLP", "HybridModule", "HybridParameter",
           "NetworkSpec", "Normalize", "convert", "format_ledger", "ledger", "name_streams", "quantile_scale"]

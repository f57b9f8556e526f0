"""Device physics of the hybrid HfO2 stack (digest §1): FeCAP, memristor and the dual-mode cell.

Units used throughout: V, s, fF, fC, fJ, µS, µA. Every model is vectorised over a 1-D tensor of
cells and draws its randomness from an explicit ``torch.Generator``.
"""

"""ferristor: on-chip learning with the hybrid ferroelectric–memristor memory (Martemucci et al. 2025)."""
__version__ = "0.1.0"

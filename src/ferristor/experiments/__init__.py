"""Benchmarks of the paper (digest §6): resumable sweeps, the paper's reference values and plots."""

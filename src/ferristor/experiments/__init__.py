"""Experiments: run configs and the paper's presets, the training loop over replicas, resumable
sweeps, the paper's reference values (digest §6), plots and results."""

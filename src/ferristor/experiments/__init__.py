"""Experiments: configurations, the training loop over replicas, results and reports."""

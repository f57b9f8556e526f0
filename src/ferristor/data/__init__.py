"""Datasets: locating files (data root, a package that ships them, or a checked download) and reading them."""
from .registry import DATASETS, Dataset, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]

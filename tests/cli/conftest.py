from ..loaded_once import datasets_read_once  # noqa: F401  (autouse: MNIST read once per test process)

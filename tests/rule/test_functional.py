"""The rule's functional core (``rule.functional``): what it keeps between calls."""
import numpy as np
import torch


def test_device_keys_are_never_evicted():
    """Captured CUDA graphs hold raw pointers to the keys' tensors: an evicted tensor's memory would
    be reused and read as keys. So the first of many keys is still the same tensor."""
    from ferristor.rule.functional import keys_on
    first = keys_on(np.array([[1, 2]], np.uint32), "cpu")
    for i in range(5000):
        keys_on(np.array([[i, 7]], np.uint32), "cpu")
    assert keys_on(np.array([[1, 2]], np.uint32), "cpu") is first
    assert first.dtype == torch.int64 and first.tolist() == [[1, 2]]

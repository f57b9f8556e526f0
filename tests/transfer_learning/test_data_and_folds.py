"""Image sources (folders, torch Datasets, class subsets) and the cross-validation folds with flips."""
import numpy as np
import pytest
import torch

from ferristor.errors import ConfigError, DataError
from ferristor.transfer_learning import folds as fl
from ferristor.transfer_learning.images import from_folder, from_torch_dataset, parse_classes, resolve, subset

from .conftest import synthetic, write_folder


def test_folder_of_pngs_reads_back_the_images(tmp_path):
    data = synthetic(5, 3, seed=0)
    write_folder(data, tmp_path)
    back = resolve(f"folder:{tmp_path}")
    assert back.n_classes == 3 and back.image_shape == (1, 12, 12)
    assert len(back.x_train) == len(data.x_train) and len(back.x_test) == len(data.x_test)
    # 8-bit PNG: within half a grey level of the originals, which sit in [−1, 1]
    order = lambda d: torch.argsort(d.x_train.flatten(1).sum(1))  # noqa: E731
    assert torch.allclose(back.x_train[order(back)], data.x_train[order(data)], atol=1 / 127.5)
    with pytest.raises(DataError, match="does not exist"):
        from_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        from_folder(tmp_path / "empty")


def test_torch_dataset_and_class_subsets():
    data = synthetic(4, 5, seed=0)
    ds = torch.utils.data.TensorDataset(data.x_train, data.y_train)
    back = from_torch_dataset(ds, name="t")
    assert torch.equal(back.x_train, data.x_train) and back.n_classes == 5
    sub = subset(data, [3, 1])
    assert sub.n_classes == 2 and set(sub.y_train.tolist()) == {0, 1}
    assert torch.equal(sub.x_train[sub.y_train == 0], data.x_train[data.y_train == 3])
    assert parse_classes("0-2,7") == [0, 1, 2, 7]
    for bad in ("2-1", "a", "1,1", ""):
        with pytest.raises(ConfigError):
            parse_classes(bad)
    for one in ("3", "2-2"):  # one class: every model would score 100 %
        with pytest.raises(ConfigError, match="at least two classes"):
            parse_classes(one)
    with pytest.raises(ConfigError, match="dataset"):
        resolve("cifar10")


def test_folds_are_stratified_equal_and_keep_flip_pairs_together():
    y = np.repeat(np.arange(4), 30)
    f = fl.assign_folds(y, 10, seed=3)
    assert all((np.bincount(f[y == c]) == 3).all() for c in range(4))  # 3 per class in each fold
    pool = fl.with_flips(f)
    n = len(y)
    for k in range(10):
        train, test = fl.split(pool, k)
        assert len(test) == 24 and len(train) == 216
        originals = set(test[test < n]) | set(test[test >= n] - n)
        assert originals == set(test[test < n])  # every flip in the test fold has its original there
        assert not (set(train % n) & set(test % n))  # no image's mirror on the other side
    assert fl.inner_validation_fold(9, 10) == 0
    pool_idx = fl.balanced_pool(torch.from_numpy(np.repeat(np.arange(3), [50, 47, 60])), None, 10, 0)
    assert np.bincount(np.repeat(np.arange(3), [50, 47, 60])[pool_idx]).tolist() == [40, 40, 40]

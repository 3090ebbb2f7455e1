import numpy as np
import pytest

from keras_cd.datasets import load_digits


def test_split_is_a_seeded_stratified_partition_of_all_images():
    x_train, x_test, y_train, y_test = load_digits(seed=3)
    assert len(x_train) + len(x_test) == 1797 and x_train.shape[1:] == (8, 8, 1)
    assert x_train.dtype == np.float32 and 0 <= x_train.min() and x_train.max() == 1
    assert len(x_test) == pytest.approx(0.3 * 1797, abs=1)
    # Stratified: every class keeps its share in the test set within one image.
    all_labels = np.concatenate([y_train, y_test])
    for digit in range(10):
        share = np.mean(all_labels == digit) * len(y_test)
        assert abs(np.sum(y_test == digit) - share) <= 1
    again = load_digits(seed=3)
    np.testing.assert_array_equal(again[1], x_test)
    assert not np.array_equal(load_digits(seed=4)[3], y_test)
    # Pixel values are the dataset's 0..16 scaled by 1/16: 17 levels.
    assert set(np.unique(x_train * 16)) <= set(range(17))


def test_bad_test_size_names_the_argument():
    with pytest.raises(ValueError, match="Invalid value for `test_size`"):
        load_digits(test_size=1.5)

"""topk(sorted=False): the order torch's CPU kernel leaves the k chosen in (libstdc++'s nth_element without
the sort where k * 64 > n; its partial_sort, sorted, otherwise), ties included."""

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _cases():
    rng = np.random.default_rng(0)
    yield np.array([1.0, 3.0, 3.0, 2.0, 3.0, 0.0]), [2, 3]
    yield np.array([1.0, 5.0, 3.0, 4.0, 0.0, 2.0]), [3, 6]
    yield rng.integers(0, 3, 40).astype(np.float32), [1, 2, 3, 20]
    yield rng.standard_normal((5, 300)).astype(np.float32), [1, 4, 5, 150]  # 4 * 64 <= 300: partial_sort
    yield rng.integers(0, 4, (3, 7, 50)).astype(np.int64), [2, 9]
    with_nan = rng.standard_normal(30)
    with_nan[[3, 17]] = np.nan
    yield with_nan, [4, 10]


@pytest.mark.host_only
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("numba", [True, False])
def test_topk_unsorted_gives_torchs_cpu_order(largest, numba, monkeypatch):
    if not numba:
        monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    for x, ks in _cases():
        for k in ks:
            expected = torch.tensor(x).topk(k, largest=largest, sorted=False)
            got = ds.from_numpy(x).topk(k, largest=largest, sorted=False)
            assert got.indices.tolist() == expected.indices.tolist(), (x.shape, k)
            np.testing.assert_array_equal(got.values.numpy(), expected.values.numpy())


def test_topk_unsorted_gradient_goes_to_the_chosen_places():
    x = ds.tensor([1.0, 5.0, 3.0, 4.0, 0.0, 2.0], requires_grad=True)
    values, indices = x.topk(3, sorted=False)
    values.backward(ds.tensor([1.0, 2.0, 3.0]))
    expected = np.zeros(6)
    expected[indices.numpy()] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(x.grad.numpy(), expected)

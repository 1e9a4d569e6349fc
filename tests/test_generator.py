"""Generator: PyTorch's seeded random stream, accepted wherever the data utilities take generator=."""

import numpy as np
import pytest

import downslope as ds
from downslope.data import DataLoader, RandomSampler, TensorDataset, random_split
from downslope.errors import StateError
from downslope.generator import Generator


def test_manual_seed_returns_the_generator_and_fixes_the_stream():
    g = Generator().manual_seed(42)
    assert isinstance(g, Generator) and g.initial_seed() == 42
    a = g.numpy_generator.random(3)
    b = Generator().manual_seed(42).numpy_generator.random(3)
    np.testing.assert_array_equal(a, b)
    assert Generator().initial_seed() == 67280421310721  # PyTorch's default seed
    state = g.get_state()
    first = g.numpy_generator.random(2)
    g.set_state(state)
    np.testing.assert_array_equal(g.numpy_generator.random(2), first)
    assert g.seed() == g.initial_seed()
    with pytest.raises(StateError, match="'cuda' is not available"):
        Generator(device="cuda")


def test_data_utilities_take_a_generator_as_torch_code_passes_it():
    data = TensorDataset(ds.arange(20.0))
    parts = random_split(data, [0.8, 0.2], generator=Generator().manual_seed(42))
    again = random_split(data, [0.8, 0.2], generator=Generator().manual_seed(42))
    assert [list(p.indices) for p in parts] == [list(p.indices) for p in again] and len(parts[0]) == 16
    order = [x.tolist() for (x,) in DataLoader(data, batch_size=5, shuffle=True, generator=Generator().manual_seed(1))]
    assert order == [
        x.tolist() for (x,) in DataLoader(data, batch_size=5, shuffle=True, generator=Generator().manual_seed(1))
    ]
    assert sorted(RandomSampler(range(5), generator=Generator().manual_seed(3))) == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="downslope Generator or a numpy.random.Generator"):
        random_split(data, [10, 10], generator=42)

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


def _order(loader):
    return [int(v) for (x,) in loader for v in x.numpy()]


def test_manual_seed_after_building_a_loader_reaches_it_as_in_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        data = lib.utils.data.TensorDataset(lib.arange(10))
        g = lib.Generator()
        loader = lib.utils.data.DataLoader(data, batch_size=5, shuffle=True, generator=g)
        g.manual_seed(1)
        first = _order(loader)
        g.manual_seed(2)
        second = _order(loader)
        g.manual_seed(1)
        assert _order(loader) == first != second, lib.__name__
    fresh = DataLoader(TensorDataset(ds.arange(10)), batch_size=5, shuffle=True, generator=Generator().manual_seed(1))
    assert _order(fresh) == first


def test_get_state_is_a_uint8_tensor_that_ds_save_stores(tmp_path):
    torch = pytest.importorskip("torch")
    assert torch.Generator().get_state().dtype == torch.uint8
    g = Generator().manual_seed(5)
    g.numpy_generator.random(3)
    state = g.get_state()
    assert isinstance(state, ds.Tensor) and state.dtype == ds.uint8 and state.ndim == 1
    expected = g.numpy_generator.random(4)
    ds.save({"gen": state}, tmp_path / "g.pt")
    other = Generator().set_state(ds.load(tmp_path / "g.pt")["gen"])
    np.testing.assert_array_equal(other.numpy_generator.random(4), expected)
    assert other.initial_seed() == 5
    with pytest.raises(TypeError, match="uint8 tensor"):
        g.set_state(ds.zeros(3))
    with pytest.raises(ValueError, match="49 bytes"):
        g.set_state(torch.Generator().get_state().numpy())


def test_set_state_accepts_the_json_bytes_older_versions_saved():
    import json

    g = Generator().manual_seed(9)
    inner = g.numpy_generator.bit_generator.state
    old = json.dumps({**inner, "state": {k: str(v) for k, v in inner["state"].items()}, "seed": 9}).encode()
    expected = g.numpy_generator.random(2)
    assert (Generator().set_state(old).numpy_generator.random(2) == expected).all()


def test_rng_state_is_a_uint8_tensor_and_restores_the_initial_seed(tmp_path):
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        lib.manual_seed(7)
        state = lib.get_rng_state().clone()  # torch's checkpoint code clones it
        a = lib.rand(3).tolist()
        lib.manual_seed(8)
        lib.set_rng_state(state)
        assert lib.initial_seed() == 7 and lib.rand(3).tolist() == a, lib.__name__
    ds.manual_seed(7)
    ds.save({"rng": ds.get_rng_state()}, tmp_path / "rng.pt")
    a = ds.rand(3).tolist()
    ds.set_rng_state(ds.load(tmp_path / "rng.pt")["rng"])
    assert ds.rand(3).tolist() == a
    ds.manual_seed(7)
    old = dict(ds.default_generator.numpy_generator.bit_generator.state)  # what get_rng_state gave before
    ds.set_rng_state(old)
    assert ds.rand(3).tolist() == a


def test_initial_seed_without_manual_seed_is_drawn_once_and_repeats_the_run():
    import subprocess
    import sys

    code = (
        "import downslope as ds; s = ds.initial_seed(); a = ds.rand(3).tolist(); "
        "assert s == ds.initial_seed(); ds.manual_seed(s); print(isinstance(s, int), ds.rand(3).tolist() == a, s)"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True) for _ in range(2)]
    outs = [r.stdout.split() for r in runs]
    assert all(o[:2] == ["True", "True"] for o in outs) and outs[0][2] != outs[1][2]


def test_manual_seed_returns_the_default_generator_and_wraps_seeds_as_torch():
    torch = pytest.importorskip("torch")
    assert ds.manual_seed(3) is ds.default_generator is ds.random.default_generator
    assert torch.manual_seed(3) is torch.default_generator
    for seed in (-1, -(2**63), 2**63, 2**64 - 1, np.int64(-5)):
        torch.manual_seed(int(seed))
        ds.manual_seed(seed)
        assert ds.initial_seed() == torch.initial_seed()
        assert Generator().manual_seed(seed).initial_seed() == torch.Generator().manual_seed(int(seed)).initial_seed()
    for seed in (2**64, -(2**63) - 1):
        with pytest.raises(ValueError):
            torch.manual_seed(seed)
        with pytest.raises(ValueError, match=r"\[-2\*\*63, 2\*\*64\)"):
            ds.manual_seed(seed)
    a = ds.default_generator.manual_seed(4).get_state()
    assert ds.initial_seed() == 4 and a.tolist() == ds.get_rng_state().tolist()


def test_random_module_has_torch_random_names_and_fork_rng_restores():
    torch = pytest.importorskip("torch")
    public = {n for n in dir(torch.random) if not n.startswith("_") and callable(getattr(torch.random, n))}
    public -= {"TYPE_CHECKING", "thread_safe_generator"}  # a typing flag; a multithreading helper
    assert public <= set(dir(ds.random)), public - set(dir(ds.random))
    ds.manual_seed(1)
    expected = ds.rand(2).tolist()
    ds.manual_seed(1)
    with ds.random.fork_rng(devices=[]):
        ds.manual_seed(99)
        ds.rand(10)
    assert ds.initial_seed() == 1 and ds.rand(2).tolist() == expected
    ds.manual_seed(1)
    with pytest.raises(KeyError), ds.random.fork_rng():
        ds.rand(10)
        raise KeyError("restored on the way out too")
    assert ds.rand(2).tolist() == expected
    ds.manual_seed(1)
    with ds.random.fork_rng(enabled=False):
        ds.rand(1)
    assert ds.rand(2).tolist() != expected


@pytest.mark.parametrize("default", [False, True], ids=["Generator()", "default_generator"])
def test_clone_state_is_a_new_generator_at_the_same_position_as_torchs(default):
    torch = pytest.importorskip("torch")
    for lib in (torch, ds):
        g = lib.default_generator if default else lib.Generator()
        g.manual_seed(11)
        lib.rand(3, generator=g)
        h = g.clone_state()
        assert h is not g and type(h) is lib.Generator and h.initial_seed() == 11
        assert lib.rand(4, generator=h).tolist() == lib.rand(4, generator=g).tolist()
        lib.rand(2, generator=h)  # each draws from its own stream
        assert lib.rand(1, generator=h).tolist() != lib.rand(1, generator=g).tolist()

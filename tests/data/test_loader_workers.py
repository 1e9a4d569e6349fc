"""DataLoader(num_workers>0): downslope's in-process worker against PyTorch's worker processes.

What runs inside a worker (worker_init_fn, the dataset's reads) sees the worker's own random streams,
seeded as torch seeds a new worker process; the main process's streams are never moved by it."""

import random
import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.data.loader import _numpy_worker_seed

torch = pytest.importorskip("torch")
from torch.utils.data._utils.worker import _generate_state  # noqa: E402  (after the skip)


def _probe_dataset(lib, n):
    class Probe(lib.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            info = lib.utils.data.get_worker_info()
            return info.seed, lib.initial_seed(), np.random.rand(), random.random(), float(lib.rand(1).item())

    return Probe()


def _epochs(lib, epochs, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # downslope: "reads the data in this process"
        loader = lib.utils.data.DataLoader(
            _probe_dataset(lib, 3), batch_size=1, num_workers=1, collate_fn=lambda batch: batch[0], **options
        )
    lib.manual_seed(0)
    return [list(loader) for _ in range(epochs)]


def _expected_streams(lib, seed, draws):
    """What a worker seeded by torch's rules draws first from numpy, random and the library generator."""
    numpy_draws = np.random.RandomState(_generate_state(seed, 0)).rand(draws).tolist()
    python = random.Random(seed)
    generator = lib.Generator().manual_seed(seed)
    library = [float(lib.rand(1, generator=generator).item()) for _ in range(draws)]
    return numpy_draws, [python.random() for _ in range(draws)], library


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_a_worker_has_its_own_streams_seeded_from_its_seed_new_each_epoch(lib):
    epochs = _epochs(lib, 3)
    seeds = [epoch[0][0] for epoch in epochs]
    assert len(set(seeds)) == 3  # a new base seed each epoch (non-persistent workers)
    for epoch, seed in zip(epochs, seeds):
        assert [s[0] for s in epoch] == [seed] * 3
        assert [s[1] for s in epoch] == [seed] * 3  # initial_seed() inside the worker is its seed
        numpy_draws, python_draws, library_draws = _expected_streams(lib, seed, 3)
        assert [s[2] for s in epoch] == numpy_draws  # the worker's streams continue from batch to batch
        assert [s[3] for s in epoch] == python_draws
        assert [s[4] for s in epoch] == library_draws


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_persistent_workers_start_once_and_their_streams_continue(lib):
    init_calls = []
    epochs = _epochs(lib, 2, persistent_workers=True, worker_init_fn=init_calls.append)
    seed = epochs[0][0][0]
    assert [s[0] for epoch in epochs for s in epoch] == [seed] * 6
    numpy_draws, python_draws, library_draws = _expected_streams(lib, seed, 6)
    samples = epochs[0] + epochs[1]
    assert [s[2] for s in samples] == numpy_draws
    assert [s[3] for s in samples] == python_draws
    assert [s[4] for s in samples] == library_draws
    if lib is ds:  # torch's worker_init_fn runs in the worker process, where this list is a copy
        assert init_calls == [0]


def _main_streams_after_epochs(lib, draw_in_worker):
    def seed_everything(worker_id):  # PyTorch's randomness notes' recipe, and more
        np.random.seed(lib.initial_seed() % 2**32)
        random.seed(lib.initial_seed())
        lib.manual_seed(lib.initial_seed())

    class Data(lib.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if draw_in_worker:
                np.random.rand(), random.random(), lib.rand(2)
            return np.float32(i)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loader = lib.utils.data.DataLoader(
            Data(),
            batch_size=2,
            shuffle=True,
            num_workers=1,
            worker_init_fn=seed_everything if draw_in_worker else None,
        )
    lib.manual_seed(0)
    np.random.seed(123)
    random.seed(123)
    seen = []
    for _ in range(3):
        for batch in loader:
            seen.append((sorted(batch.tolist()), np.random.beta(0.4, 0.4), random.random()))
        seen.append(lib.rand(2).tolist())
    return seen


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_what_runs_in_a_worker_leaves_the_main_process_streams_alone(lib):
    """A worker_init_fn seeding numpy, random and the library (the mixup lambdas of the training loop
    must not repeat every epoch): the main streams continue as if the worker drew nothing."""
    assert _main_streams_after_epochs(lib, True) == _main_streams_after_epochs(lib, False)
    loop_draws = [s[1] for s in _main_streams_after_epochs(lib, True) if isinstance(s, tuple)]
    np.random.seed(123)
    random.seed(123)
    expected = []
    for _ in range(6):
        expected.append(np.random.beta(0.4, 0.4))
        random.random()
    assert loop_draws == expected


def test_numpy_worker_seed_is_torchs():
    rng = np.random.default_rng(0)
    for base_seed, worker_id in zip(rng.integers(0, 2**63 - 1, 200), rng.integers(0, 16, 200)):
        assert _numpy_worker_seed(int(base_seed), int(worker_id)) == _generate_state(int(base_seed), int(worker_id))


def test_an_error_inside_a_worker_restores_the_main_streams():
    class Broken(ds.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            np.random.seed(1)
            raise ds.errors.DataError("broken sample")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loader = ds.utils.data.DataLoader(Broken(), num_workers=1)
    np.random.seed(7)
    with pytest.raises(ds.errors.DataError, match="broken sample"):
        next(iter(loader))
    assert ds.utils.data.get_worker_info() is None
    assert np.random.rand() == np.random.RandomState(7).rand()


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_numpy_gaussians_cached_on_either_side_stay_with_their_stream(lib):
    """np.random.randn draws Gaussians in pairs and caches the second: a Gaussian left cached by the
    training loop is the loop's next one, one left by the worker the worker's, whatever runs between."""

    class Noisy(lib.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return lib.utils.data.get_worker_info().seed, np.random.randn(), np.random.rand(), np.random.randn()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loader = lib.utils.data.DataLoader(Noisy(), batch_size=1, num_workers=1, collate_fn=lambda b: b[0])
    lib.manual_seed(0)
    np.random.seed(3)
    samples, loop = [], []
    for sample in loader:
        samples.append(sample)
        loop.append((np.random.randn(), np.random.rand()))
    reference = np.random.RandomState(3)
    assert loop == [(reference.randn(), reference.rand()) for _ in range(5)]
    worker = np.random.RandomState(_generate_state(samples[0][0], 0))
    assert [s[1:] for s in samples] == [(worker.randn(), worker.rand(), worker.randn()) for _ in range(5)]

"""backend: the dtype policy helpers and the one seeded random generator."""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pytest

import downslope as ds
from downslope import backend


def test_manual_seed_makes_every_draw_repeatable():
    def draws():
        return np.concatenate([ds.randn(5).numpy(), ds.rand(3).numpy(), backend.rng().integers(0, 100, 4)])

    ds.manual_seed(7)
    first = draws()
    ds.manual_seed(7)
    np.testing.assert_array_equal(draws(), first)
    ds.manual_seed(8)
    assert not np.array_equal(draws(), first)


def test_generator_is_reseeded_in_place():
    held = backend.rng()  # modules keep a reference; reseeding must reach them
    ds.manual_seed(3)
    a = held.standard_normal(3)
    assert ds.manual_seed(3) is ds.default_generator and ds.default_generator.numpy_generator is held
    np.testing.assert_array_equal(held.standard_normal(3), a)


def test_rng_state_round_trips_through_json():
    ds.manual_seed(11)
    ds.randn(4)
    state = json.loads(json.dumps(dict(backend.rng().bit_generator.state)))  # the dict older versions saved
    expected = ds.randn(6).numpy()
    ds.randn(100)
    ds.set_rng_state(state)
    np.testing.assert_array_equal(ds.randn(6).numpy(), expected)
    with pytest.raises(ValueError, match="PCG64"):
        ds.set_rng_state({"bit_generator": "MT19937"})


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_manual_seed_refuses_non_integers(bad):
    with pytest.raises(TypeError, match="integer seed"):
        ds.manual_seed(bad)


def test_manual_seed_wraps_negatives_as_torch_and_accepts_numpy_ints():
    ds.manual_seed(-1)
    assert ds.initial_seed() == 2**64 - 1
    with pytest.raises(ValueError, match="2\\*\\*64"):
        ds.manual_seed(2**64)
    ds.manual_seed(np.int64(5))


def test_random_like_draws_on_the_host_from_the_host_generator():
    backend.manual_seed(3)
    expected = np.random.Generator(np.random.PCG64(3)).random((4, 5), dtype=np.float32)
    np.testing.assert_array_equal(backend.random_like((4, 5), np.zeros(1)), expected)


def test_random_like_draws_on_the_device_from_keys_of_the_host_generator():
    from downslope.devices import strict

    like = strict.zeros(1)

    def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        backend.manual_seed(5)
        first = backend.random_like((3, 4), like)
        second = backend.random_like((3, 4), like, np.float64)
        return first.get(), second.get(), backend.rng().random(2)

    copies = strict.copies_to_device()
    a, b = run(), run()
    assert strict.copies_to_device() == copies  # drawn on the device, not copied over
    assert a[0].dtype == np.float32 and a[1].dtype == np.float64
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # a seeded run repeats on its device
    assert not np.array_equal(a[0], a[1].astype(np.float32))  # each draw has its own key
    assert ((a[0] >= 0) & (a[0] < 1)).all()
    # each device draw took one key from the host generator, whatever its size
    host = np.random.Generator(np.random.PCG64(5))
    host.integers(2**63, size=2)
    np.testing.assert_array_equal(a[2], host.random(2))
    # so restoring the host state (as resuming from a checkpoint does) repeats the device draws
    backend.manual_seed(5)
    state = backend.get_rng_state()
    backend.random_like((7,), like)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.random_like((3, 4), like).get(), a[0])


def test_as_dtype_resolves_names_and_python_types():
    assert backend.as_dtype("float32") == np.float32
    assert backend.as_dtype(np.float64) == np.float64
    assert backend.as_dtype(float) == np.float64  # Python float is float64, as in torch
    assert backend.as_dtype(int) == np.int64 and backend.as_dtype(bool) == np.bool_
    assert backend.as_dtype("complex64") == np.complex64
    with pytest.raises(TypeError, match=r"unsupported dtype datetime64\[D\]"):
        backend.as_dtype("M8[D]")
    with pytest.raises(TypeError, match="unknown dtype"):
        backend.as_dtype("floaty")


def test_default_dtype_is_float32_and_is_floating():
    assert backend.get_default_dtype() == np.float32
    assert backend.is_floating(np.dtype(np.float16)) and not backend.is_floating(np.dtype(np.int64))
    assert ds.float32 == np.float32 and ds.int64 == np.int64 and ds.bool_ == np.bool_


@pytest.mark.parametrize("module", ["downslope.backend"])
def test_docstring_examples_run(module):
    # pytest also collects them (--doctest-modules over src/downslope); this keeps them checked in this file's run
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

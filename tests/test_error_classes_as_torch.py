"""Errors that ported code catches with torch's exception class: each is also that builtin class."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_recurrent_input_of_another_dtype_is_a_value_error(lib) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        lib.nn.LSTM(3, 4)(lib.zeros(2, 1, 3, dtype=lib.float64))


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_packing_a_zero_length_is_a_runtime_error(lib) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(3, 2, 1), [3, 0])


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_functional_call_strict_with_missing_keys_is_a_runtime_error(lib) -> None:  # type: ignore[no-untyped-def]
    model = lib.nn.Linear(2, 2)
    with pytest.raises(RuntimeError):
        lib.func.functional_call(model, {"weight": lib.zeros(2, 2)}, (lib.zeros(1, 2),), strict=True)

"""torch.func's and torch.autograd.functional's refusals are RuntimeErrors: downslope's are too, and
vmap refuses an in-place write into an input it does not batch (torch's batched call cannot make it;
a loop would make it once per element)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_CASES = {
    "grad of a non-scalar output": lambda L: L.func.grad(lambda a: a * 2)(L.ones(3)),
    "grad of a function returning a float": lambda L: L.func.grad(lambda a: (a * 2).sum().item())(L.ones(3)),
    "jvp with primals not a tuple": lambda L: L.func.jvp(lambda a: a * 2, L.ones(3), (L.ones(3),)),
    "jvp with a list of primals": lambda L: L.func.jvp(lambda a: a * 2, [L.ones(3)], [L.ones(3)]),
    "autograd.functional.vjp without v": lambda L: L.autograd.functional.vjp(lambda a: a * 2, L.ones(3)),
    "autograd.functional.jvp without v": lambda L: L.autograd.functional.jvp(lambda a: a * 2, L.ones(3)),
    "vmap writing into an unbatched input": lambda L: L.func.vmap(lambda a, acc: acc.add_(a), in_dims=(0, None))(
        L.ones(5, 3), L.zeros(3)
    ),
}


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
@pytest.mark.parametrize("case", list(_CASES))
def test_func_refusal_is_a_runtime_error(lib, case: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        _CASES[case](lib)


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_vmap_of_a_function_returning_a_float_is_a_value_error(lib) -> None:  # type: ignore[no-untyped-def]
    # (torch's RuntimeError for ``.item()`` inside vmap has no counterpart: this vmap is a loop, where
    # .item() works)
    with pytest.raises(ValueError, match="must only return Tensors"):
        lib.func.vmap(lambda a: 1.0)(lib.ones(2, 3))


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_vmap_of_a_function_returning_item_is_a_runtime_error(lib) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError):
        lib.func.vmap(lambda a: a.sum().item())(lib.ones(2, 3))


def test_jvp_primals_not_a_tuple_is_still_a_type_error() -> None:
    with pytest.raises(TypeError, match="primals to be a tuple"):
        ds.func.jvp(lambda a: a * 2, ds.ones(3), (ds.ones(3),))


def test_vmap_in_place_write_into_an_unbatched_input_is_refused_before_a_second_write() -> None:
    x = ds.tensor(np.arange(15.0).reshape(5, 3))
    acc = ds.zeros(3)
    with pytest.raises(RuntimeError, match=r"wrote in place into input 1 .*not batched"):
        ds.func.vmap(lambda a, b: b.add_(a), in_dims=(0, None))(x, acc)
    # the first element's write only (a loop would have added every row)
    np.testing.assert_array_equal(acc.numpy(), [0.0, 1.0, 2.0])


def test_vmap_in_place_writes_into_batched_inputs_and_copies_still_work() -> None:
    x = np.arange(6.0).reshape(2, 3)
    got = ds.func.vmap(lambda a, b: b.clone().add_(a), in_dims=(0, None))(ds.tensor(x), ds.ones(3))
    np.testing.assert_array_equal(got.numpy(), x + 1)
    batched = ds.tensor(x)
    ds.func.vmap(lambda a: a.mul_(2))(batched)  # torch allows writes into the batched input's slices
    t = torch.tensor(x)
    torch.func.vmap(lambda a: a.mul_(2))(t)
    np.testing.assert_array_equal(batched.numpy(), t.numpy())
    # an unbatched input that is only read, also in a nested pytree
    params = {"w": ds.ones(3)}
    out = ds.func.vmap(lambda p, a: (p["w"] * a).sum(), in_dims=(None, 0))(params, ds.tensor(x))
    np.testing.assert_array_equal(out.numpy(), x.sum(1))

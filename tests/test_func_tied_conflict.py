"""``functional_call`` with tied weights (an embedding shared with the output layer) given under several of
their names, against torch: two different tensors for one tied tensor are refused (the call could use only
one of them), the same tensor under several names is fine, and ``tie_weights=False`` replaces each name on
its own."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError

torch = pytest.importorskip("torch")


def _tied(lib: Any) -> Any:
    class Tied(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = lib.nn.Embedding(2, 2).double()
            self.out = lib.nn.Linear(2, 2, bias=False).double()
            self.out.weight = self.emb.weight

        def forward(self, i: Any) -> Any:
            return self.out(self.emb(i))

    return Tied()


_A = np.array([[1.0, 2.0], [3.0, -1.0]])
_B = np.array([[0.5, -2.0], [1.5, 4.0]])


@pytest.mark.parametrize("names", [("emb.weight", "out.weight"), ("out.weight", "emb.weight")])
@pytest.mark.parametrize("functional_call", ["func", "stateless"])
@pytest.mark.filterwarnings("ignore:`torch.nn.utils.stateless.functional_call` is deprecated:FutureWarning")
def test_different_values_for_tied_names_are_refused_as_torch(names: tuple[str, str], functional_call: str) -> None:
    for lib in (torch, ds):
        call = lib.func.functional_call if functional_call == "func" else lib.nn.utils.stateless.functional_call
        given = {names[0]: lib.tensor(_A, dtype=lib.float64), names[1]: lib.tensor(_B, dtype=lib.float64)}
        error = ArgumentError if lib is ds else ValueError
        with pytest.raises(error, match="functional_call got multiple values for keys") as info:
            call(_tied(lib), given, (lib.tensor([0, 1]),))
        assert isinstance(info.value, ValueError)  # torch's class too
        for name in ("emb.weight", "out.weight"):
            assert name in str(info.value)
        assert "tie_weights=False" in str(info.value)


def test_the_same_tensor_under_several_tied_names_works_as_torch() -> None:
    outs = []
    for lib in (torch, ds):
        w = lib.tensor(_A, dtype=lib.float64)
        out = lib.func.functional_call(_tied(lib), {"emb.weight": w, "out.weight": w}, (lib.tensor([0, 1]),))
        outs.append(out.detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)


def test_untied_call_takes_each_value_under_its_own_name_as_torch() -> None:
    outs = []
    for lib in (torch, ds):
        given = {"emb.weight": lib.tensor(_A, dtype=lib.float64), "out.weight": lib.tensor(_B, dtype=lib.float64)}
        out = lib.func.functional_call(_tied(lib), given, (lib.tensor([0, 1]),), tie_weights=False)
        outs.append(out.detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12)

"""``Embedding._fill_padding_idx_with_zero`` (torch's helper that subclasses call after their own
initialization, and that reset_parameters runs), against torch."""

from __future__ import annotations

import numpy as np
import torch

import downslope as ds


def test_fill_padding_idx_with_zero_zeroes_that_row_only_as_torch() -> None:
    table = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    rows = []
    for lib in (torch, ds):
        emb = lib.nn.Embedding(6, 2, padding_idx=-2)
        with lib.no_grad():
            emb.weight.copy_(lib.tensor(table))
        before = emb.weight._version
        emb._fill_padding_idx_with_zero()
        assert emb.weight._version > before and emb.weight.requires_grad
        rows.append(emb.weight.detach().numpy().copy())
        unpadded = lib.nn.Embedding(6, 2)
        with lib.no_grad():
            unpadded.weight.copy_(lib.tensor(table))
        unpadded._fill_padding_idx_with_zero()
        np.testing.assert_array_equal(unpadded.weight.detach().numpy(), table)
    np.testing.assert_array_equal(rows[1], rows[0])


def test_a_subclass_initializing_its_own_way_then_filling_the_padding_row_matches_torch() -> None:
    tables = []
    for lib in (torch, ds):

        class OnesEmbedding(lib.nn.Embedding):
            def reset_parameters(self, init=lib.nn.init):
                init.ones_(self.weight)
                self._fill_padding_idx_with_zero()

        tables.append(OnesEmbedding(4, 3, padding_idx=1).weight.detach().numpy())
    np.testing.assert_array_equal(tables[1], tables[0])

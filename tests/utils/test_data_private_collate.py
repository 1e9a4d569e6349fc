"""torch.utils.data._utils.collate, the private path older code imports default_collate from, is there
with the same functions as downslope.data's."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds


def test_private_collate_path_re_exports_the_collate_functions():
    from downslope.utils.data._utils.collate import default_collate, default_convert

    assert default_collate is ds.data.default_collate
    assert default_convert is ds.data.default_convert


def test_private_collate_package_import_and_batch_match_torch():
    import downslope.utils.data._utils as utils

    pytest.importorskip("torch")
    from torch.utils.data._utils.collate import default_collate as torch_collate

    samples = [(np.full(2, 200, np.uint8), 1), (np.full(2, 3, np.uint8), 0)]
    expected = torch_collate(samples)
    got = utils.collate.default_collate(samples)
    assert [g.dtype.name for g in got] == [str(e.dtype).replace("torch.", "") for e in expected]
    assert [g.tolist() for g in got] == [e.tolist() for e in expected]


def test_private_collate_path_is_reached_by_attributes_as_torchs():
    """`torch.utils.data._utils.collate.default_collate(batch)` written out in full, without an import."""
    torch = pytest.importorskip("torch")
    theirs = torch.utils.data._utils.collate.default_collate([1, 2])
    ours = ds.utils.data._utils.collate.default_collate([1, 2])
    assert ours.tolist() == theirs.tolist() and str(ours.dtype) == str(theirs.dtype).replace("torch.", "")

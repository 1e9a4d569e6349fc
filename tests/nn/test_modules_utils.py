"""nn.modules.utils (torch.nn.modules.utils): the argument helpers layer code imports, against torch's."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import downslope as ds

torch = pytest.importorskip("torch")
import torch.nn.modules.utils as theirs  # noqa: E402


def test_ntuple_helpers_match_torch() -> None:
    from downslope.nn.modules import utils as ours

    for name in ("_single", "_pair", "_triple", "_quadruple"):
        for value in (3, (1, 2), [4, 5, 6], "ab", 2.5):
            assert getattr(ours, name)(value) == getattr(theirs, name)(value)
        assert getattr(ours, name).__name__ == name
    assert ours._ntuple(5)(1) == theirs._ntuple(5)(1)
    assert ours._reverse_repeat_tuple((1, 2, 3), 2) == theirs._reverse_repeat_tuple((1, 2, 3), 2)
    assert ours._list_with_default([None, 3], [8, 5, 7]) == theirs._list_with_default([None, 3], [8, 5, 7])
    assert ds.nn.modules.utils._pair is ours._pair


def test_consume_prefix_in_state_dict_if_present_matches_torch() -> None:
    from downslope.nn.modules.utils import consume_prefix_in_state_dict_if_present

    def make() -> OrderedDict:
        sd = OrderedDict([("module.a.weight", 1), ("module.b", 2), ("c", 3)])
        sd._metadata = OrderedDict([("", {}), ("module", {"v": 1}), ("module.a", {"v": 2})])  # type: ignore[attr-defined]
        return sd

    ours, mine = make(), make()
    consume_prefix_in_state_dict_if_present(ours, "module.")
    theirs.consume_prefix_in_state_dict_if_present(mine, "module.")
    assert list(ours.items()) == list(mine.items()) and list(ours._metadata.items()) == list(mine._metadata.items())

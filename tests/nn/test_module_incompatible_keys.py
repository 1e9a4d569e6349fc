"""load_state_dict's result (src/downslope/nn/module/base.py): torch's repr and str, a NamedTuple."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _results(lib):  # type: ignore[no-untyped-def]
    layer = lib.nn.Linear(2, 2)
    state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    extra = lib.ones(1)
    return [
        layer.load_state_dict(state),
        layer.load_state_dict({"weight": state["weight"]}, strict=False),
        layer.load_state_dict({**state, "extra": extra}, strict=False),
        layer.load_state_dict({"weight": state["weight"], "extra": extra, "more": extra}, strict=False),
    ]


def test_repr_and_str_of_the_result_match_torch() -> None:
    ours, theirs = _results(ds), _results(torch)
    assert [repr(r) for r in ours] == [repr(r) for r in theirs]
    assert [str(r) for r in ours] == [str(r) for r in theirs]
    assert repr(ours[0]) == "<All keys matched successfully>"
    assert repr(ours[1]) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=[])"


def test_the_result_stays_a_named_tuple() -> None:
    result = _results(ds)[3]
    assert result._fields == ("missing_keys", "unexpected_keys") == type(_results(torch)[3])._fields
    missing, unexpected = result
    assert missing == result.missing_keys == ["bias"] and unexpected == result.unexpected_keys == ["extra", "more"]
    assert result == (["bias"], ["extra", "more"]) and isinstance(result, ds.nn.IncompatibleKeys)
    assert f"{_results(ds)[0]}" == "<All keys matched successfully>"

"""torch.compile's checks of ``options``, ``mode`` and ``dynamic`` as torch 2.13's: the inductor backend
(the default) checks option names and value types against its config, and the mode; other backends take
mode and options unchecked; ``dynamic`` must be a bool or None (checked after ``disable``)."""

from __future__ import annotations

from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _outcome(lib: Any, model: Any, kwargs: dict[str, Any]) -> tuple[str, str]:
    try:
        result = lib.compile(model, **kwargs)
    except Exception as e:  # noqa: BLE001  (the class and message are what is compared)
        return "raises", str(e)
    return "returns", type(result).__name__


CASES = [
    {"options": {"bogus_key": 1}},
    {"options": {"max_autotune": 1}},
    {"options": {"max-autotune": True}},
    {"options": {"max_autotune": True, "triton.cudagraphs": False, "compile_threads": True}},
    {"options": {"triton.cudagraphs": 1}},
    {"options": {"triton": True}},
    {"options": {"debug": None}},
    {"options": {"guard_filter_fn": None, "use_aoti": False}},
    {"options": {}},
    {"options": {"bogus_key": 1}, "backend": "eager"},
    {"options": {"bogus_key": 1}, "disable": True},
    {"mode": "bogus", "backend": "eager"},
    {"mode": "bogus", "disable": True},
    {"dynamic": "x"},
    {"dynamic": 1},
    {"dynamic": "x", "backend": "eager"},
    {"dynamic": "x", "disable": True},
    {"dynamic": False, "fullgraph": True, "backend": "eager", "mode": "max-autotune"},
]


@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_option_checks_as_torch(kwargs: dict[str, Any]) -> None:
    theirs = _outcome(torch, torch.nn.Linear(2, 2), dict(kwargs))
    ours = _outcome(ds, ds.nn.Linear(2, 2), dict(kwargs))
    assert ours[0] == theirs[0], (ours, theirs)
    if theirs[0] == "returns":
        assert ours[1] == theirs[1]
    else:  # torch's message (the known-options list of the unknown-option one included) within ours
        assert theirs[1] in ours[1], (ours[1][:300], theirs[1][:300])


def test_error_classes_as_torch() -> None:
    with pytest.raises(RuntimeError, match="Unexpected optimization option bogus"):
        ds.compile(ds.nn.Linear(2, 2), options={"bogus": 1})
    with pytest.raises(RuntimeError, match="Unexpected type of attr max_autotune, got int should be bool"):
        ds.compile(ds.nn.Linear(2, 2), options={"max_autotune": 1})
    with pytest.raises(AssertionError, match="Expected enable to be a bool"):
        ds.compile(lambda x: x, dynamic="yes")
    # torch raises AttributeError ('list' object has no attribute 'items'); downslope a TypeError naming it
    with pytest.raises(TypeError, match="options must be a dict"):
        ds.compile(ds.nn.Linear(2, 2), options=[("max_autotune", True)])


def test_known_options_are_torchs() -> None:
    from torch._inductor import config

    from downslope._inductor.known_options import OPTION_NAMES

    assert list(OPTION_NAMES) == list(config.get_config_copy())

"""Global module hooks (torch.nn.modules.module.register_module_forward_hook / _pre_hook), against PyTorch:
every module's call runs them, before the module's own hooks; their results replace args/outputs."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn.module import register_module_forward_hook, register_module_forward_pre_hook

torch = pytest.importorskip("torch")
from torch.nn.modules import module as torch_module  # noqa: E402


def _run(lib, register_pre, register_fwd, model, x):
    order = []
    model[0].register_forward_pre_hook(lambda m, a: order.append(("local_pre", type(m).__name__)))
    model[0].register_forward_hook(lambda m, a, o: order.append(("local_fwd", type(m).__name__)))
    handles = [
        register_pre(lambda m, a: order.append(("global_pre", type(m).__name__))),
        register_fwd(lambda m, a, o: order.append(("global_fwd", type(m).__name__))),
    ]
    model(x)
    changed = [register_pre(lambda m, a: (a[0] * 2,) if isinstance(m, lib.nn.Linear) else None)]
    changed.append(register_fwd(lambda m, a, o: o + 1 if isinstance(m, lib.nn.Sequential) else None))
    out = model(x)
    for h in handles + changed:
        h.remove()
    plain = model(x)
    return order, out.detach().numpy(), plain.detach().numpy()


def test_global_forward_hooks_match_torch_order_and_results() -> None:
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    ours = ds.nn.Sequential(ds.nn.Linear(3, 2), ds.nn.ReLU())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    got = _run(ds, register_module_forward_pre_hook, register_module_forward_hook, ours, ds.tensor(x))
    want = _run(
        torch,
        torch_module.register_module_forward_pre_hook,
        torch_module.register_module_forward_hook,
        theirs,
        torch.tensor(x),
    )
    assert got[0] == want[0]  # global hooks first, then the module's own, for every module
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6)  # removed: the plain forward again


def test_global_hook_handle_is_a_context_manager_and_rejects_non_callables() -> None:
    seen = []
    with register_module_forward_hook(lambda m, a, o: seen.append(type(m).__name__)):
        ds.nn.Linear(2, 2)(ds.ones(1, 2))
    ds.nn.Linear(2, 2)(ds.ones(1, 2))
    assert seen == ["Linear"]
    with pytest.raises(TypeError, match="callable"):
        register_module_forward_pre_hook(42)  # type: ignore[arg-type]
    with register_module_forward_hook(lambda m, a, kw, o: seen.append(sorted(kw)), with_kwargs=True):
        ds.nn.Linear(2, 2)(ds.ones(1, 2))
    assert seen == ["Linear", []]

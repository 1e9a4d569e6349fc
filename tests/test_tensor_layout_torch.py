"""Memory layout against torch 2.13: strides, contiguity in both memory formats, clone/contiguous/to in
a memory format, writes through views of convolution outputs, the layouts of rot90/roll/tril/softmax
of permuted inputs and nonzero's, and gradients of in-place writes through whole views (regressions a
differential layout fuzzer found; the fuzzer itself runs in the slow test at the end)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

LIBS = [ds, torch]


def _conv(lib: Any, x: Any, out: int = 3) -> Any:
    w = lib.tensor(np.random.default_rng(1).standard_normal((out, x.shape[1], 3, 3)).astype(np.float32))
    return lib.nn.functional.conv2d(x, w, padding=1)


def _input(lib: Any, shape: tuple[int, ...], seed: int = 0) -> Any:
    return lib.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _both(fn: Any) -> tuple[Any, Any]:
    return fn(ds), fn(torch)


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (2, 1, 4, 4), (2, 3, 4, 4), (1, 1, 4, 5)])
def test_a_convolution_output_has_torch_strides_and_is_not_channels_last(shape: tuple[int, ...]) -> None:
    def probe(lib: Any) -> Any:
        y = _conv(lib, _input(lib, shape), out=shape[1])
        z = lib.nn.functional.relu(lib.nn.functional.batch_norm(y, None, None, training=True))
        return [
            (t.stride(), t.is_contiguous(), t.is_contiguous(memory_format=lib.channels_last))
            for t in (y, z, z[:, 0])
            if t.dim() == 4
        ] + [(z[:, 0].stride(), z[:, 0].is_contiguous())]

    ours, theirs = _both(probe)
    assert ours == theirs


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: _input(lib, (2, 16, 4, 8)).permute(0, 2, 3, 1),
        lambda lib: _input(lib, (2, 3, 4, 5))[:, :, ::2].permute(0, 2, 3, 1),
        lambda lib: _input(lib, (4, 3)).t()[:, ::2],
        lambda lib: _input(lib, (3, 1)).expand(3, 4).t(),
        lambda lib: _input(lib, (2, 3, 4, 5)).transpose(1, 2),
        lambda lib: _conv(lib, _input(lib, (2, 3, 4, 4))),
        lambda lib: _conv(lib, _input(lib, (2, 3, 4, 4))).permute(0, 2, 3, 1),
    ],
)
@pytest.mark.parametrize("fmt", ["preserve_format", "contiguous_format", "channels_last"])
def test_clone_in_a_memory_format_has_torch_strides(make: Any, fmt: str) -> None:
    def probe(lib: Any) -> Any:
        x = make(lib)
        if fmt == "channels_last" and x.dim() != 4:
            with pytest.raises(RuntimeError, match="rank 4"):
                x.clone(memory_format=lib.channels_last)
            return None
        y = x.clone(memory_format=getattr(lib, fmt)) if fmt != "preserve_format" else x.clone()
        assert y.data_ptr() != x.data_ptr()
        y.fill_(0.0)  # a copy: the source keeps its values
        return y.stride(), y.is_contiguous(), float(x.abs().sum())

    ours, theirs = _both(probe)
    if ours is not None:
        assert ours[:2] == theirs[:2]
        assert ours[2] == pytest.approx(theirs[2], rel=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 1, 4, 4), (1, 3, 1, 1)])
def test_channels_last_contiguous_and_to_as_torch(shape: tuple[int, ...]) -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, shape)
        a = x.contiguous(memory_format=lib.channels_last)
        b = x.to(memory_format=lib.channels_last)
        c = a.to(memory_format=lib.channels_last)  # already channels-last: itself
        d = a.contiguous(memory_format=lib.channels_last)
        e = a.to(memory_format=lib.contiguous_format)
        t = x.transpose(2, 3)
        return (
            a.stride(),
            b.stride(),
            a.is_contiguous(),
            a.is_contiguous(memory_format=lib.channels_last),
            x.is_contiguous(memory_format=lib.channels_last),
            a.data_ptr() == x.data_ptr(),
            b.data_ptr() == x.data_ptr(),
            c.data_ptr() == a.data_ptr(),
            d.data_ptr() == a.data_ptr(),
            e.stride(),
            t.to(memory_format=lib.contiguous_format).data_ptr() == t.data_ptr(),
            np.asarray(a.detach().numpy()).tolist() == np.asarray(x.detach().numpy()).tolist(),
        )

    ours, theirs = _both(probe)
    assert ours == theirs


def test_channels_last_of_another_rank_and_preserve_format_are_refused_as_torch() -> None:
    for lib in LIBS:
        x = lib.ones(2, 3, 4)
        with pytest.raises(RuntimeError, match="rank 4"):
            x.contiguous(memory_format=lib.channels_last)
        assert x.is_contiguous(memory_format=lib.channels_last) is False
        with pytest.raises(RuntimeError, match="preserve"):
            x.transpose(0, 1).contiguous(memory_format=lib.preserve_format)
        assert x.contiguous(memory_format=lib.preserve_format) is x


def test_a_write_into_a_channels_last_copy_leaves_the_source_alone() -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, (2, 3, 4, 5))
        y = x[:, 0::2].to(memory_format=lib.channels_last)
        y.add_(1000.0)
        return float(x.abs().max()) < 100

    assert _both(probe) == (True, True)


def test_channels_last_copy_passes_gradients() -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, (2, 3, 4, 5)).requires_grad_()
        y = x.contiguous(memory_format=lib.channels_last)
        (y * y.detach().clone() * 3).sum().backward()
        return x.grad.numpy()

    ours, theirs = _both(probe)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_a_write_through_a_flat_view_of_a_stack_of_convolution_outputs_reaches_the_stack() -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, (2, 3, 4, 4))
        s = lib.stack([_conv(lib, x), _conv(lib, x * 2)])
        r = s.reshape(-1)
        r[5] = 100.0
        r.view(2, -1)[1, 3] = -50.0
        return float(s.flatten()[5]), float(s.reshape(2, -1)[1, 3]), r.data_ptr() == s.data_ptr(), s.stride()

    assert _both(probe)[0] == _both(probe)[1]


@pytest.mark.parametrize(
    "op",
    [
        lambda x: x.rot90(1, (1, 2)),
        lambda x: x.rot90(2, (1, 2)),
        lambda x: x.rot90(0, (1, 2)),
        lambda x: x.rot90(3, (2, 3)),
        lambda x: x.flip(1),
        lambda x: x.roll(1, 1),
        lambda x: x.roll(1),
        lambda x: x.tril(),
        lambda x: x.triu(1),
        lambda x: x.softmax(1),
        lambda x: x.log_softmax(-1),
    ],
)
def test_ops_of_a_permuted_input_have_torch_strides(op: Any) -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, (2, 3, 4, 5)).permute(0, 2, 3, 1)
        y = op(x)
        return y.stride(), np.asarray(y.numpy())

    (s_ours, v_ours), (s_theirs, v_theirs) = _both(probe)
    assert s_ours == s_theirs
    np.testing.assert_allclose(v_ours, v_theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3), (5,), (2, 3, 4)])
def test_nonzero_has_torch_strides(shape: tuple[int, ...]) -> None:
    def probe(lib: Any) -> Any:
        x = lib.tensor((np.arange(np.prod(shape)) % 3).reshape(shape).astype(np.float32))
        return x.nonzero().stride(), x.transpose(0, -1).nonzero().tolist(), x.argwhere().stride()

    assert _both(probe)[0] == _both(probe)[1]


def _view_writes(lib: Any, kind: str) -> Any:
    x = _input(lib, (4, 6)).double().requires_grad_()
    c = _input(lib, (6, 4), seed=3).double()
    h = x * 2
    if kind == "mul_t":
        h.t().mul_(c)
    elif kind == "fill_t":
        h.t().fill_(1.5)
    elif kind == "copy_t":
        h.t().copy_(c * x.t())
    elif kind == "add_reshape":
        h.view(2, 12).add_(c.reshape(2, 12))
    elif kind == "row_of_t":
        v = h.t()
        v.mul_(c)
        v[0] += 1.0
        v[1:3] *= c[1:3]
    elif kind == "nested":
        v = h.t().unsqueeze(0)
        v.mul_(c.unsqueeze(0))
        v[0, 2] = x[:, 0] * 3
    else:
        raise AssertionError(kind)
    (h * h * c.t()).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("kind", ["mul_t", "fill_t", "copy_t", "add_reshape", "row_of_t", "nested"])
def test_writes_through_whole_views_have_torch_gradients(kind: str) -> None:
    ours, theirs = _both(lambda lib: _view_writes(lib, kind))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_a_fill_through_a_transposed_view_still_gives_a_zero_gradient_to_the_input() -> None:
    def probe(lib: Any) -> Any:
        x = _input(lib, (3, 4)).requires_grad_()
        h = x * 2
        h.t().fill_(1.0)
        h.sum().backward()
        return None if x.grad is None else x.grad.numpy().tolist()

    assert _both(probe)[0] == _both(probe)[1]


@pytest.mark.slow
def test_layout_fuzzer_finds_no_value_difference() -> None:
    """Random chains of convolution-family outputs, channels-last copies, views, joins and clones, then
    an in-place write through the last: every tensor of the chain holds torch's values afterwards (a
    write reaches the base exactly where torch's does), and no view is refused where torch allows it."""
    from ._layout_fuzz import run_one

    problems = []
    for seed in range(300):
        steps, found = run_one(seed, torch, ds)
        problems += [(seed, steps, p) for p in found]
    assert not problems, problems[:5]


def test_fuzzer_smoke() -> None:
    from ._layout_fuzz import run_one

    for seed in range(3):
        run_one(seed, torch, ds)

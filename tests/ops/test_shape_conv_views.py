"""User reshapes of a convolution's output copy exactly where PyTorch's copy: the output is channel-major
here and contiguous there, so a view here could let an in-place op change it where torch's would not."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RS = np.random.RandomState(0)
W, B = RS.randn(4, 3, 3, 3).astype(np.float32), RS.randn(4).astype(np.float32)
X = RS.randn(2, 3, 5, 5).astype(np.float32)

HEADS = {
    "ds.reshape": lambda lib, y: lib.reshape(y.permute(0, 2, 3, 1), (-1, 4)),
    "ds.flatten": lambda lib, y: lib.flatten(y.permute(0, 2, 3, 1), 0, 2),
    "reshape_as": lambda lib, y: y.permute(0, 2, 3, 1).reshape_as(lib.zeros(50, 4)),
    "method reshape": lambda lib, y: y.permute(0, 2, 3, 1).reshape(-1, 4),
    "method flatten": lambda lib, y: y.permute(0, 2, 3, 1).flatten(0, 2),
    "ds.ravel": lambda lib, y: lib.ravel(y.transpose(0, 1)),
    "method ravel": lambda lib, y: y.transpose(0, 1).ravel(),
    "transposed reshape": lambda lib, y: y.transpose(0, 1).reshape(4, -1),
    "channel slice": lambda lib, y: y[:, 1:3].flatten(2),
    "batch norm": lambda lib, y: lib.flatten(lib.relu(lib.nn.BatchNorm2d(4)(y)).permute(0, 2, 3, 1), 0, 2),
    "view kept dims": lambda lib, y: y.permute(0, 2, 3, 1).view(2, 25, 4),
    # Glow's ActNorm initialisation: the batch and channel dims swapped, made contiguous, then viewed
    "swapped contiguous": lambda lib, y: y.permute(1, 0, 2, 3).contiguous(),
    "swapped contiguous view": lambda lib, y: y.transpose(0, 1).contiguous().view(4, -1),
    "batch norm swapped contiguous": lambda lib, y: lib.relu(lib.nn.BatchNorm2d(4)(y)).transpose(0, 1).contiguous(),
    "channel slice contiguous": lambda lib, y: y[:, 1].contiguous(),
}


def _run(lib, head):
    conv = lib.nn.Conv2d(3, 4, 3, padding=1)
    with lib.no_grad():
        conv.weight.copy_(lib.tensor(W))
        conv.bias.copy_(lib.tensor(B))
    x = lib.tensor(X, requires_grad=True)
    y = conv(x)
    z = head(lib, y)
    z.sigmoid_()  # in place: changes y only where the reshape was a view
    ((z * z).sum() + (y * y).sum()).backward()
    return [t.detach().numpy().copy() for t in (y, z, x.grad, conv.weight.grad, conv.bias.grad)]


@pytest.mark.parametrize("name", list(HEADS))
def test_a_detection_heads_in_place_op_matches_torch_forward_and_gradients(name: str) -> None:
    for ours, theirs in zip(_run(ds, HEADS[name]), _run(torch, HEADS[name])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [
        lambda y: y.permute(0, 2, 3, 1).view(-1, 4),
        lambda y: y.permute(0, 2, 3, 1).view_as(y.new_zeros(50, 4)),
        lambda y: y[:, :2].view(-1),
        lambda y: y.transpose(0, 1).view(4, -1),
    ],
)
def test_view_refuses_where_torch_refuses(make) -> None:
    y = ds.nn.Conv2d(3, 4, 3, padding=1)(ds.tensor(X))
    with pytest.raises(ds.ShapeError, match="view size is not compatible"):
        make(y)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        make(torch.nn.Conv2d(3, 4, 3, padding=1)(torch.tensor(X)))


def test_the_librarys_own_reshape_keeps_the_view_and_user_names_take_torchs_keywords() -> None:
    y = ds.nn.Conv2d(3, 4, 3, padding=1)(ds.tensor(X))
    p = y.permute(0, 2, 3, 1)
    assert np.shares_memory(ds.ops.reshape(p, (-1, 4)).array, y.array)  # kernels keep their views
    assert not np.shares_memory(ds.reshape(input=p, shape=(-1, 4)).array, y.array)
    assert ds.flatten(input=ds.zeros(2, 3)).shape == (6,)
    plain = ds.zeros(2, 3)
    ds.reshape(plain, (6,)).fill_(1.0)  # an ordinary tensor's reshape stays a view
    assert plain.sum().item() == 6.0


def _conv_out(lib):
    conv = lib.nn.Conv2d(3, 4, 3, padding=1)
    with lib.no_grad():
        conv.weight.copy_(lib.tensor(W))
        conv.bias.copy_(lib.tensor(B))
        return conv(lib.tensor(X))


@pytest.mark.host_only  # about sharing host memory (the strict device's numpy() copies)
@pytest.mark.parametrize(
    "hand_out",
    [
        lambda y: y.numpy(),
        lambda y: np.asarray(y),
        lambda y: y.data.numpy(),
    ],
)
def test_memory_handed_out_before_a_view_stays_shared_as_in_torch(hand_out) -> None:
    for lib in (ds, torch):
        y = _conv_out(lib)
        a = hand_out(y)
        assert a.flags.c_contiguous  # torch's array is contiguous, so the one handed out here is too
        y.view(2, -1)[:, :3].fill_(7.0)
        y.contiguous().add_(1.0)
        np.testing.assert_array_equal(a, y.numpy())
        assert (a[0, 0, 0, :3] == 8.0).all()


@pytest.mark.host_only  # about sharing host memory (the strict device's numpy() copies)
def test_a_view_handed_out_keeps_the_buffer_from_being_laid_out_anew() -> None:
    y = _conv_out(ds)
    image = y[0].numpy()  # a view of the buffer: the whole output cannot be laid out for it
    y.view(2, -1)  # then viewed through a copy (see Tensor.view), never leaving `image` behind
    y.add_(1.0)
    np.testing.assert_array_equal(image, y[0].numpy())
    assert y.is_contiguous() and y.stride() == (100, 25, 5, 1)


VIEWS = {
    "output": lambda y: y,
    "swapped": lambda y: y.transpose(0, 1),
    "channels last": lambda y: y.movedim(1, -1),
    "channel slice": lambda y: y[:, 1],
    "channel range": lambda y: y[:, 1:3],
    "image": lambda y: y[1],
    "row": lambda y: y[:, :, 2],
    "unsqueezed": lambda y: y.unsqueeze(2),
    "flattened": lambda y: y.flatten(2),
    "every other column": lambda y: y[..., ::2],
}


@pytest.mark.parametrize("name", list(VIEWS))
@pytest.mark.parametrize("conv", ["conv1d", "conv2d", "conv3d"])
def test_contiguous_copies_views_of_a_convolution_output_where_torch_copies(name: str, conv: str) -> None:
    # The output is channel-major here and contiguous in torch: a permute that is C-ordered here is
    # strided there, so contiguous() must copy it (a write into the result must not reach the output).
    dims = int(conv[-2])
    if name in ("row", "every other column") and dims == 1:
        pytest.skip("a 1-d output has no row")
    rs = np.random.RandomState(1)
    x, w = rs.randn(3, 4, *([5] * dims)).astype(np.float32), rs.randn(6, 4, *([3] * dims)).astype(np.float32)
    ours = VIEWS[name](getattr(ds.nn.functional, conv)(ds.tensor(x), ds.tensor(w)))
    theirs = VIEWS[name](getattr(torch.nn.functional, conv)(torch.tensor(x), torch.tensor(w)))
    c = ours.contiguous()
    assert c.is_contiguous() and c.view(-1).shape == (theirs.numel(),)
    if theirs.contiguous() is not theirs:
        assert c is not ours and not np.shares_memory(c.numpy(), ours.numpy())
    if name == "output":  # the output itself (a 3-d convolution's is depth-major here) as torch's
        assert ours.is_contiguous() and ours.stride() == theirs.stride()
        assert ours.view(3, -1).shape == tuple(theirs.view(3, -1).shape)


@pytest.mark.parametrize(
    "shape, head",
    [
        ((3, 4, 5, 5, 5), lambda lib, x: lib.nn.Conv3d(4, 6, 3)(x)),
        ((2, 3, 8, 8), lambda lib, x: lib.nn.AdaptiveAvgPool2d(3)(x)),
        ((2, 3, 8, 8), lambda lib, x: lib.nn.AdaptiveMaxPool2d((3, 3))(x)),
        ((2, 3, 8, 8), lambda lib, x: lib.nn.AdaptiveAvgPool2d(3)(lib.nn.Conv2d(3, 4, 1)(x))),
    ],
)
def test_a_classifiers_flatten_by_view_works_while_gradients_are_recorded(shape, head) -> None:
    # x.view(x.size(0), -1) before the classifier: torch's outputs of these layers are contiguous
    x = np.random.RandomState(2).randn(*shape).astype(np.float32)
    for lib in (ds, torch):
        lib.manual_seed(0)
        y = head(lib, lib.tensor(x, requires_grad=True))
        assert y.is_contiguous() and y.view(y.shape[0], -1).shape[1] == y[0].numel()

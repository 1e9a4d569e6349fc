"""PackedSequence as PyTorch's named tuple (data, batch_sizes, sorted_indices, unsorted_indices):
built by hand from a packed batch's data, converted, and run through RNN, LSTM and GRU, against torch
(outputs, final states and gradients in float64)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn

IDS = [[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [3, 0, 0, 0]]
LENGTHS = [3, 2, 4, 1]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _close(a, b):
    np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-12)


def test_it_is_the_named_tuple_torch_has() -> None:
    p = pack_sequence([ds.tensor([1.0, 2.0, 3.0]), ds.tensor([4.0])])
    t = TR.pack_sequence([torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0])])
    assert isinstance(p, tuple) and len(p) == len(t) == 4
    assert PackedSequence._fields == type(t)._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert data is p.data and batch_sizes is p.batch_sizes and sorted_indices is unsorted_indices is None
    _close(data, t.data)
    assert batch_sizes.tolist() == t.batch_sizes.tolist() and batch_sizes.dtype == np.int64
    q = p._replace(data=p.data * 2)
    assert isinstance(q, PackedSequence) and q.batch_sizes is p.batch_sizes
    _close(q.data, t._replace(data=t.data * 2).data)
    assert repr(p).startswith("PackedSequence(data=")


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_rebuilt_from_data_and_batch_sizes_as_in_torch(enforce_sorted: bool) -> None:
    seqs = [[1.0, 2.0], [3.0, 4.0, 5.0], [6.0]] if not enforce_sorted else [[3.0, 4.0, 5.0], [1.0, 2.0], [6.0]]
    p = pack_sequence([ds.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    t = TR.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    for ours, theirs in (
        (PackedSequence(p.data * 10, p.batch_sizes, p.sorted_indices, p.unsorted_indices),
         TR.PackedSequence(t.data * 10, t.batch_sizes, t.sorted_indices, t.unsorted_indices)),
        (PackedSequence(p.data * 10, p.batch_sizes, p.sorted_indices),  # unsorted_indices computed
         TR.PackedSequence(t.data * 10, t.batch_sizes, t.sorted_indices)),
        (PackedSequence((p.data * 10, p.batch_sizes), sorted_indices=p.sorted_indices),  # a (data, sizes) pair
         TR.PackedSequence((t.data * 10, t.batch_sizes), sorted_indices=t.sorted_indices)),
    ):  # fmt: skip
        for mine, ref in zip(ours, theirs):
            assert (mine is None) == (ref is None)
            if mine is not None:
                np.testing.assert_array_equal(_np(mine), _np(ref))
        for batch_first in (False, True):
            padded, lengths = pad_packed_sequence(ours, batch_first, padding_value=-1.0, total_length=4)
            ref_padded, ref_lengths = TR.pad_packed_sequence(theirs, batch_first, padding_value=-1.0, total_length=4)
            np.testing.assert_array_equal(_np(padded), _np(ref_padded))
            assert lengths.tolist() == ref_lengths.tolist()


def test_packed_token_ids_pad_back_with_their_integer_dtype() -> None:
    p = pack_padded_sequence(ds.tensor(IDS), LENGTHS, batch_first=True, enforce_sorted=False)
    t = TR.pack_padded_sequence(torch.tensor(IDS), LENGTHS, batch_first=True, enforce_sorted=False)
    np.testing.assert_array_equal(_np(p.data), _np(t.data))
    padded, lengths = pad_packed_sequence(PackedSequence(p.data + 1, *p[1:]), batch_first=True)
    ref, ref_lengths = TR.pad_packed_sequence(TR.PackedSequence(t.data + 1, *t[1:]), batch_first=True)
    assert padded.dtype == np.int64
    np.testing.assert_array_equal(_np(padded), _np(ref))
    assert lengths.tolist() == ref_lengths.tolist()


def test_conversions_apply_to_data_as_in_torch() -> None:
    p = pack_sequence([ds.ones(3, 2), ds.ones(1, 2)], enforce_sorted=False)
    t = TR.pack_sequence([torch.ones(3, 2), torch.ones(1, 2)], enforce_sorted=False)
    for method in ("double", "float", "half", "long", "int", "short", "char", "byte"):
        ours, theirs = getattr(p, method)(), getattr(t, method)()
        assert isinstance(ours, PackedSequence)
        assert str(ours.data.dtype) == str(theirs.data.dtype).replace("torch.", "")
        assert ours.batch_sizes.dtype == np.int64 and ours.sorted_indices.dtype == np.int64
    assert p.to(ds.float32) is p and p.float() is p  # nothing changes: itself, as torch
    host = p.cpu()
    assert host.cpu() is host and host.data.device == host.sorted_indices.device == ds.device("cpu")
    assert p.to(ds.float64).data.dtype == np.float64 and p.to("cpu", ds.float64).data.dtype == np.float64
    assert p.is_cuda is t.is_cuda is False and p.is_pinned() is t.is_pinned() is False
    assert p.pin_memory() is p


@pytest.mark.skipif(ds.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_refused_as_tensor_cuda_is() -> None:
    with pytest.raises(ds.DownslopeError, match="cuda"):
        pack_sequence([ds.ones(2)]).cuda()


@pytest.mark.host_only
def test_moving_keeps_batch_sizes_on_the_host_and_moves_the_indices() -> None:
    p = pack_sequence([ds.ones(2, 3), ds.ones(3, 3)], enforce_sorted=False)
    moved = p.to("strict")
    assert moved.data.device == moved.sorted_indices.device == moved.unsorted_indices.device == ds.device("strict")
    assert moved.batch_sizes is p.batch_sizes
    assert moved.cpu().data.device == ds.device("cpu")
    with pytest.raises(ValueError, match="batch_sizes should always be on CPU"):
        PackedSequence(p.data, p.batch_sizes.to("strict"))


def test_bad_fields_are_refused_with_what_was_expected() -> None:
    p = pack_sequence([ds.ones(3, 2), ds.ones(2, 2)])
    with pytest.raises(TypeError, match="1-D int64 CPU tensor.*got list"):
        PackedSequence(p.data, [2, 2, 1])
    with pytest.raises(TypeError, match="int32"):
        PackedSequence(p.data, p.batch_sizes.int())
    with pytest.raises(ValueError, match="add up to 4 steps, but data has 5"):
        PackedSequence(p.data, p.batch_sizes[:2])
    with pytest.raises(ValueError, match="positive and non-increasing"):
        PackedSequence(p.data, p.batch_sizes.flip(0))
    with pytest.raises(ValueError, match="sorted_indices"):
        PackedSequence(p.data, p.batch_sizes, ds.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="expected \\(data, batch_sizes"):
        PackedSequence(p.data)
    with pytest.raises(ds.DownslopeError, match=r"data of shape \(total steps, 3\), got \(5, 2\)"):
        ds.nn.GRU(3, 4)(p)


def _layers(kind: str, bidirectional: bool, num_layers: int = 1):
    theirs = getattr(torch.nn, kind)(3, 4, num_layers=num_layers, bidirectional=bidirectional).double()
    ours = getattr(ds.nn, kind)(3, 4, num_layers=num_layers, bidirectional=bidirectional).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_embedded_packed_ids_through_the_layer_match_torch(
    kind: str, bidirectional: bool, enforce_sorted: bool, with_state: bool
) -> None:
    ids, lengths = (IDS, LENGTHS) if not enforce_sorted else ([IDS[2], IDS[0], IDS[1], IDS[3]], [4, 3, 2, 1])
    weights = np.random.default_rng(0).standard_normal((10, 3))
    t_emb = torch.nn.Embedding.from_pretrained(torch.tensor(weights), freeze=False)
    d_emb = ds.nn.Embedding.from_pretrained(ds.tensor(weights, dtype=ds.float64), freeze=False)
    ours, theirs = _layers(kind, bidirectional, num_layers=2 if kind == "GRU" else 1)
    lead = (2 if kind == "GRU" else 1) * (2 if bidirectional else 1)
    state = np.random.default_rng(1).standard_normal((2, lead, 4, 4))
    t_hx = [torch.tensor(s, requires_grad=True) for s in state]
    d_hx = [ds.tensor(s, dtype=ds.float64, requires_grad=True) for s in state]

    t_p = TR.pack_padded_sequence(torch.tensor(ids), lengths, batch_first=True, enforce_sorted=enforce_sorted)
    d_p = pack_padded_sequence(ds.tensor(ids), lengths, batch_first=True, enforce_sorted=enforce_sorted)
    t_in = TR.PackedSequence(t_emb(t_p.data), t_p.batch_sizes, t_p.sorted_indices, t_p.unsorted_indices)
    d_in = PackedSequence(d_emb(d_p.data), d_p.batch_sizes, d_p.sorted_indices, d_p.unsorted_indices)
    t_args = (tuple(t_hx) if kind == "LSTM" else t_hx[0],) if with_state else ()
    d_args = (tuple(d_hx) if kind == "LSTM" else d_hx[0],) if with_state else ()
    t_out, t_h = theirs(t_in, *t_args)
    d_out, d_h = ours(d_in, *d_args)

    assert isinstance(d_out, PackedSequence)
    _close(d_out.data, t_out.data)
    assert d_out.batch_sizes.tolist() == t_out.batch_sizes.tolist()
    for mine, ref in ((d_out.sorted_indices, t_out.sorted_indices), (d_out.unsorted_indices, t_out.unsorted_indices)):
        assert (mine is None) == (ref is None)
        if mine is not None:
            assert mine.tolist() == ref.tolist()
    t_states = t_h if isinstance(t_h, tuple) else (t_h,)
    d_states = d_h if isinstance(d_h, tuple) else (d_h,)
    for mine, ref in zip(d_states, t_states):
        _close(mine, ref)

    t_pad, _ = TR.pad_packed_sequence(t_out, batch_first=True)
    d_pad, _ = pad_packed_sequence(d_out, batch_first=True)
    _close(d_pad, t_pad)
    coef = np.random.default_rng(2).standard_normal(t_pad.shape)
    ((t_pad * torch.tensor(coef)).sum() + (t_states[-1] ** 2).sum()).backward()
    ((d_pad * ds.tensor(coef, dtype=ds.float64)).sum() + (d_states[-1] ** 2).sum()).backward()
    _close(d_emb.weight.grad, t_emb.weight.grad)  # through PackedSequence(emb(p.data), ...) to the embedding
    for name, param in theirs.named_parameters():
        _close(dict(ours.named_parameters())[name].grad, param.grad)
    if with_state:
        for mine, ref in zip(d_hx, t_hx):
            if ref.grad is not None:
                _close(mine.grad, ref.grad)


@pytest.mark.parametrize("batch_first", [False, True])
def test_gradients_through_pack_and_pad_match_torch(batch_first: bool) -> None:
    x = np.random.default_rng(3).standard_normal((4, 5, 2))  # 4 sequences of up to 5 steps
    if not batch_first:
        x = x.transpose(1, 0, 2).copy()
    t_x = torch.tensor(x, requires_grad=True)
    d_x = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    lengths = [2, 5, 3, 2]
    t_p = TR.pack_padded_sequence(t_x, lengths, batch_first=batch_first, enforce_sorted=False)
    d_p = pack_padded_sequence(d_x, lengths, batch_first=batch_first, enforce_sorted=False)
    _close(d_p.data, t_p.data)
    t_pad, _ = TR.pad_packed_sequence(TR.PackedSequence(t_p.data.sin(), *t_p[1:]), batch_first, 0.5, 6)
    d_pad, _ = pad_packed_sequence(PackedSequence(d_p.data.sin(), *d_p[1:]), batch_first, 0.5, 6)
    _close(d_pad, t_pad)
    coef = np.random.default_rng(4).standard_normal(t_pad.shape)
    (t_pad * torch.tensor(coef)).sum().backward()
    (d_pad * ds.tensor(coef, dtype=ds.float64)).sum().backward()
    _close(d_x.grad, t_x.grad)

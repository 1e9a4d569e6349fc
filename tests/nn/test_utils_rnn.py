"""nn.utils.rnn (padding and packing variable-length sequences) and the recurrent layers on packed
input, against torch: outputs, final states and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)  # PyTorch's layers initialize at random: the same weights on every run


def _seqs(lengths, features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, features)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_sequence_matches_torch(batch_first: bool) -> None:
    seqs = _seqs([4, 1, 3])
    ours = pad_sequence([ds.tensor(s) for s in seqs], batch_first=batch_first, padding_value=-1.0)
    theirs = TR.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first, padding_value=-1.0)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    left = pad_sequence([ds.tensor(s) for s in seqs], batch_first=True, padding_side="left")
    np.testing.assert_array_equal(left.numpy(), TR.pad_sequence([torch.tensor(s) for s in seqs], True, 0.0, "left"))
    back = unpad_sequence(ours, [4, 1, 3], batch_first=batch_first)
    assert [b.shape for b in back] == [(4, 3), (1, 3), (3, 3)]


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [("GRU", {}), ("LSTM", {"num_layers": 2}), ("RNN", {"bidirectional": True}), ("LSTM", {"bidirectional": True})],
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnns_on_packed_sequences_match_torch(kind: str, kwargs: dict, batch_first: bool) -> None:
    lengths = [2, 5, 3, 1]  # unsorted: enforce_sorted=False
    seqs = _seqs(lengths)
    theirs = getattr(torch.nn, kind)(3, 4, batch_first=batch_first, **kwargs)
    ours = getattr(nn, kind)(3, 4, batch_first=batch_first, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})

    t_in = [torch.tensor(s, requires_grad=True) for s in seqs]
    d_in = [ds.tensor(s, requires_grad=True) for s in seqs]
    t_pad = TR.pad_sequence(t_in, batch_first=batch_first)
    d_pad = pad_sequence(d_in, batch_first=batch_first)
    t_out, t_h = theirs(TR.pack_padded_sequence(t_pad, lengths, batch_first=batch_first, enforce_sorted=False))
    d_out, d_h = ours(pack_padded_sequence(d_pad, lengths, batch_first=batch_first, enforce_sorted=False))
    assert isinstance(d_out, PackedSequence)
    t_unp, t_len = TR.pad_packed_sequence(t_out, batch_first=batch_first)
    d_unp, d_len = pad_packed_sequence(d_out, batch_first=batch_first)
    np.testing.assert_allclose(d_unp.detach().numpy(), t_unp.detach().numpy(), atol=1e-6)
    assert d_len.tolist() == t_len.tolist()
    t_states = t_h if isinstance(t_h, tuple) else (t_h,)
    d_states = d_h if isinstance(d_h, tuple) else (d_h,)
    for d, t in zip(d_states, t_states):
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), atol=1e-6)
    ((t_unp**2).sum() + (t_states[0] ** 3).sum()).backward()
    ((d_unp**2).sum() + (d_states[0] ** 3).sum()).backward()
    for d, t in zip(d_in, t_in):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), atol=1e-5)


def test_packed_layout_and_errors_match_torch() -> None:
    seqs = _seqs([3, 2, 2])
    ours = pack_sequence([ds.tensor(s) for s in seqs])
    theirs = TR.pack_sequence([torch.tensor(s) for s in seqs])
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    assert ours.batch_sizes.tolist() == theirs.batch_sizes.tolist()
    padded, _ = pad_packed_sequence(ours, total_length=5, padding_value=9.0)
    t_padded, _ = TR.pad_packed_sequence(theirs, total_length=5, padding_value=9.0)
    np.testing.assert_array_equal(padded.numpy(), t_padded.numpy())
    with pytest.raises(ValueError, match="not sorted in decreasing order"):
        pack_padded_sequence(ds.zeros(3, 2, 1), [1, 3])


def test_unpack_sequence_inverts_pack_sequence_like_torch() -> None:
    seqs = _seqs([4, 2, 3])
    ours = [t.numpy() for t in unpack_sequence(pack_sequence([ds.tensor(s) for s in seqs], enforce_sorted=False))]
    theirs = [
        t.numpy() for t in TR.unpack_sequence(TR.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False))
    ]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_sequences_of_plain_values_and_the_sort_order_match_torch() -> None:
    torch = pytest.importorskip("torch")
    import torch.nn.utils.rnn as trnn

    values = [[1.0, 2.0], [1.0, 2.0, 3.0], [5.0]]
    for enforce_sorted, rows in ((True, [values[1]]), (False, values)):
        packed = pack_sequence([ds.tensor(v) for v in rows], enforce_sorted=enforce_sorted)
        ref = trnn.pack_sequence([torch.tensor(v) for v in rows], enforce_sorted=enforce_sorted)
        padded, lengths = pad_packed_sequence(packed)
        ref_padded, ref_lengths = trnn.pad_packed_sequence(ref)
        np.testing.assert_array_equal(padded.numpy(), ref_padded.numpy())  # (L, N): no feature dim
        np.testing.assert_array_equal(lengths.numpy(), ref_lengths.numpy())
        for mine, theirs in (
            (packed.sorted_indices, ref.sorted_indices),
            (packed.unsorted_indices, ref.unsorted_indices),
        ):
            assert (mine is None) == (theirs is None)
            if mine is not None:
                np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    out, _ = ds.nn.GRU(1, 2)(pack_sequence([ds.ones(2, 1), ds.ones(3, 1)], enforce_sorted=False))
    assert out.sorted_indices.tolist() == [1, 0]  # the layer's packed output keeps the batch's order record


@pytest.mark.parametrize("perm", [[2, 0, 1], [0], [3, 1, 0, 2, 4], []])
def test_invert_permutation_matches_torch(perm: list[int]) -> None:
    from downslope.nn.utils.rnn import invert_permutation

    theirs = torch.nn.utils.rnn.invert_permutation(torch.tensor(perm, dtype=torch.int64))
    ours = invert_permutation(ds.tensor(perm, dtype=ds.int64))
    assert ours.tolist() == theirs.tolist() and ours.dtype == ds.int64
    assert invert_permutation(None) is None and torch.nn.utils.rnn.invert_permutation(None) is None
    with pytest.raises(TypeError, match="invert_permutation: expected a 1-D tensor of integer indices"):
        invert_permutation(ds.ones(3))

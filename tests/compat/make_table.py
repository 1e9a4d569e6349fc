"""Generate docs/pytorch_compat.md: every public name of six PyTorch namespaces, marked supported,
differs (how) or not supported (why) in downslope.

Run ``PYTHONPATH=src python tests/compat/make_table.py`` after adding or changing a PyTorch name.
The names come from the installed PyTorch at generation time (``torch.__all__``, the public
attributes of ``torch.Tensor``, ``torch.nn``, ``torch.nn.functional``, ``torch.optim`` and
``torch.utils.data.__all__``); the verdicts come from downslope itself (does it have the name?)
and from the tables below, maintained by hand: ``DIFFERS`` (a name downslope has, and how it
behaves differently) and ``REASONS`` (why a family of names is absent; the first matching pattern
wins, and a name no pattern matches is "not implemented yet"). Names in downslope's own table of
names left out on purpose (``downslope._unsupported``, whose errors give the reason) take its
reason, ahead of the patterns.

tests/compat/test_table.py checks that every name the committed table marks supported or differs
exists in downslope (without PyTorch), and that the committed table equals this script's output.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from downslope import _unsupported

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "pytorch_compat.md"

# PyTorch namespace -> the downslope object that stands in for it.
NAMESPACES = {
    "torch": "downslope",
    "torch.Tensor": "downslope.Tensor",
    "torch.nn": "downslope.nn",
    "torch.nn.Module": "downslope.nn.Module",
    "torch.nn.functional": "downslope.nn.functional",
    "torch.nn.init": "downslope.nn.init",
    "torch.nn.utils": "downslope.nn.utils",
    "torch.nn.utils.rnn": "downslope.nn.utils.rnn",
    "torch.optim": "downslope.optim",
    "torch.optim.lr_scheduler": "downslope.optim.lr_scheduler",
    "torch.utils.data": "downslope.utils.data",
    "torch.linalg": "downslope.linalg",
    "torch.autograd": "downslope.autograd",
    "torch.autograd.functional": "downslope.autograd.functional",
    "torch.autograd.graph": "downslope.autograd.graph",
    "torch.autograd.profiler": "downslope.autograd.profiler",
    "torch.profiler": "downslope.profiler",
    "torch.quasirandom": "downslope.quasirandom",
}

_SEEDED_ORDER = (
    "the order drawn for a seed differs from PyTorch's (downslope's generator: repeatable within downslope, "
    "and a fresh order every pass, as PyTorch's)"
)
_RANDOM = "drawn from downslope's one NumPy generator (ds.manual_seed): same distribution, other numbers than PyTorch"

# the second derivative where the 2-norm's first derivative is defined by convention (an all-zero vector)
_ZERO_SECOND = "the second derivative at an exactly zero vector is 0 (PyTorch: NaN)"
DIFFERS: dict[str, str] = {
    "torch.autograd.graph.allow_mutation_on_saved_tensors": "each value saved for backward inside it is copied "
    "when it is saved (PyTorch copies it only when it is modified): the same gradients, more memory",
    "torch.nn.Module.compile": "accepted with any arguments and changes nothing (there is no compiler)",
    "torch.get_autocast_dtype": "the dtype autocast names (bfloat16 on the CPU); blocks compute in float32",
    "torch.save": "a zip of .npy arrays + JSON, never pickle: tensors/arrays, numbers, strings, lists, dicts; "
    "a whole Module is refused (save its state_dict()); the same tensor saved twice (tied weights) is stored once "
    "and comes back shared, as in PyTorch (views of one storage are stored separately); a state_dict's _metadata "
    "(module versions) is kept; a missing directory raises (CheckpointFileNotFoundError: a RuntimeError as "
    "PyTorch's, and a FileNotFoundError)",
    "torch.load": "never unpickles (always what PyTorch calls weights_only); tensors saved come back tensors, "
    "arrays arrays; map_location names the CPU or a GPU; a missing file raises a FileNotFoundError "
    "(CheckpointFileNotFoundError), as PyTorch's",
    "torch.manual_seed": "seeds downslope's NumPy generator: the numbers differ from PyTorch's; a float seed is "
    "refused (PyTorch truncates it)",
    "torch.set_printoptions": "NumPy lays the numbers out (1. where torch prints 1.0000); linewidth is NumPy's 75 "
    "until set (torch's 80)",
    "torch.ldexp": "integer exponents scale exactly in the input's float dtype; the gradient for a negative or "
    "large integer exponent is 2^exponent (torch takes 2^exponent in integers: 0 for -1 or 600)",
    "torch.quasirandom.SobolEngine": "unscrambled points equal PyTorch's bit for bit (Joe & Kuo's 21201 "
    "dimensions); scrambled points use PyTorch's algorithm on downslope's generator (other points for a seed); "
    "draw(0) on a fresh engine gives an empty tensor; float32/float64 only",
    "torch.sparse_coo_tensor": "returns downslope.sparse.SparseCOOTensor, its own type (isinstance(S, ds.Tensor) "
    "is False); COO only: products with dense or sparse operands on either side, dense +/- sparse (dense; also "
    "add/sub and +=, -=, add_, sub_ in place), dense * sparse in place (mul_, *=: dense), "
    "sparse * dense (sparse), to_dense, coalesce, t/transpose, * and / by a number, neg, pow, sparse + sparse, "
    "sum/sparse.sum, sparse.softmax, sparse.log_softmax, dtype casts, detach/clone; every other op (relu, cat, S[0], S + dense, "
    "which torch also refuses) raises naming the op; a leaf's .grad is sparse for torch.mm/matmul too (torch: "
    "dense)",
    "torch.Tensor.to_sparse": "COO only (layout=sparse_coo); no blocksize or dense_dim",
    "torch.spmm": "sparse or dense operands on either side, as torch.sparse.mm",
    "torch.polygamma": "+inf at the negative integers for n = 1 (torch's trigamma gives large finite values there); "
    "0 at +inf and NaN at -inf for n >= 2 (torch: NaN and +-inf)",
    "torch.digamma": "the gradient at 0 and the negative integers is +inf (torch's trigamma gives large finite "
    "values there, from the rounding of its reflection formula)",
    "torch.mode": "a NaN equals nothing, so each NaN counts once (torch's result for a slice holding a NaN depends "
    "on where the NaN stands: it may be NaN, or not the most frequent value)",
    "torch.sinc": "the second derivative at 0 is -pi^2/3 (torch's is NaN), from a Taylor series near 0",
    "torch.seed": "seeds downslope's NumPy generator",
    "torch.nn.functional.pad": "circular padding that wraps more than once around what negative pads leave is "
    "refused (torch reads uninitialised memory there)",
    "torch.nn.functional.interpolate": "mode='nearest': the forward picks torch's source pixels exactly, and the "
    "gradient is that forward's exact derivative; torch's own nearest backward can disagree with its forward "
    "(its 1-D/3-D backward takes the 2-D kernel's same-size and doubled-size shortcuts, so a scale_factor such "
    "as 2.19 sends gradient to pixels the forward never read); likewise with a scale_factor that leaves a "
    "size unchanged, torch's antialiased backward resamples what its forward copied and its bicubic backward "
    "copies what its forward resampled, where downslope's gradients are its forwards' derivatives; "
    "antialias=True to an output width of 1 resamples every row (torch repeats the first); uint8 images: "
    "'bilinear' and 'bicubic' (antialiased or not) give torch's bytes exactly, and 'linear'/'trilinear' or "
    "other integer dtypes raise DTypeError (torch: "
    "NotImplementedError)",
    "torch.get_rng_state": "a uint8 tensor of 49 bytes (downslope's PCG64 state and seed; PyTorch's has 5056)",
    "torch.set_rng_state": "takes get_rng_state()'s 49-byte tensor (or the dict of older versions); a PyTorch "
    "state is refused",
    "torch.utils.data.get_worker_info": "None in the main process; while a DataLoader with num_workers>0 reads "
    "its dataset (in this process), the WorkerInfo of the emulated worker reading it (id 0 to num_workers - 1), so "
    "an IterableDataset sharded by worker id yields each sample once, as in PyTorch",
    "torch.vmap": "runs the function once on the whole batch with batching rules, as torch's; an op without a "
    "rule of its own runs per element and is restacked, so the function still runs once; a function using "
    ".item(), data-dependent control flow, in-place writes or a custom autograd.Function runs once per "
    "element instead (the same results; its Python side effects before that point happen twice); BatchNorm "
    "in training with running stats raises torch's error",
    "torch.randn": _RANDOM,
    "torch.rand": _RANDOM,
    "torch.randint": _RANDOM,
    "torch.randperm": _RANDOM,
    "torch.randn_like": _RANDOM,
    "torch.rand_like": _RANDOM,
    "torch.randint_like": _RANDOM,
    "torch.normal": _RANDOM,
    "torch.bernoulli": _RANDOM,
    "torch.multinomial": _RANDOM,
    "torch.Generator": "wraps a numpy.random.Generator",
    "torch.device": "only the CPU can be used (other device types can be named, not moved to); "
    "device('cpu') == 'cpu' is True here",
    "torch.empty": "filled with zeros (PyTorch leaves the memory uninitialized)",
    "torch.empty_like": "filled with zeros (PyTorch leaves the memory uninitialized)",
    "torch.Tensor.new_empty": "filled with zeros (PyTorch leaves the memory uninitialized)",
    "torch.Tensor.unfold": "a view sharing the tensor's memory, as torch's; overlapping windows (step < size) are read-only: an in-place op on them is refused (torch writes them in an unspecified order)",
    "torch.unravel_index": "an index outside [-prod(shape), prod(shape)) is an error (PyTorch wraps it silently)",
    "torch.Tensor": "Tensor(n) and Tensor(rows, cols) are filled with zeros (PyTorch leaves the memory "
    "uninitialized); a 0-d NumPy array is data (PyTorch reads it as a size)",
    "torch.Tensor.dtype": "a NumPy dtype (ds.float32 == numpy.float32)",
    "torch.dtype": "NumPy's dtype class",
    "torch.finfo": "numpy.finfo",
    "torch.iinfo": "numpy.iinfo",
    "torch.initial_seed": "the seed of downslope's NumPy generator; inside a DataLoader worker (worker_init_fn, the "
    "dataset's reads) the worker's seed, get_worker_info().seed, as in PyTorch",
    "torch.cuda": "answered through CuPy (pip install downslope[cuda]); is_available() is False without it",
    "torch.Tensor.cuda": "moves to a GPU through CuPy (downslope[cuda]); a one-line error without CuPy and a GPU",
    "torch.Tensor.normal_": _RANDOM,
    "torch.Tensor.uniform_": _RANDOM,
    "torch.Tensor.bernoulli_": _RANDOM,
    "torch.Tensor.random_": _RANDOM,
    "torch.Tensor.exponential_": _RANDOM,
    "torch.nn.Module": "to()/cuda() move in place (GPU through CuPy); a dtype change after an optimizer was built "
    "over the parameters is refused",
    "torch.nn.Module.to": "moves (CPU, or a GPU through CuPy) and casts parameters and buffers in place",
    "torch.nn.Module.bfloat16": "refused with the reason (NumPy has no bfloat16); bfloat16 weights load widened "
    "exactly to float32",
    "torch.Tensor.bfloat16": "refused with the reason (NumPy has no bfloat16 dtype); use float32 or float16",
    "torch.nn.functional.scaled_dot_product_attention": "attn_mask with is_causal=True applies both (mask AND "
    "causal) on every path; PyTorch does so on its fused CPU kernel and refuses the pair on its other paths "
    "(a mask that requires grad, dropout, 3-D inputs)",
    "torch.nn.Module.cuda": "moves in place to a GPU through CuPy (downslope[cuda]); a one-line error without one",
    "torch.nn.Module.share_memory": "returns the module unchanged: its arrays belong to this one process, where "
    "DataLoader workers also read, so there is no shared memory to move them to",
    "torch.nn.Module.register_backward_hook": "PyTorch's deprecated non-full hook; here it is the full backward hook",
    "torch.nn.utils.skip_init": "the module is initialized as usual (cheap on the CPU)",
    "torch.nn.utils.spectral_norm": "u and v start from downslope's random generator (load a state_dict to match)",
    "torch.nn.utils.parametrizations": "spectral_norm's u, v and orthogonal's completion of a non-square base "
    "come from downslope's random generator (load a state_dict to match); weight_norm does not convert old "
    "weight_g/weight_v state_dict keys",
    "torch.nn.utils.parametrize": "inside the module's own forward each parametrized tensor is computed once "
    "(PyTorch recomputes it on every access); assigning an nn.Parameter to a parametrized name raises TypeError "
    "(KeyError in PyTorch)",
    "torch.nn.PReLU": "the slope count is kept as num_slopes (num_parameters is Module's weight-count method)",
    "torch.nn.Dropout": _RANDOM,
    "torch.nn.Dropout1d": _RANDOM,
    "torch.nn.Dropout2d": _RANDOM,
    "torch.nn.Dropout3d": _RANDOM,
    "torch.nn.functional.dropout": _RANDOM,
    "torch.nn.functional.dropout1d": _RANDOM,
    "torch.nn.functional.dropout2d": _RANDOM,
    "torch.nn.functional.dropout3d": _RANDOM,
    "torch.utils.data.DataLoader": "one process (pin_memory accepted and ignored; num_workers>0 emulates PyTorch's workers in this "
    "process: each worker's get_worker_info, worker_init_fn and seed, batches taken round-robin as "
    "PyTorch's, no speed-up; timeout bounds each batch's read); PyTorch's "
    "positional order, with downslope's seed= and device= keyword-only; batch_size='full' is one full batch "
    "(None turns batching off, as in PyTorch); shuffle=True orders differ from PyTorch's for the same seed "
    "(downslope's generator: repeatable within downslope; the orders without shuffling are PyTorch's); "
    "generator= takes a Generator or a numpy.random.Generator; batches of tuple samples are tuples (PyTorch: lists)",
    "torch.utils.data.random_split": "the order drawn for a seed differs from PyTorch's (downslope's generator: "
    "repeatable within downslope); the split sizes are PyTorch's",
    "torch.utils.data.RandomSampler": _SEEDED_ORDER,
    "torch.utils.data.SubsetRandomSampler": _SEEDED_ORDER,
    "torch.utils.data.WeightedRandomSampler": "the indices drawn for a seed differ from PyTorch's (downslope's "
    "generator; the same distribution, repeatable within downslope)",
    "torch.utils.data.TensorDataset": "NumPy arrays follow the library's dtype policy (floating data float32, "
    "uint16/uint32/uint64 int64); tensors keep their dtype and device (a dataset of CUDA tensors gives CUDA "
    "batches, gathered on the device), and a tensor that requires grad gives samples and batches in its graph",
    "torch.autocast": "accepts PyTorch's arguments; the block computes in float32 (no float16/bfloat16 kernels), "
    "with a warning once; the GradScaler of downslope.amp is PyTorch's loss scaling",
    "torch.is_autocast_enabled": "whether an enabled autocast block is open (it computes in float32 all the same)",
    "torch.set_float32_matmul_precision": "kept (get_float32_matmul_precision reads it) and changes nothing: "
    "float32 products are computed in float32",
    "torch.get_float32_matmul_precision": "what set_float32_matmul_precision kept ('highest' by default)",
    "torch.Tensor.pin_memory": "returns the tensor itself: CuPy copies from ordinary host memory",
    "torch.Tensor.is_pinned": "always False (see pin_memory)",
    "torch.bfloat16": "a name only (autocast accepts it): NumPy has no bfloat16, so no tensor holds it",
    "torch.utils.data.default_collate": "tensors keep their dtype, as in PyTorch (float64, complex128 stay); NumPy "
    "floating arrays and scalars and Python floats become float32 (float16 kept) and NumPy uint16/uint32/uint64 "
    "int64 (the library's dtype policy; PyTorch keeps float64 and the unsigned dtypes); int8-int64, uint8 and "
    "bool arrays keep their dtype as in PyTorch; strings (NumPy's str_/bytes_ too) come back as a list, as in "
    "PyTorch; device tensors are stacked on their device (mixed devices refused, as torch.stack)",
    "torch.Tensor.grad_fn": "a Node with PyTorch's name(), next_functions, hooks and metadata; an op downslope "
    "builds from others shows its last op's node (binary_cross_entropy_with_logits: MeanBackward0), a Python "
    "number operand has no (None, 0) edge, and calling a node is not supported",
    "torch.Tensor.view": "of a convolution's output (channel-major in memory here) that another live tensor "
    "shares (a detach(), a slice), or of a view of one (an image y[0], a channel slice): viewed through a "
    "copy, so a write through it reaches neither (torch refuses a channel slice); reshape, flatten and "
    "contiguous likewise",
    "torch.Tensor.stride": "a convolution's output and what the layers after it compute report a contiguous "
    "tensor's strides (as PyTorch's); a view taken of them reports downslope's channel-major memory",
    "torch.optim.lr_scheduler.ReduceLROnPlateau": "threshold_mode='rel' takes the threshold of abs(best): in min "
    "mode a metric improves when below best - threshold * abs(best), where PyTorch's best * (1 - threshold) counts "
    "a worse negative metric as improving (threshold=0.1, best=-1: PyTorch takes -0.95 as an improvement, downslope "
    "needs below -1.1), so for a log-likelihood or ELBO PyTorch's rate may never drop (for positive "
    "metrics the two agree); a NaN metric counts as a bad epoch, as in PyTorch, with a RuntimeWarning",
    "torch.nn.LSTM": "proj_size runs step by step",
    "torch.optim.Optimizer": "differentiable=True is refused (the step is not recorded); state_dict()['state'] "
    "holds copies (PyTorch's holds the live state tensors, so a dict kept across steps follows training there: "
    "copy.deepcopy it in PyTorch, keep it as it is here) and carries downslope's own keys (optimizer, state_layout, "
    "counts, options) after PyTorch's two; a parameter removed from param_groups leaves opt.state (PyTorch keeps "
    "its entry); a parameter given another shape or dtype through .data after the optimizer was built is refused "
    "at the next step with a StateError (PyTorch steps a reshaped one with SGD without momentum, and with any "
    "optimizer before its first step): build a new optimizer over the grown parameters",
    "torch.optim.SparseAdam": "takes downslope's gradients (PyTorch's needs sparse ones): an nn.Embedding(sparse=True) "
    "gradient still held as rows updates exactly the rows looked up; a dense gradient (one read as a tensor, or "
    "with a dense part) updates the rows nn.Embedding(sparse=True) looked up, and any row with a non-zero gradient",
    "torch.nn.functional.fractional_max_pool2d": "same distribution, other numbers: the windows' random offsets come "
    "from downslope's generator; with _random_samples given, outputs and indices are PyTorch's",
    "torch.nn.functional.fractional_max_pool3d": "same distribution, other numbers (see fractional_max_pool2d)",
    "torch.nn.functional.fractional_max_pool2d_with_indices": "same distribution, other numbers (see fractional_max_pool2d)",
    "torch.nn.functional.fractional_max_pool3d_with_indices": "same distribution, other numbers (see fractional_max_pool2d)",
    "torch.nn.FractionalMaxPool2d": "same distribution, other numbers (see F.fractional_max_pool2d)",
    "torch.nn.FractionalMaxPool3d": "same distribution, other numbers (see F.fractional_max_pool2d)",
    "torch.nn.CrossMapLRN2d": "the same forward; the gradient is the exact derivative of that forward, where "
    "PyTorch's hand-written backward assumes a centred window its forward does not use (and fails for size=1)",
    "torch.nn.functional.multi_head_attention_forward": "static_k and static_v are refused",
    "torch.autograd.gradcheck": "floating inputs are checked as float64 copies, so float32 inputs pass where "
    "PyTorch warns and usually fails (their finite differences are too coarse); PyTorch's other checks run "
    "(grad_output scaling, undefined output gradients, reentrancy, batched and forward-mode gradients), except "
    "that all output gradients undefined at once run as zeros; masked= and check_batched_forward_grad= have "
    "no effect",
    "torch.gradcheck": "floating inputs are checked as float64 copies (see torch.autograd.gradcheck)",
    "torch.utils.data.DistributedSampler": "downslope.distributed's sampler: torch's indices and attributes "
    "(num_samples per rank, total_size) without shuffling; shuffle=True permutes with NumPy seeded by (seed, "
    "epoch), so the order differs from torch.randperm's; drop_last=True with fewer samples than replicas "
    "is refused (torch gives empty ranks)",
    "torch.linalg.eig": "complex outputs with PyTorch's gradient (linalg_eig_backward); create_graph=True is "
    "refused; the eigenvalues' order and the eigenvectors' phases are LAPACK's (PyTorch promises neither)",
    "torch.linalg.eigvals": "complex, with PyTorch's gradient; create_graph=True is refused; the order is LAPACK's",
    "torch.linalg.eigh": "complex Hermitian matrices included (real eigenvalues); the eigenvectors' signs (phases) "
    "come from LAPACK via NumPy and may differ from PyTorch's: eigenvalues and sign-free uses (V diag(w) V^H, "
    "projections) agree; double backward of a complex eigh is refused",
    "torch.linalg.svd": "singular vectors' signs (phases) come from LAPACK via NumPy and may differ from PyTorch's "
    "(u_i and v_i flip together): S, U diag(S) Vh and other sign-free results agree, and gradients of "
    "sign-dependent losses (U.sum()) differ; double backward of a complex svd is refused",
    "torch.svd": "singular vectors' signs come from LAPACK via NumPy and may differ from PyTorch's (see "
    "torch.linalg.svd)",
    "torch.svd_lowrank": "the random test matrix comes from downslope's generator, so the factors differ from "
    "PyTorch's for a seed (the same subspaces; with q >= rank the singular values are linalg.svd's); vector signs "
    "come from LAPACK via NumPy",
    "torch.pca_lowrank": "the random test matrix comes from downslope's generator, so the factors differ from "
    "PyTorch's for a seed (the same subspaces; with q >= rank the singular values are linalg.svd's); vector signs "
    "come from LAPACK via NumPy",
    "torch.linalg.cholesky_ex": "a matrix that fails gets a NaN factor (PyTorch: the partial factor)",
    "torch.linalg.det": "the gradient at an exactly singular matrix is the cofactor matrix (PyTorch's SVD formula, "
    "which it uses under create_graph; its plain backward gives zeros there)",
    "torch.view_as_complex": "copies when the (real, imaginary) pairs are not adjacent in memory (torch refuses)",
    "torch.conj": "conjugates at once: no lazy conjugate bit (is_conj() is False)",
    "torch.Tensor.conj": "conjugates at once: no lazy conjugate bit (is_conj() is False)",
    "torch.linalg.vector_norm": _ZERO_SECOND,
    "torch.linalg.norm": _ZERO_SECOND,
    "torch.norm": _ZERO_SECOND,
    "torch.Tensor.norm": _ZERO_SECOND,
    "torch.nn.functional.normalize": _ZERO_SECOND,
    "torch.nn.functional.cosine_similarity": _ZERO_SECOND,
    "torch.det": "the gradient at an exactly singular matrix is the cofactor matrix (see torch.linalg.det)",
    "torch.Tensor.det": "the gradient at an exactly singular matrix is the cofactor matrix (see torch.linalg.det)",
    "torch.addr": "alpha=0 drops the product (a NaN or inf in vec1/vec2 does not propagate), as addmm does; "
    "PyTorch's CPU addr (and baddbmm at small sizes) propagates it",
    "torch.baddbmm": "alpha=0 drops the product at every size (PyTorch's CPU kernel does for large batches only)",
    "torch.linalg.lu_factor": "pivot=False also works on the CPU (PyTorch: CUDA only)",
    "torch.tensor": "floating data becomes the default dtype (float32) unless dtype= is given, float64 NumPy "
    "arrays included (float16 arrays stay float16, as in PyTorch); integer arrays and tensors keep "
    "int8/int16/int32/int64/uint8 as in PyTorch, while uint16/uint32/uint64 arrays become int64 (downslope has "
    "no such dtypes); a PyTorch tensor is such data too, while a downslope tensor keeps its dtype as in PyTorch",
    "torch.as_tensor": "floating data becomes the default dtype (float32) unless dtype= is given, float64 NumPy "
    "arrays included (a copy); float16 and int8/int16/int32/int64/uint8 arrays keep their dtype and are shared, "
    "uint16/uint32/uint64 arrays become an int64 copy",
    "torch.asarray": "as ds.as_tensor: floating NumPy data becomes float32 (float16 kept) and uint16/uint32/uint64 "
    "data int64 unless dtype= is given (PyTorch keeps the array's dtype), so copy=False refuses a float64 array "
    "without dtype=ds.float64",
    "torch.compile": "returns PyTorch's OptimizedModule wrapper (the model as _orig_mod, state_dict keys "
    "prefixed _orig_mod.) or a wrapped function, but nothing is compiled (the kernels are NumPy's, oneDNN's and "
    "numba's); its argument checks are torch's (options= names and value types against torch 2.13's inductor "
    "config for the default backend, mode with options, dynamic a bool or None)",
    "torch.OutOfMemoryError": "Python's MemoryError (what NumPy and CuPy raise when an allocation fails), "
    "not a RuntimeError",
    "torch.use_deterministic_algorithms": "the setting is kept and changes nothing: downslope's CPU ops are "
    "deterministic for a fixed thread count; on CUDA, atomic scatter-adds are not refused (a warning says so)",
    "torch.set_default_device": "'cpu', 'cuda' (through CuPy) or None; device types downslope cannot compute on "
    "(meta, mps...) are refused with a message",
    "torch.nn.DataParallel": "a pass-through (what PyTorch's is without GPUs): with CUDA the batch is not split "
    "over several GPUs",
    "torch.nn.parallel": "DataParallel (a pass-through on the CPU); DistributedDataParallel over "
    "downslope.distributed's MPI process group (mpiexec -n W): PyTorch's constructor checks and broadcasts, buffer "
    "broadcasts before forward, gradients averaged at the end of backward, no_sync, find_unused_parameters; CPU "
    "only (device_ids=[local_rank] accepted), join() and register_comm_hook refused",
    "torch.rrelu": "while training, " + _RANDOM + "; generator= is refused",
    "torch.rrelu_": "while training, " + _RANDOM + "; generator= is refused",
    "torch.nn.UninitializedParameter": "an optimizer built over one (before the lazy module's first forward) makes "
    "its buffers at its first step after that forward, as PyTorch's steps it; loading optimizer state for a "
    "parameter still uninitialized raises (PyTorch stores it)",
}
for _name in ("dropout", "dropout_", "alpha_dropout", "alpha_dropout_", "feature_dropout", "feature_dropout_",
              "feature_alpha_dropout", "feature_alpha_dropout_"):  # fmt: skip
    DIFFERS[f"torch.{_name}"] = _RANDOM
for _name in ("torch.poisson", "torch.binomial", "torch.Tensor.bernoulli"):
    DIFFERS[_name] = _RANDOM
DIFFERS["torch.nn.TransformerEncoder"] = (
    "no nested-tensor fast path: in eval mode under no_grad with src_key_padding_mask, padded positions hold what "
    "the layers compute there (torch's fast path returns 0 there, and NaN for a fully padded sequence)"
)
DIFFERS["torch.nn.MultiheadAttention"] = (
    "a query whose keys are all masked gets 0 (a safe softmax) where need_weights=False, as torch's training path; "
    "torch's eval/no_grad fast path gives NaN there (with need_weights=True both give NaN)"
)
DIFFERS["torch.as_strided"] = DIFFERS["torch.Tensor.as_strided"] = (
    "reads a contiguous input's elements in row-major order, as torch reads a contiguous tensor: a non-contiguous "
    "input is refused (torch reads the storage under it), the view reads only the input's own elements "
    "(storage_offset counts from its first one), and a view whose elements overlap is read-only"
)
DIFFERS["torch.Tensor.resize_"] = (
    "growing a tensor past memory that another tensor shares (a view past its base's end, a base with live views, "
    "a detach() alias) is refused (torch grows the storage both see); added elements are zeros (torch's: "
    "uninitialized)"
)
DIFFERS["torch.detach_copy"] = "the copy does not require grad (torch's result claims to, then fails in backward)"
DIFFERS["torch.Tensor.new"] = (
    "a tuple of ints is a size (shapes are tuples here), where torch reads a plain tuple as data; sizes give zeros "
    "(torch leaves them uninitialised)"
)
for _name in ("memory_format", "contiguous_format", "preserve_format", "channels_last", "channels_last_3d"):
    DIFFERS[f"torch.{_name}"] = "accepted wherever torch takes memory_format= and ignored: arrays stay row-major"
DIFFERS["torch.Size"] = (
    "a tuple subclass with numel() as torch's (slices, + and * keep the type; equal to and hashed as the tuple); "
    "tensor.shape and tensor.size() return one, as torch's (so ds.Tensor(x.shape) and ds.BoolTensor(x.size()) read "
    "it as a shape); Distribution.batch_shape/event_shape/_extended_shape() and Transform.forward_shape/inverse_shape "
    "return Size, as torch's; repr downslope.Size([...]); the library's messages print shapes as tuples, (2, 3)"
)
for _name in ("squeeze_", "unsqueeze_", "t_", "transpose_", "swapdims_", "swapaxes_"):
    DIFFERS[f"torch.Tensor.{_name}"] = (
        "refused on a view of a tensor that requires grad (torch supports it): use the out-of-place form there"
    )
_TIES = (
    "with sorted=True tied values come in torch's CPU order (its C++ library's selection and sort, as torch's "
    "Linux build); with sorted=False they come sorted too, ties in index order, where torch's order is its "
    "selection's own: the indices (and the gradients) of tied values may then differ from torch's; the values agree"
)
DIFFERS["torch.topk"] = DIFFERS["torch.Tensor.topk"] = _TIES
_UNSTABLE_TIES = (
    "an ascending sort's order among tied values is NumPy's unspecified one (not index order), so the indices "
    "(and the gradients) of tied values may differ from torch's; the values agree"
)
DIFFERS["torch.msort"] = DIFFERS["torch.Tensor.msort"] = _UNSTABLE_TIES
for _name in ("sort", "argsort"):
    DIFFERS[f"torch.{_name}"] = DIFFERS[f"torch.Tensor.{_name}"] = (
        "with stable=False (the default) " + _UNSTABLE_TIES + "; descending=True gives torch's CPU order among tied "
        "values (index order up to 16 values, the order of its C++ library's sort past that; index order on devices, "
        "and without numba past 65536 elements in rows with ties); stable=True gives index order; both match torch"
    )
for _name in ("torch.nn.functional.ctc_loss", "torch.nn.CTCLoss", "torch.ctc_loss"):
    DIFFERS[_name] = (
        "a target label equal to blank or outside [0, C) raises an ArgumentError (torch computes a meaningless "
        "loss); where a log-probability is -inf the gradient is 0 (torch's is NaN)"
    )
DIFFERS["torch.empty_strided"] = (
    "filled with zeros, and laid out as NumPy lays out a new array: stride is checked for its length only "
    "(t.stride() gives the contiguous strides)"
)
DIFFERS["torch.set_flush_denormal"] = (
    "returns False and changes nothing (as torch on a CPU without the instruction): NumPy computes with denormals"
)
DIFFERS["torch.set_default_tensor_type"] = (
    "sets the default dtype of the CPU floating types (FloatTensor, DoubleTensor, HalfTensor); a CUDA type is "
    "refused: use set_default_dtype and set_default_device('cuda')"
)
DIFFERS["torch.set_warn_always"] = (
    "the flag is kept and read back by is_warn_always_enabled; downslope's warnings follow Python's warnings "
    "filters either way"
)
DIFFERS["torch.is_anomaly_enabled"] = (
    "False under set_detect_anomaly(True, check_nan=False): downslope's anomaly mode is the NaN check"
)
for _name in ("torch.gather", "torch.Tensor.gather"):
    DIFFERS[_name] = "sparse_grad=True is accepted and the gradient is dense (torch's is a sparse tensor)"
_SPARSE_GRAD = (
    "sparse=True: the gradient is held as the rows looked up and their values (no table of zeros) while only "
    "lookups add into it, and SparseAdam, SGD (no momentum or weight decay) and Adagrad (no weight decay) "
    "update only those rows; "
    "weight.grad reads as a dense tensor (is_sparse False; coalesce() and to_dense() are not there), made when "
    "first read, and a dense contribution (tied weights) makes it dense"
)
for _name in ("torch.nn.Embedding", "torch.nn.functional.embedding"):
    DIFFERS[_name] = _SPARSE_GRAD + "; scale_grad_by_freq with sparse=True is accepted (torch refuses the pair)"
for _name in ("torch.nn.EmbeddingBag", "torch.nn.functional.embedding_bag"):
    DIFFERS[_name] = (
        "scale_grad_by_freq divides each row's gradient by that row's count in the batch (the documented rule; "
        "torch's CPU kernel reads another index's count when counts differ); " + _SPARSE_GRAD + "; decreasing "
        "offsets are refused (torch reads outside the bags)"
    )
_LOSS_BROADCAST = (
    "input and target broadcast only where the result is the elementwise loss (a one-element target, or shapes "
    "differing in size-1 dims with no more elements than either); others, e.g. (N, 1) against (N,), raise a "
    "ShapeError where torch broadcasts (to (N, N) there)"
)
_LOSS_BROADCAST_NONE = (
    "under reduction='none' input and target broadcast as in torch, with its UserWarning (the returned shape shows "
    "the pairing; QR-DQN's quantile Huber loss relies on it); under 'mean' or 'sum' "
    + _LOSS_BROADCAST.replace("input and target broadcast", "they broadcast").replace(
        "there)", "there, with a warning)"
    )
)
for _name in ("kl_div", "poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss", "soft_margin_loss",
              "multilabel_soft_margin_loss", "margin_ranking_loss"):  # fmt: skip
    DIFFERS[f"torch.nn.functional.{_name}"] = _LOSS_BROADCAST
for _name in ("KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss", "HingeEmbeddingLoss", "SoftMarginLoss",
              "MultiLabelSoftMarginLoss", "MarginRankingLoss"):  # fmt: skip
    DIFFERS[f"torch.nn.{_name}"] = _LOSS_BROADCAST
for _name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"):
    DIFFERS[f"torch.nn.functional.{_name}"] = _LOSS_BROADCAST_NONE
for _name in ("MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss"):
    DIFFERS[f"torch.nn.{_name}"] = _LOSS_BROADCAST_NONE

# Why a family of names is absent: (pattern on the name, reason); the first match wins.
REASONS: list[tuple[str, str]] = [
    (
        r"cuda|cudnn|mps|xpu|hip|mkldnn|miopen|fbgemm|vulkan|mtia|xla|ipu|hpu|nccl|Stream|Event|stream|pin_memory"
        r"|is_pinned|share_memory|accelerator|cpu_|_cpu|nnpack|xnnpack|onednn|mkl",
        _unsupported.DEVICE,
    ),
    (
        r"^(?!.*quantile)(quant|.*_quant|.*quantize|qint|quint|q_|qscheme|int_repr|fake_|observer|qat|intrinsic|qconfig)",
        "quantization is out of scope",
    ),
    (
        r"sparse|coalesce|to_dense|crow_|col_indices|ccol_|row_indices|csr|csc|bsr|bsc|_nnz"
        r"|^indices$|^values$|smm|sspaddmm|hspmm",
        _unsupported.SPARSE,
    ),
    (r"chalf|complex32", _unsupported.COMPLEX),
    (r"fft", _unsupported.FFT),
    (
        r"linalg|cholesky|svd|^qr$|_qr|orgqr|(^|_)eig|^lu_|^lu$|solve|^inverse$|pinverse|det$|slogdet|lstsq|triangular|ormqr|geqrf"
        r"|householder|matrix_exp|matrix_power|logdet|lobpcg|pca_",
        "not implemented yet: downslope.linalg has the solves, inverses, determinants, the SVD, QR, LU, Cholesky and "
        "symmetric eigen decompositions, matrix_exp and the norms, with gradients",
    ),
    (
        r"[Ss]torage|data_ptr|stride|is_contiguous|set_|resize|as_strided|unsafe|element_size|nbytes|itemsize"
        r"|storage_offset|is_shared|untyped|dim_order|memory_format|contiguous_format|channels_last|preserve_format"
        r"|layout|strided",
        _unsupported.STORAGE,
    ),
    (
        r"jit|script|trace|compile|export|^fx$|dynamo|onnx|^package$|^hub$|^library$|^ops$|^overrides$|inductor"
        r"|func$|functorch|^Tag$|^compiler$|sym_|Sym|guard|^cond$|while_loop|^nested$|masked|_tensor_str",
        "PyTorch's compiler, graph-capture and extension machinery: out of scope",
    ),
    (
        r"distributed|rpc|^parallel$|DataParallel|DistributedSampler",
        "use downslope.distributed (data parallelism over MPI) instead",
    ),
    (
        r"DataPipe|datapipe|runtime_validation|argument_validation|guaranteed_datapipes|DataChunk",
        "DataPipes (torchdata, deprecated in PyTorch) are not supported",
    ),
    (
        r"torch_function|dispatch|BroadcastingList|assert_int_or_pair|ScalingType|SwizzleType|factory_kwargs"
        r"|^Container$|^common_types$|^modules$|^parameter$|^grad$|_DatasetKind|^bind$|^copy_method_params$"
        r"|^invert_permutation$|^PackedSequence_$",
        "PyTorch-internal helper: nothing for user code to call",
    ),
    (r"named|rename|refine_names|align_to|align_as|^names$", "named tensors are not supported"),
    (
        r"bfloat16|float8|uint16|uint32|uint64|^uint[1-7]$|^int[1-7]$|bits|float4|e4m3|e5m2|e8m0",
        "dtype not available in NumPy",
    ),
    (r"^[A-Z][a-z]*Tensor$|^Byte|^Char|^Short|^Half", "legacy typed tensor classes: pass dtype= instead"),
    (r"Lazy", "lazy (shape-inferring) modules are not implemented"),
    (r"Transformer|MultiheadAttention|attention", "attention layers are not implemented yet"),
    (
        r"state_dict_pre_hook|state_dict_post_hook|extra_state|to_empty|^ipu$|^xpu$"
        r"|^mtia$|^compile$|dump_patches|T_destination|call_super_init",
        "Module machinery for backward hooks, custom state or other devices: not implemented",
    ),
    (
        r"3d$|3D$|conv_transpose|ConvTranspose|Fold|fold$|unfold|grid_sample|affine_grid|interpolate|[Uu]psampl"
        r"|pixel_|Pixel|ChannelShuffle|channel_shuffle",
        "this convolution or resampling layer is not implemented yet",
    ),
    (
        r"register_|hook|_decomposition|autocast|set_flush_denormal|deterministic|warn_only|vital|profil|benchmark"
        r"|num_threads|num_interop|get_device|set_default_device|default_device|is_inference|inference_mode"
        r"|_C$|^classes$|^types$|^testing$|^backends$|^utils$|^random$|^version$|^return_types$|^serialization$"
        r"|^special$|^signal$|^monitor$|^multiprocessing$|^futures$|^mtia$|^amp$|^hub$|^contrib$",
        _unsupported.RUNTIME,
    ),
    (
        r"^(clip_grad|convert_parameters|fusion|memory_format|init)$",
        "one of PyTorch's implementation files (its public functions are listed by name)",
    ),
    (
        r"^(parametrize|parametrizations|stateless)$",
        "not implemented yet: use weight_norm / spectral_norm, or a Module that computes its weight in forward",
    ),
    (r"[a-z0-9]_$", "in-place variant not implemented yet: use the out-of-place form (x = f(x))"),
]
DEFAULT_REASON = "not implemented yet"


def downslope_object(namespace: str) -> Any:
    """The downslope module or class standing in for a PyTorch namespace."""
    path = NAMESPACES[namespace]
    if path == "downslope.Tensor":
        return importlib.import_module("downslope").Tensor
    if path == "downslope.nn.Module":
        return importlib.import_module("downslope.nn").Module
    return importlib.import_module(path)


def has_name(namespace: str, name: str) -> bool:
    try:  # not the placeholders that say why a Tensor name is left out
        return _unsupported.provides(downslope_object(namespace), name)
    except Exception:  # a lazy attribute that fails to import is missing
        return False


def torch_names(namespace: str) -> list[str]:
    """The public names of one PyTorch namespace (needs PyTorch)."""
    torch = importlib.import_module("torch")
    if namespace == "torch":
        names = list(torch.__all__)
    elif namespace == "torch.utils.data":
        names = list(importlib.import_module("torch.utils.data").__all__)
    else:
        classes = {"torch.Tensor": torch.Tensor, "torch.nn.Module": torch.nn.Module}
        obj = classes[namespace] if namespace in classes else importlib.import_module(namespace)
        names = [n for n in dir(obj) if not n.startswith("_")]
        if namespace == "torch.quasirandom":
            names = [n for n in names if n != "torch"]  # the module imports torch itself
        elif namespace in (
            "torch.autograd",
            "torch.autograd.functional",
            "torch.autograd.graph",
            "torch.autograd.profiler",
            "torch.profiler",
            "torch.optim.lr_scheduler",
            "torch.linalg",
        ):
            names = list(getattr(obj, "__all__", names))  # what PyTorch exports there
        elif namespace in ("torch.nn.functional", "torch.nn", "torch.nn.init", "torch.nn.utils", "torch.nn.utils.rnn"):
            # Drop what the module merely imports (typing helpers, math, warnings, torch itself).
            names = [n for n in names if _defined_in_torch_nn(getattr(obj, n))]
    # torch's submodules left out on purpose (torch.fft, torch.sparse...) are not in torch.__all__: listed too
    if namespace in ("torch", "torch.Tensor"):
        obj = torch.Tensor if namespace == "torch.Tensor" else torch
        names += [n for ns, n in _unsupported.UNSUPPORTED if ns == namespace and hasattr(obj, n)]
    return sorted(set(names), key=lambda n: (n.lower(), n))


def _defined_in_torch_nn(value: Any) -> bool:
    """A submodule of torch.nn, or a function/class of torch (not torch.Tensor or a typing helper)."""
    if inspect.ismodule(value):
        return bool(value.__name__.startswith("torch.nn"))
    module = getattr(value, "__module__", None) or ""
    if inspect.isclass(value):
        return bool(module.startswith("torch.nn"))
    return bool(module.startswith("torch"))


def _is_runtime_type(namespace: str, name: str) -> bool:
    # torch.__all__ exports the TorchScript/C++ runtime's classes (AliasDb, Block, FunctionSchema, ...).
    if namespace != "torch":
        return False
    obj = getattr(importlib.import_module("torch"), name, None)
    pybind = "pybind11" in type(obj).__module__ or "pybind11" in type(type(obj)).__module__
    return pybind and not callable(obj) or inspect.isclass(obj) and "pybind11" in type(obj).__module__


def verdict(namespace: str, name: str) -> tuple[str, str]:
    qualified = f"{namespace}.{name}"
    if has_name(namespace, name):
        if qualified in DIFFERS:
            return "differs", DIFFERS[qualified]
        return "supported", ""
    if (reason := _unsupported.reason(namespace, name)) is not None:  # what downslope's own error says
        return "not supported", reason
    if namespace == "torch.autograd.profiler" and (reason := _unsupported.reason("torch.profiler", name)):
        return "not supported", reason  # one module in downslope: its error names torch.profiler's entry
    if _is_runtime_type(namespace, name):
        return "not supported", "a TorchScript / C++ runtime type: out of scope"
    for pattern, reason in REASONS:
        if re.search(pattern, name):
            return "not supported", reason
    return "not supported", DEFAULT_REASON


def render() -> str:
    sections = []
    totals = {"supported": 0, "differs": 0, "not supported": 0}
    for namespace in NAMESPACES:
        rows: list[str] = []
        missing: dict[str, list[str]] = {}
        counts = {"supported": 0, "differs": 0, "not supported": 0}
        for name in torch_names(namespace):
            status, note = verdict(namespace, name)
            counts[status] += 1
            if status == "not supported":
                missing.setdefault(note, []).append(f"`{name}`")
            else:
                rows.append(f"| `{name}` | {status} | {note} |")
        for k, v in counts.items():
            totals[k] += v
        text = [
            f"## `{namespace}` (in downslope: `{NAMESPACES[namespace]}`)",
            "",
            f"{counts['supported']} supported, {counts['differs']} differ, {counts['not supported']} not supported.",
            "",
            "| name | status | how it differs |",
            "|---|---|---|",
            *rows,
        ]
        if missing:
            text += ["", "Not supported:", ""]
        for reason in sorted(missing, key=lambda r: (-len(missing[r]), r)):
            text.append(f"- *{reason}*: {', '.join(missing[reason])}")
        sections.append("\n".join(text))
    torch = importlib.import_module("torch")
    header = [
        "# PyTorch compatibility table",
        "",
        "Generated by `tests/compat/make_table.py` from PyTorch "
        f"{torch.__version__.split('+')[0]}'s public names; do not edit by hand. "
        "`tests/compat/test_table.py` checks that every name marked supported or differs exists in downslope "
        "and that this file is up to date.",
        "",
        "Namespaces: all of `torch.__all__`, the public attributes of `torch.Tensor`, `torch.nn`, `torch.nn.Module`, "
        "`torch.nn.functional`, `torch.nn.init`, `torch.nn.utils` and `torch.nn.utils.rnn` (what the modules "
        "define, not what they import) and `torch.optim`, and "
        "`torch.utils.data.__all__`. *supported*: same name, same behaviour within float32 rounding. "
        "*differs*: the name exists, with the difference noted. *not supported*: grouped by reason.",
        "",
        f"In total: {totals['supported']} supported, {totals['differs']} differ, "
        f"{totals['not supported']} not supported.",
        "",
    ]
    return "\n".join(header) + "\n" + "\n\n".join(sections) + "\n"


def main() -> None:
    TABLE.write_text(render())
    print(f"wrote {TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()

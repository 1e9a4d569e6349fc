"""PyTorch names downslope does not have on purpose, each with why and what to do instead.

One table (:data:`UNSUPPORTED`) serves three readers, so they cannot drift apart:

- ``downslope.__getattr__`` raises :class:`UnsupportedNameError` with the reason for ``ds.fft``,
  ``ds.complex64``, ...;
- :func:`install_tensor_names` puts a raising descriptor on :class:`~downslope.Tensor` for each Tensor
  name (``t.share_memory_()``, ``t.storage()``), so an ordinary attribute read costs nothing more
  (a ``__getattr__`` on Tensor would make every attribute read slower: CPython does not specialize
  attribute loads on classes that define one); :func:`provides` tells these from real attributes;
- a finder at the end of ``sys.meta_path`` makes ``import downslope.multiprocessing`` say why;
- ``tests/compat/make_table.py`` takes its "not supported" wording for these names from here.

Both errors are the built-in ones Python code tests for (``hasattr``, ``getattr(x, name, default)``
and ``except ImportError`` keep working) and :class:`~downslope.errors.DownslopeError`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, NoReturn

from .errors import DownslopeError

# The reasons, as the compatibility table groups names by them.
DEVICE = "GPU, accelerator or kernel-library specific: downslope computes on the CPU with NumPy"
SPARSE = "only part of torch's sparse tensors is supported: COO tensors and downslope.sparse's ops (no CSR, CSC or BSR)"
COMPLEX = "half-precision complex (complex32) is not supported: NumPy has no such dtype"
FFT = "Fourier transforms are not implemented"
STORAGE = "storage-level API: a downslope Tensor wraps one NumPy array"
RUNTIME = "PyTorch runtime machinery with no counterpart in a NumPy library"
PROCESSES = "sharing tensors between processes is not supported: a Tensor's array belongs to one process"
NETWORK = "downloading at run time is not supported: downslope reaches no network"

_COMPLEX_WAY = "use complex64 (ds.complex64, t.to(ds.complex64))"
_SPARSE_WAY = "use a COO tensor (ds.sparse_coo_tensor(indices, values, size)) and ds.sparse.mm for products"
_STORAGE_WAY = "a Tensor's values are the NumPy array t.numpy(); use reshape/view/unfold/expand for new views"
# downslope.load reads only its own files (it never unpickles), so a downloaded .pth is converted once,
# with PyTorch, to safetensors; the route named here is the one tests/test_model_zoo_advice.py runs.
_DOWNLOAD_WAY = (
    "download the file yourself (the URL that torch.hub.load_state_dict_from_url, torch.utils.model_zoo.load_url "
    "or torch.hub.load would fetch); a .pth file is a pickle, which downslope.load refuses, so convert it once "
    "with PyTorch: safetensors.torch.save_file(torch.load('model.pth', weights_only=True), 'model.safetensors'), "
    "then model.load_state_dict(downslope.load_safetensors('model.safetensors')) "
    "(or numpy.savez('model.npz', **{k: v.numpy() for k, v in torch.load('model.pth', weights_only=True).items()}), "
    "then model.load_state_dict(dict(numpy.load('model.npz'))))"
)
_PROCESS_WAY = (
    "use Python's multiprocessing with arrays (t.numpy()) and rebuild tensors there, or "
    "DataLoader(num_workers=...) for loading"
)
# torch.multiprocessing is mostly met as mp.spawn starting DDP workers (PyTorch's DDP tutorial)
_MULTIPROCESSING_WAY = (
    f"{_PROCESS_WAY}; for data-parallel training, run the script under `mpiexec -n W python script.py` with "
    "downslope.distributed (init_process_group + nn.parallel.DistributedDataParallel) instead of mp.spawn; see "
    "docs/distributed.md"
)

# (torch namespace, name) -> (reason, the downslope way)
UNSUPPORTED: dict[tuple[str, str], tuple[str, str]] = {
    ("torch", "sparse_csr_tensor"): (SPARSE, _SPARSE_WAY),
    ("torch", "smm"): (SPARSE, "use ds.sparse.mm(S, D), whose result is dense"),
    ("torch", "multiprocessing"): (PROCESSES, _MULTIPROCESSING_WAY),
    ("torch", "hub"): (NETWORK, _DOWNLOAD_WAY),
    ("torch.utils", "model_zoo"): (NETWORK, _DOWNLOAD_WAY),
    ("torch.Tensor", "share_memory_"): (PROCESSES, _PROCESS_WAY),
    ("torch.Tensor", "is_shared"): (PROCESSES, _PROCESS_WAY),
    ("torch.Tensor", "storage"): (STORAGE, _STORAGE_WAY),
    ("torch.Tensor", "untyped_storage"): (STORAGE, _STORAGE_WAY),
    ("torch.Tensor", "storage_offset"): (STORAGE, _STORAGE_WAY),
}
# torch's storage classes (old code builds tensors from torch.FloatStorage(...)) and storage-level functions
_STORAGE_CLASS_WAY = "make the tensor from its data or size: ds.tensor(values, dtype=...) or ds.empty(size, dtype=...)"
for _name in (
    "BoolStorage",
    "ByteStorage",
    "CharStorage",
    "DoubleStorage",
    "FloatStorage",
    "IntStorage",
    "LongStorage",
    "ShortStorage",
    "TypedStorage",
    "UntypedStorage",
):
    UNSUPPORTED[("torch", _name)] = (STORAGE, _STORAGE_CLASS_WAY)
UNSUPPORTED[("torch", "is_storage")] = (STORAGE, "no downslope object is a storage: the answer would always be False")
for _name in ("as_strided_", "as_strided_copy", "as_strided_scatter"):
    UNSUPPORTED[("torch", _name)] = (
        STORAGE,
        "ds.as_strided(x, size, stride) reads a new view; write through it, or use reshape/unfold/expand",
    )
for _name in ("unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes"):
    UNSUPPORTED[("torch", _name)] = (STORAGE, "use chunk / split / split_with_sizes, which give the same pieces")
_LOW_PRECISION = (
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
)
for _name in _LOW_PRECISION:
    UNSUPPORTED[("torch", _name)] = (
        "NumPy has no 8-bit or 4-bit float dtypes, so no downslope tensor holds them",
        "compute in float32 (or float16); low-precision checkpoints load widened to float32",
    )
UNSUPPORTED[("torch", "nested")] = (
    "nested (ragged) tensors are not supported",
    "pad the sequences to one length (nn.utils.rnn.pad_sequence) and pass a padding mask",
)
# torch.profiler's record_function is downslope.profiler's (a no-op label); the profiler itself is not
for _name in ("profile", "schedule", "tensorboard_trace_handler", "ProfilerActivity", "ProfilerAction", "itt"):
    UNSUPPORTED[("torch.profiler", _name)] = (
        "PyTorch's profiler traces PyTorch's own operator and device kernels; downslope's ops are Python and NumPy",
        "time Python with cProfile (python -m cProfile -s cumtime train.py, or cProfile.Profile() around the steps) "
        "and statements with downslope.utils.benchmark.Timer; drop profile(...) blocks (record_function(...) "
        "labels work, and record nothing)",
    )
for _name in ("Fuzzer", "FuzzedParameter", "FuzzedTensor", "ParameterAlias"):
    UNSUPPORTED[("torch.utils.benchmark", _name)] = (
        "the benchmark fuzzer (random benchmark inputs) is not implemented",
        "draw the inputs yourself (a loop over shapes with ds.randn), time each with downslope.utils.benchmark.Timer"
        "(..., sub_label=..., description=...) and print the measurements with Compare(results).print()",
    )
UNSUPPORTED[("torch.nn.functional", "grouped_mm")] = (
    "grouped matrix products (mixture-of-experts kernels) are not implemented",
    "multiply each group on its own: ds.cat([a[start:end] @ b[g] for g, (start, end) in "
    "enumerate(zip([0, *offs.tolist()[:-1]], offs.tolist()))])",
)
for _name in ("complex32", "chalf"):
    UNSUPPORTED[("torch", _name)] = (COMPLEX, _COMPLEX_WAY)
UNSUPPORTED[("torch.Tensor", "chalf")] = (COMPLEX, _COMPLEX_WAY)
UNSUPPORTED[("torch.nn.attention", "flex_attention")] = (
    "FlexAttention compiles user score and mask functions with torch.compile; it is not implemented",
    "build the mask or additive bias as a tensor and pass it as attn_mask to F.scaled_dot_product_attention",
)

UNSUPPORTED[("torch.distributed", "elastic")] = (
    "torchrun's elastic agent (rendezvous, restarts, changing world sizes) is not implemented: the MPI launcher "
    "starts and ends the job",
    "launch the script with `mpiexec -n W python script.py`; downslope.distributed sets RANK, WORLD_SIZE, "
    "LOCAL_RANK and LOCAL_WORLD_SIZE from it (see docs/distributed.md)",
)

# torch.fx's tracer: torchvision's create_feature_extractor and graph-rewriting code need it
_FX = "downslope has no symbolic tracer (torch.fx records PyTorch's own operator graph)"
_FX_WAY = (
    "take intermediate outputs with forward hooks (module.register_forward_hook) or by returning them from "
    "forward (torchvision's IntermediateLayerGetter pattern); fx.wrap is accepted"
)
for _name in ("symbolic_trace", "GraphModule", "Graph", "Node", "Proxy", "Tracer", "Interpreter", "Transformer"):
    UNSUPPORTED[("torch.fx", _name)] = (_FX, _FX_WAY)
for _name in ("replace_pattern", "graph_module", "graph", "node", "proxy", "passes", "subgraph_rewriter"):
    UNSUPPORTED[("torch.fx", _name)] = (_FX, _FX_WAY)

# Every other Tensor name the compatibility table marks "not supported", so that reading one says why
# (tests/test_unsupported_names.py checks that the table's list and this one agree).
_TO_COO = "make a COO tensor with t.to_sparse() (downslope.sparse), which has indices(), values() and coalesce()"
_TENSOR_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    (SPARSE, _TO_COO): (
        "ccol_indices",
        "coalesce",
        "col_indices",
        "crow_indices",
        "indices",
        "is_coalesced",
        "resize_as_sparse_",
        "row_indices",
        "sparse_dim",
        "sparse_mask",
        "sparse_resize_",
        "sparse_resize_and_clear_",
        "to_sparse_bsc",
        "to_sparse_bsr",
        "to_sparse_coo",
        "to_sparse_csc",
        "to_sparse_csr",
        "values",
    ),
    (SPARSE, "use ds.sparse.mm(S, D) for sparse products and dense ops for the rest"): ("smm", "sspaddmm"),
    (STORAGE, _STORAGE_WAY): (
        "as_strided_",
        "as_strided_scatter",
        "const_data_ptr",
        "dim_order",
        "is_set_to",
        "set_",
        "storage_type",
    ),
    (STORAGE, "make a new tensor of the shape (ds.empty(shape), t.new_empty(shape)) or copy into one that has it"): (
        "new_empty_strided",
        "resize",
        "resize_as",
    ),
    (STORAGE, "use chunk / split / split_with_sizes, which give the same pieces"): (
        "unsafe_chunk",
        "unsafe_split",
        "unsafe_split_with_sizes",
    ),
    (DEVICE, "keep tensors on the CPU, or move them to a CUDA GPU with t.cuda() (through CuPy)"): (
        "ipu",
        "mtia",
        "xpu",
        "to_mkldnn",
    ),
    (DEVICE, "drop the call: there are no CUDA streams to record"): ("record_stream",),
    (
        "quantization is out of scope",
        "keep the values in float32 (or float16); t.to(ds.int8) and a scale of your own store a quantized copy",
    ): (
        "dequantize",
        "int_repr",
        "q_per_channel_axis",
        "q_per_channel_scales",
        "q_per_channel_zero_points",
        "q_scale",
        "q_zero_point",
        "qscheme",
    ),
    (
        "removed from PyTorch's Tensor (deprecated since 1.9): torch.linalg has the function",
        "use ds.linalg.eig, ds.linalg.lstsq, ds.linalg.solve or ds.linalg.eigh",
    ): ("eig", "lstsq", "solve", "symeig"),
    ("in-place variant not implemented yet: use the out-of-place form (x = f(x))", "x = x.conj_physical()"): (
        "conj_physical_",
    ),
    ("in-place variant not implemented yet: use the out-of-place form (x = f(x))", "compute with tensor ops"): (
        "map2_",
    ),
    ("use downslope.distributed (data parallelism over MPI) instead", "a downslope tensor is never distributed"): (
        "is_distributed",
    ),
    ("not implemented yet", "use ds.no_grad() (PyTorch removed volatile)"): ("volatile",),
    ("not implemented yet", "compute the REINFORCE loss yourself (-log_prob * reward) and call backward"): (
        "reinforce",
    ),
    ("not implemented yet", "use t.dtype (a gradient has the tensor's dtype)"): ("grad_dtype",),
    ("not implemented yet", "named tensors are not supported: keep the dim names beside the tensor"): ("name",),
    (
        "not implemented yet",
        "write it with the ops downslope has (indexing, gather, scatter, pad)",
    ): (
        "as_subclass",
        "dense_dim",
        "hash_tensor",
        "index",
        "module_load",
        "output_nr",
        "slice_inverse",
        "to_padded_tensor",
    ),
}
for (_reason, _way), _names in _TENSOR_NAMES.items():
    for _name in _names:
        UNSUPPORTED.setdefault(("torch.Tensor", _name), (_reason, _way))

# Quantized tensors and the int8 modules and kernels that run them; fake quantization (QAT's forward
# pass, in floating point) is implemented, so the way out names it.
_QUANTIZED = "quantized (int8) tensors, modules and kernels are not implemented: downslope computes in floating point"
_QUANTIZED_WAY = (
    "simulate quantization in floating point with ds.fake_quantize_per_tensor_affine / "
    "ds.fake_quantize_per_channel_affine or ds.ao.quantization.FakeQuantize, and keep the model in float"
)
_PREPARE_WAY = (
    "ds.ao.quantization.prepare_qat(model) swaps Linear and Conv2d for their fake-quantizing QAT twins and adds "
    "activation_post_process on their outputs; for other layers put the fake quantization in the model yourself "
    "(self.weight_fake_quant = qconfig.weight() applied in forward); there is no convert: the trained model stays "
    "in floating point"
)
for _name in ("quantize_per_tensor", "quantize_per_channel", "quantize_per_tensor_dynamic", "dequantize"):
    UNSUPPORTED[("torch", _name)] = (_QUANTIZED, _QUANTIZED_WAY)
for _name in ("_fake_quantize_learnable_per_tensor_affine", "_fake_quantize_learnable_per_channel_affine"):
    UNSUPPORTED[("torch", _name)] = (
        "the learnable (LSQ) fake quantization ops are not implemented",
        "learn the scale as a Parameter and round with a straight-through estimator, as LSQ code does "
        "(q = (x / s).clamp(qmin, qmax); y = s * (q + (q.round() - q).detach())), or use "
        "ds.fake_quantize_per_tensor_affine for a fixed scale",
    )
for _namespace in ("torch.ao.quantization", "torch.quantization"):
    for _name in ("convert", "quantize", "quantize_dynamic", "quantize_qat", "quantize_fx", "quantize_jit"):
        UNSUPPORTED[(_namespace, _name)] = (_QUANTIZED, _QUANTIZED_WAY)
    for _name in ("add_quant_dequant", "swap_module"):
        UNSUPPORTED[(_namespace, _name)] = (
            "the module swapping that prepares a model for quantized (int8) modules is not implemented",
            _PREPARE_WAY,
        )
    for _name in ("fuse_modules", "fuse_modules_qat"):
        UNSUPPORTED[(_namespace, _name)] = (
            "module fusion for quantized (int8) modules is not implemented",
            "fold an eval-mode batch norm into the layer before it with ds.nn.utils.fusion.fuse_conv_bn_eval(conv, bn) "
            "(or fuse_linear_bn_eval) and replace the batch norm by nn.Identity()",
        )
    for _name in ("HistogramObserver", "get_default_qconfig", "FusedMovingAvgObsFakeQuantize", "QConfigMapping"):
        UNSUPPORTED[(_namespace, _name)] = (
            "post-training quantization's observers and torch's fused fake-quantize kernel are not implemented",
            "use MinMaxObserver / MovingAverageMinMaxObserver and FakeQuantize (get_default_qat_qconfig builds them)",
        )

# Where each torch namespace lives in downslope (the error names the object asked).
_WHERE = {
    "torch.ao.quantization": "downslope.ao.quantization",
    "torch.quantization": "downslope.quantization",
    "torch.distributed": "downslope.distributed",
    "torch.fx": "downslope.fx",
    "torch": "downslope",
    "torch.Tensor": "downslope.Tensor",
    "torch.utils": "downslope.utils",
    "torch.nn.attention": "downslope.nn.attention",
    "torch.nn.functional": "downslope.nn.functional",
    "torch.profiler": "downslope.profiler",
    "torch.utils.benchmark": "downslope.utils.benchmark",
}


class UnsupportedNameError(DownslopeError, AttributeError):
    """A PyTorch name downslope leaves out on purpose; the message says why and what to use instead.
    An AttributeError, so ``hasattr`` is False and ``getattr(x, name, default)`` gives the default."""


class UnsupportedModuleError(DownslopeError, ModuleNotFoundError):
    """``import downslope.<module>`` for a PyTorch module downslope leaves out on purpose (the message
    says why); a ModuleNotFoundError, so ``except ImportError`` code falls back as it would."""


def message(namespace: str, name: str) -> str | None:
    """The error message for ``namespace.name`` (torch's spelling), or None if it is not in the table."""
    entry = UNSUPPORTED.get((namespace, name))
    if entry is None:
        return None
    reason, way = entry
    return f"{_WHERE[namespace]}.{name} (PyTorch's {namespace}.{name}) is not available: {reason}; {way}"


def reason(namespace: str, name: str) -> str | None:
    """The compatibility table's wording for ``namespace.name``, or None if it is not in the table."""
    entry = UNSUPPORTED.get((namespace, name))
    return None if entry is None else entry[0]


def missing_module_attribute(name: str, namespace: str = "torch") -> NoReturn:
    """Raise for ``downslope.<name>`` (or ``<namespace>.<name>`` in downslope, e.g. ``downslope.utils.model_zoo``
    for namespace "torch.utils") that does not exist: with the reason when the table has one."""
    module = sys.modules[_WHERE[namespace]]
    text = message(namespace, name)
    if text is None:
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}", name=name, obj=module)
    if _importing_from(sys._getframe(2)):
        # `from downslope.profiler import profile`: Python turns an AttributeError there into a bare "cannot
        # import name", dropping the reason; an ImportError passes through, as for the packages' names (the
        # finder's). No name= on it, for the same reason as there. Attribute reads (hasattr) still get the
        # AttributeError.
        raise UnsupportedModuleError(text)
    raise UnsupportedNameError(text, name=name, obj=module)


def _importing_from(frame: Any) -> bool:
    """Whether ``frame`` (the one that asked a module's ``__getattr__``) is running a from-import's
    IMPORT_FROM (CPython's bytecode; False wherever that cannot be read)."""
    import dis  # only here: an error path

    code = getattr(frame, "f_code", None)
    lasti = getattr(frame, "f_lasti", -1)
    raw = getattr(code, "co_code", b"")
    return 0 <= lasti < len(raw) and raw[lasti] == dis.opmap.get("IMPORT_FROM", -1)


class _Unsupported:
    """A Tensor attribute that raises :class:`UnsupportedNameError` when read from a tensor. Read from
    the class it is this placeholder (as a property is), so code walking ``dir(ds.Tensor)`` with
    ``getattr`` keeps working; :func:`provides` tells it from a real attribute."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        raise UnsupportedNameError(message("torch.Tensor", self.name), name=self.name, obj=obj)

    def __repr__(self) -> str:
        return f"<not in downslope: torch.Tensor.{self.name}>"


def provides(obj: Any, name: str) -> bool:
    """Whether ``obj`` (a module or class) has ``name`` for real: not missing, not a raising placeholder."""
    if isinstance(vars(obj).get(name) if isinstance(obj, type) else None, _Unsupported):
        return False
    return hasattr(obj, name)


def install_tensor_names(tensor_class: type) -> None:
    """Put the raising descriptors on ``tensor_class`` for the table's Tensor names it lacks."""
    for namespace, name in UNSUPPORTED:
        if namespace == "torch.Tensor" and not hasattr(tensor_class, name):
            setattr(tensor_class, name, _Unsupported(name))


class _UnsupportedModuleFinder:
    """Last on ``sys.meta_path``: asked only after every other finder failed, so imports that succeed
    never reach it."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        parent, _, name = fullname.rpartition(".")
        namespace = next((torch for torch, ours in _WHERE.items() if ours == parent and torch != "torch.Tensor"), None)
        if namespace is None:
            return None
        text = message(namespace, name)
        if text is None:
            return None
        # no name= on the error: `from downslope import fft` then shows this message, not a bare ImportError
        raise UnsupportedModuleError(text)


def install_module_finder() -> None:
    if not any(isinstance(f, _UnsupportedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_UnsupportedModuleFinder())

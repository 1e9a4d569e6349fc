"""``torch._inductor.config``: assignments are accepted and read by nothing (there is no compiler).
The settings scripts commonly set start at PyTorch's defaults, so code that reads one before setting
it finds a value; any other assignment is kept as a plain module attribute.

Example:
    >>> from downslope._inductor import config
    >>> config.triton.cudagraphs = True
    >>> config.fx_graph_cache, config.triton.cudagraphs
    (True, True)
"""

from __future__ import annotations

from types import SimpleNamespace

coordinate_descent_tuning = False
epilogue_fusion = True
fx_graph_cache = True
freezing = False
max_autotune = False
max_autotune_gemm = False
conv_1x1_as_mm = False
force_fuse_int_mm_with_mul = False
use_mixed_mm = True
debug = False
compile_threads = 1
# torch._inductor.config.triton.cudagraphs = False and the like
triton = SimpleNamespace(cudagraphs=False, unique_kernel_names=True, cudagraph_trees=True)

"""``torch.version``: what this build is. downslope computes with NumPy (CuPy on a GPU when installed), so
there is no CUDA, ROCm/HIP or XPU build to report: those are None, as in a CPU build of torch.

Example:
    >>> import downslope as ds
    >>> ds.version.cuda is None, ds.version.__version__ == ds.__version__
    (True, True)
"""

from __future__ import annotations

from . import __version__ as __version__

cuda: str | None = None  # torch.version.cuda: None for a build without CUDA
hip: str | None = None
rocm: str | None = None
xpu: str | None = None
debug = False
git_version = "Unknown"  # torch's value for a build made outside a git checkout

__all__ = ["__version__", "cuda", "debug", "git_version", "hip", "rocm", "xpu"]

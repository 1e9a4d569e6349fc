"""``torch._inductor``: the compiler's settings module ``config`` that training scripts set before
``torch.compile`` (``torch._inductor.config.coordinate_descent_tuning = True``). downslope compiles
nothing (``ds.compile`` wraps the model as PyTorch's OptimizedModule and runs it as it is), so the settings are kept and read by nothing.

Example:
    >>> import downslope as ds
    >>> ds._inductor.config.coordinate_descent_tuning = True
    >>> import downslope._inductor.config as config
    >>> config.coordinate_descent_tuning
    True
"""

from __future__ import annotations

from . import config

__all__ = ["config"]

"""torch's switches of its debugging aids, as far as downslope has them: anomaly detection's NaN
check (see :class:`downslope.autograd.set_detect_anomaly`) and ``set_warn_always``.

Example:
    >>> import downslope as ds
    >>> ds.is_anomaly_enabled(), ds.is_anomaly_check_nan_enabled()
    (False, True)
"""

from __future__ import annotations

from ..autograd import is_anomaly_enabled
from ..errors import ArgumentTypeError

__all__ = ["is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_warn_always_enabled", "set_warn_always"]

_warn_always = [False]


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly detection checks gradients for NaN (``torch.is_anomaly_check_nan_enabled``):
    always True here, since downslope's anomaly mode is that check (and torch's default is True too).

    Example:
        >>> import downslope as ds
        >>> ds.is_anomaly_check_nan_enabled()
        True
    """
    return True


def set_warn_always(b: bool) -> None:
    """``torch.set_warn_always``: record whether warnings that PyTorch gives once should be given every
    time. downslope's warnings follow Python's ``warnings`` filters either way; the flag is kept
    for code that reads it back with :func:`is_warn_always_enabled`.

    Example:
        >>> import downslope as ds
        >>> ds.set_warn_always(False); ds.is_warn_always_enabled()
        False
    """
    if not isinstance(b, bool):
        raise ArgumentTypeError(f"set_warn_always(): argument 'b' must be bool, not {type(b).__name__}")
    _warn_always[0] = b


def is_warn_always_enabled() -> bool:
    """The flag :func:`set_warn_always` set (False by default, as in torch).

    Example:
        >>> import downslope as ds
        >>> ds.is_warn_always_enabled()
        False
    """
    return _warn_always[0]

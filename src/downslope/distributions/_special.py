"""The special functions the distributions use, re-exported from :mod:`downslope.ops.special` (where
they live as ops with gradients): ``lgamma``, ``digamma``, ``polygamma``, ``erfinv``, ``igamma``, the
array forms, and ``standard_gamma_grad`` for Gamma's reparameterised sample.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions._special import lgamma
    >>> lgamma(ds.tensor([1.0, 3.0]))
    tensor([0.    , 0.6931])
"""

from __future__ import annotations

from ..ops.special import (
    digamma,
    digamma_array,
    erfinv,
    erfinv_array,
    gammainc_array,
    igamma,
    igammac,
    lgamma,
    lgamma_array,
    polygamma,
    polygamma_array,
    standard_gamma_grad,
)

__all__ = [
    "digamma",
    "digamma_array",
    "erfinv",
    "erfinv_array",
    "gammainc_array",
    "igamma",
    "igammac",
    "lgamma",
    "lgamma_array",
    "polygamma",
    "polygamma_array",
    "standard_gamma_grad",
]

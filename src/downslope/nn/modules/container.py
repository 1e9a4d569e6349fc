"""``torch.nn.modules.container``: the containers (Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict), the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Sequential is ds.nn.Sequential
    True
"""

from __future__ import annotations

from .. import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]

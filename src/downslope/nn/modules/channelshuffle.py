"""``torch.nn.modules.channelshuffle``: ChannelShuffle, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> ChannelShuffle is ds.nn.ChannelShuffle
    True
"""

from __future__ import annotations

from .. import ChannelShuffle

__all__ = ["ChannelShuffle"]

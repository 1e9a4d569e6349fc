"""``torch.nn.modules.rnn``: the recurrent layers and cells, with their bases ``RNNBase`` and ``RNNCellBase``, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> LSTM is ds.nn.LSTM
    True
"""

from __future__ import annotations

from .. import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

"""``torch.distributed.nn``: the collectives that take part in autograd (:mod:`.functional`)."""

from . import functional
from .functional import all_gather

__all__ = ["functional", "all_gather"]

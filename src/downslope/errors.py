"""The library's own exception types. Each also derives from the built-in one users would catch."""

from __future__ import annotations


class DownslopeError(Exception):
    """Base class of every error downslope raises on purpose."""


class ShapeError(DownslopeError, ValueError, RuntimeError):
    """Shapes that do not fit together; the message names the module and both shapes. Also a
    RuntimeError, which PyTorch raises for shape mismatches (``except RuntimeError:`` code catches it)."""


class CheckpointError(DownslopeError, ValueError, RuntimeError):
    """A checkpoint that cannot be written or read (missing, truncated, corrupted, wrong format).
    Also a RuntimeError, which ``torch.load`` raises for a truncated or corrupted file, so resume
    code's ``except RuntimeError:`` catches it.

    ``filename``, ``reason`` and ``errno`` are set when a write failed (the path, e.g. "No space left on
    device", and its errno), so a caller can say what to do in its own words."""

    filename: str | None = None
    reason: str | None = None
    errno: int | None = None


class DataError(DownslopeError, ValueError):
    """Bad input data: NaN/inf, wrong columns, malformed files; the message says where."""


class ConfigError(DownslopeError, ValueError):
    """A bad option, flag or config value; the message lists the valid choices."""


class DivergenceError(DownslopeError, FloatingPointError):
    """Training diverged (non-finite or exploding loss)."""


class ArgumentError(DownslopeError, ValueError):
    """An argument with a value that cannot work (the message names it, the value and the range)."""


class ArgumentTypeError(DownslopeError, TypeError):
    """An argument of the wrong type or dtype."""


class UnevenDataError(ShapeError, ArgumentTypeError):
    """Nested lists that are not rectangular (``ds.tensor([[1, 2], [3]])``): a ValueError as in torch,
    and a TypeError as the other data ``ds.tensor`` refuses."""


class DTypeError(ArgumentTypeError, RuntimeError):
    """A tensor of a dtype the operation cannot take (an integer tensor where a floating one is
    needed, operands of different dtypes). Also a RuntimeError, which PyTorch raises there
    (``except RuntimeError:`` code catches it, ``except TypeError:`` code too)."""


class ArgumentTypeRuntimeError(ArgumentTypeError, RuntimeError):
    """An argument or a function's result of the wrong type where PyTorch raises RuntimeError (torch.func's
    primals that are not a tuple, a function under grad that returns a float). Also a TypeError, so
    ``except TypeError:`` code catches it too."""


class DTypeValueError(DTypeError, ValueError):
    """A dtype mismatch PyTorch reports as a ValueError (a recurrent layer's input against its weights).
    Also a TypeError and a RuntimeError, as every DTypeError is."""


class InvalidValueError(ArgumentError, RuntimeError):
    """Values an operation refuses where PyTorch raises RuntimeError (probabilities outside [0, 1],
    an integer to a negative power, a backward returning the wrong number of gradients). Also a
    ValueError, so ``except ValueError:`` code catches it too."""


class OutOfRangeError(DownslopeError, IndexError, RuntimeError):
    """An index, dimension or class id outside its valid range. Both an IndexError and a
    RuntimeError: PyTorch raises one or the other depending on the op (IndexError for ``x[5]`` and
    ``index_select``, RuntimeError for ``gather``, ``scatter`` and ``narrow``), so either
    ``except`` clause in ported code catches it."""


class ShapeIndexError(ShapeError, OutOfRangeError):
    """A shape problem PyTorch reports as an IndexError: a max/min/amax over a dimension of size 0, a
    dimension out of range for a 0-d input of gather or scatter. A ShapeError as before (ValueError and
    RuntimeError), and an IndexError, so ``except IndexError:`` code written for torch catches it."""


class ArgumentAssertionError(ArgumentError, AssertionError):
    """An argument PyTorch checks with ``assert`` (``nn.MultiheadAttention(8, 3)``: embed_dim not divisible
    by num_heads). An ArgumentError (a ValueError) as before, and the AssertionError torch raises."""


class NumberOverflowError(ArgumentTypeError, OverflowError):
    """A Python number too large for any tensor dtype (``x + 2**70``). An ArgumentTypeError as before, and
    the OverflowError torch raises ("int too big to convert")."""


class StateError(DownslopeError, RuntimeError):
    """An operation that the current state does not allow (e.g. backward twice through a freed graph)."""


class UnimplementedError(StateError, NotImplementedError):
    """A case PyTorch also leaves unimplemented (or that downslope has not built yet), such as the
    derivative of the incomplete gamma function with respect to its shape. A NotImplementedError, as
    PyTorch raises for these, so ``except NotImplementedError:`` in ported code catches it."""


class DTypeUnimplementedError(DTypeError, NotImplementedError):
    """A dtype PyTorch's kernel for the op does not implement (softmax of an integer tensor: "not
    implemented for 'Long'"). A DTypeError as before, and the NotImplementedError torch raises, so
    ``except NotImplementedError:`` in ported code catches it."""


class ShapeUnimplementedError(ShapeError, NotImplementedError):
    """An input rank PyTorch's op does not implement (a 3-D input to bilinear interpolate). A ShapeError
    as before, and the NotImplementedError torch raises, so ``except NotImplementedError:`` catches it."""


class DeviceUnavailableError(StateError, AssertionError):
    """A device that this machine cannot use (``.to('cuda')`` with no GPU or no CuPy). A StateError (a
    RuntimeError, as a CUDA build of torch raises) and an AssertionError, as a CPU-only build of torch
    raises ("Torch not compiled with CUDA enabled")."""


class UninitializedError(StateError, ValueError):
    """A lazy module's parameter or buffer used before its first forward pass gave it a shape. A
    RuntimeError and a ValueError: PyTorch raises RuntimeError for its shape and ValueError for the
    other uses, so either ``except`` clause catches it."""


class DeviceError(DownslopeError, RuntimeError):
    """Tensors on different devices (CPU, CUDA GPU) meeting in one op; the message names both devices."""


class StateDictError(DownslopeError, KeyError, RuntimeError):
    """A state dict (or an optimizer's param group) with missing or unexpected keys. Also a
    RuntimeError, which PyTorch's load_state_dict raises (``except RuntimeError:`` code catches it)."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class ExportError(DownslopeError, ValueError):
    """A model (or a layer or op in it) that cannot be written to an exchange format such as ONNX."""

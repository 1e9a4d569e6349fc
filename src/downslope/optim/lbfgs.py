"""L-BFGS with an optional strong-Wolfe line search: a NumPy port of ``torch.optim.LBFGS``.

The logic (two-loop recursion, history update when ``y.s > 1e-10``, first step length
``min(1, 1/|g|_1) * lr``, stopping rules, cubic-interpolation line search from minFunc) follows
PyTorch's implementation line by line, so the iterates agree with it. All parameters live in
one flat buffer (the optimizer's fast path), which is exactly the vector L-BFGS works on.

On a device (CuPy, the strict stand-in) the vectors stay in the buffer's namespace; the scalars the
algorithm branches on (slopes, curvature, gradient norms, losses) are read to the host explicitly
with :func:`_host`, as PyTorch's implementation synchronises on them too. The state dict holds host
arrays on either device.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import enable_grad
from ..backend import namespace_of
from ..devices import is_array, like, to_host

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, mark_written, wrap_array
from . import transforms as T
from .optimizer import Optimizer, OptimizerOptions, _count, _host_value, check_nonnegative


def _host(v: Any) -> Any:
    """A scalar result (a dot product, a norm) as a host NumPy scalar of its dtype: itself on the host,
    one explicit device-to-host read on a device (the line search and stopping rules branch on it)."""
    if isinstance(v, (np.generic, float, int)):
        return v
    return to_host(v)[()]


def _cubic_interpolate(
    x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any, bounds: tuple[Any, Any] | None = None
) -> Any:
    """Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to ``bounds``."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


_Bracket = tuple[list[Any], list[Any], list[np.ndarray], list[Any]]  # steps, losses, gradients, slopes


def _strong_wolfe(
    obj_func: Callable[[np.ndarray, Any, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    t: Any,
    d: np.ndarray,
    f: float,
    g: np.ndarray,
    gtd: Any,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, np.ndarray, Any, int]:
    """Find a step ``t`` along ``d`` satisfying the strong Wolfe conditions (bracket, then zoom).

    Returns the loss, gradient and step found and the number of function evaluations.
    """
    g = g.copy()
    bracket, done, ls_iter, evals = _bracket_phase(obj_func, x, t, d, f, g, gtd, c1, c2, max_ls)
    return _zoom(obj_func, x, d, f, gtd, bracket, done, ls_iter, evals, c1, c2, tolerance_change, max_ls)


def _bracket_phase(
    obj_func: Callable[[np.ndarray, Any, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    t: Any,
    d: np.ndarray,
    f: float,
    g: np.ndarray,
    gtd: Any,
    c1: float,
    c2: float,
    max_ls: int,
) -> tuple[_Bracket, bool, int, int]:
    """Extrapolate the step until an interval is known to hold a strong-Wolfe point (or one is found).

    Returns the bracket, whether its single point already satisfies the conditions, the line-search
    iterations and the function evaluations used.
    """
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _host(g_new.dot(d))
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    ls_iter = 0
    while ls_iter < max_ls:
        interval = ([t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], [gtd_prev, gtd_new])
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            return interval, False, ls_iter, ls_func_evals
        if abs(gtd_new) <= -c2 * gtd:
            return ([t], [f_new], [g_new], []), True, ls_iter, ls_func_evals
        if gtd_new >= 0:
            return interval, False, ls_iter, ls_func_evals
        # extrapolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _host(g_new.dot(d))
        ls_iter += 1
    # reached the maximum number of line-search iterations
    return ([0, t], [f, f_new], [g, g_new], []), False, ls_iter, ls_func_evals


def _zoom(
    obj_func: Callable[[np.ndarray, Any, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    d: np.ndarray,
    f: float,
    gtd: Any,
    brackets: _Bracket,
    done: bool,
    ls_iter: int,
    ls_func_evals: int,
    c1: float,
    c2: float,
    tolerance_change: float,
    max_ls: int,
) -> tuple[float, np.ndarray, Any, int]:
    """Shrink the bracket by cubic interpolation until a point satisfies the strong Wolfe conditions."""
    bracket, bracket_f, bracket_g, bracket_gtd = brackets
    d_norm = _host(abs(d).max())
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # too close to a bracket end and no progress last time: move away by 10% of the bracket
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _host(g_new.dot(d))
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def _direction(
    flat_grad: np.ndarray,
    prev_flat_grad: np.ndarray,
    step: np.ndarray,
    memory: tuple[list[Any], list[Any], list[Any]],
    H_diag: Any,
    history_size: int,
    al: list[Any],
) -> tuple[np.ndarray, Any]:
    """The next L-BFGS direction ``-H g`` and the new diagonal scale (as PyTorch computes them).

    The curvature pair of the last ``step`` (and the change of gradient it caused) enters the memory
    ``(old_dirs, old_stps, ro)`` -- updated in place, the oldest pair dropped beyond
    ``history_size`` -- when it is positive; then the two-loop recursion applies the inverse
    Hessian estimate to the gradient. ``al`` is scratch of ``history_size`` entries.
    """
    old_dirs, old_stps, ro = memory
    y = flat_grad - prev_flat_grad
    ys = _host(y.dot(step))
    if ys > 1e-10:  # update the memory
        if len(old_dirs) == history_size:
            old_dirs.pop(0)
            old_stps.pop(0)
            ro.pop(0)
        old_dirs.append(y)
        old_stps.append(step)
        ro.append(1.0 / ys)
        H_diag = ys / _host(y.dot(y))
    num_old = len(old_dirs)
    q = -flat_grad
    for i in range(num_old - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q += -al[i] * old_dirs[i]
    d = r = q * H_diag
    for i in range(num_old):
        be_i = old_dirs[i].dot(r) * ro[i]
        r += (al[i] - be_i) * old_stps[i]
    return d, H_diag


class LBFGS(Optimizer):
    """Limited-memory BFGS (Nocedal, 1980; Liu & Nocedal, 1989), PyTorch's interface and logic.

    ``step(closure)`` runs up to ``max_iter`` iterations (``max_eval`` function evaluations); the
    closure must zero the gradients, compute the loss, call ``backward()`` and return the loss.
    ``line_search_fn='strong_wolfe'`` enables the line search; without it the step is ``lr``.
    One param group only. ``clip_norm``/``clip_value`` clip every gradient L-BFGS reads.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> x = ds.tensor([3.0, -2.0], requires_grad=True)
        >>> opt = optim.LBFGS([x], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((x - ds.tensor([1.0, 2.0])) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> [round(v, 4) for v in x.tolist()]
        [1.0, 2.0]
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        if not options.get("flat", True):
            raise ArgumentError("LBFGS: flat=False is not available; L-BFGS works on one flat vector of all parameters")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(
            params,
            defaults,
            transform=T.identity(),
            **options,
        )
        if len(self.param_groups) != 1:
            raise ArgumentError(
                "LBFGS doesn't support per-parameter options (parameter groups); pass one list of parameters"
            )
        # Parameters of several dtypes (a float64 network and one float32 parameter) have one flat buffer
        # each: as PyTorch's torch.cat, the vectors the algorithm works on are then in their promoted
        # dtype, over the parameters in order, and each update is rounded to each parameter's dtype.
        # (read from the parameters: those of a lazy module have their dtype before their buffers exist)
        self._dtype = np.result_type(*(p.dtype for p in self.param_groups[0]["params"]))
        # PyTorch's state: a defaultdict keyed by parameter; the algorithm's memory lives in the first
        # parameter's entry, as torch names and shapes it (Tensors, lists of Tensors, numbers)
        self._lbfgs_state: defaultdict[Any, dict[Any, Any]] = defaultdict(dict)
        # id(Tensor in the state) -> (that Tensor, the array or number the algorithm works with), and
        # id(array or number) -> (it, its Tensor): the step reads and writes the state without copies
        # or device reads for the values it wrote itself
        self._memo: dict[int, tuple[Any, Any]] = {}
        self._memo_back: dict[int, tuple[Any, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # keyed by id(): meaningless in another process (the step reads the state's Tensors afresh)
        state.pop("_memo", None)
        state.pop("_memo_back", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._memo, self._memo_back = {}, {}

    # L-BFGS works on one flat vector of every parameter: parameters sharing memory are not split off
    _in_place_when_shared = False

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("LBFGS", "lr", group["lr"])
        check_nonnegative("LBFGS", "tolerance_grad", group["tolerance_grad"])
        check_nonnegative("LBFGS", "tolerance_change", group["tolerance_change"])
        for key in ("max_iter", "max_eval", "history_size"):
            v = group[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ArgumentError(f"LBFGS: invalid {key}={v!r}; expected a positive integer")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ArgumentError(
                f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {group['line_search_fn']!r}"
            )

    @property
    def _bucket(self) -> Any:
        """The one flat buffer of every parameter, or None when their dtypes differ (a buffer per dtype)."""
        buckets = self._buckets[0]
        return buckets[0] if len(buckets) == 1 else None

    @property
    def _params(self) -> list[Any]:
        b = self._bucket
        return b.params if b is not None else self.param_groups[0]["params"]

    def _flat_params(self) -> Any:
        """The parameters as one flat vector: the buffer itself (live), or a new vector in the promoted dtype."""
        b = self._bucket
        if b is not None:
            return b.flat
        xp = namespace_of(self._params[0].array)
        return xp.concatenate([p.array.reshape(-1).astype(self._dtype) for p in self._params])

    def _gather_flat_grad(self) -> np.ndarray:
        dtype = self._dtype
        xp = namespace_of(self._params[0].array)
        views = [
            xp.zeros(p.array.size, dtype) if p.grad is None else p.grad.array.reshape(-1).astype(dtype, copy=False)
            for p in self._params
        ]
        flat = xp.concatenate(views)
        if self.clip_value is not None or self.clip_norm is not None:
            self._clip([flat])
        return flat

    def _add_grad(self, step_size: Any, update: np.ndarray) -> None:
        b = self._bucket
        if b is not None:
            b.flat += step_size * update
        else:  # PyTorch's p.add_(update[part], alpha=t): in the promoted dtype, rounded to p's
            self._write_params(step_size * update, add=True)
        mark_written(self._params)  # PyTorch's p.add_(...): graphs that saved the old values refuse them

    def _write_params(self, values: Any, add: bool) -> None:
        """Each parameter's part of the flat ``values`` added to it or copied into it, in its own dtype."""
        start = 0
        for p in self._params:
            a = p.array
            part = values[start : start + a.size].reshape(a.shape)
            start += a.size
            if add:
                np.add(a, part, out=a, casting="unsafe")
            else:
                np.copyto(a, part, casting="unsafe")

    def _directional_evaluate(
        self, closure: Callable[[], Any], x: np.ndarray, t: Any, d: np.ndarray
    ) -> tuple[float, np.ndarray]:
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        if self._bucket is not None:
            self._bucket.flat[...] = x
        else:
            self._write_params(x, add=False)
        mark_written(self._params)  # PyTorch's p.copy_(x)
        return loss, flat_grad

    def _move(
        self,
        evaluate: Callable[[], Any],
        d: np.ndarray,
        t: Any,
        loss: float,
        flat_grad: np.ndarray,
        gtd: Any,
        evals_left: int,
        last: bool,
    ) -> tuple[float, np.ndarray, Any, int, bool]:
        """Moves the parameters along ``d``: by a strong-Wolfe line search from step ``t``, or by ``t``.

        Returns the new loss, gradient and step length, the function evaluations spent and whether the
        gradient is small enough to stop. A fixed step is not re-evaluated on the ``last`` iteration
        (the caller evaluates again).
        """
        group = self.param_groups[0]
        tolerance_grad = group["tolerance_grad"]
        if group["line_search_fn"] is not None:
            x_init = self._flat_params().copy()

            def obj_func(x: np.ndarray, t: Any, d: np.ndarray) -> tuple[float, np.ndarray]:
                return self._directional_evaluate(evaluate, x, t, d)

            loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=evals_left
            )
            self._add_grad(t, d)
            return loss, flat_grad, t, ls_func_evals, bool(_host(abs(flat_grad).max()) <= tolerance_grad)
        self._add_grad(t, d)
        if last:
            return loss, flat_grad, t, 0, False
        loss = float(evaluate())
        flat_grad = self._gather_flat_grad()
        return loss, flat_grad, t, 1, bool(_host(abs(flat_grad).max()) <= tolerance_grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # noqa: C901 (a faithful port)
        """Run one L-BFGS "step" (up to ``max_iter`` iterations); returns the first loss."""
        if closure is None:
            raise ArgumentTypeError("LBFGS.step needs a closure that re-evaluates the model and returns the loss")
        for b in self._buckets[0]:
            b.sync()
        group = self.param_groups[0]
        lr = group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        state = self._lbfgs
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        def evaluate() -> Any:
            with enable_grad():
                return closure()

        orig_loss = evaluate()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if _host(abs(flat_grad).max()) <= tolerance_grad:
            return orig_loss

        d, t = self._vector(state.get("d")), self._number(state.get("t"))
        old_dirs, old_stps = self._vectors(state.get("old_dirs")), self._vectors(state.get("old_stps"))
        ro = self._numbers(state.get("ro"))
        H_diag = self._number(state.get("H_diag"))
        prev_flat_grad, prev_loss = self._vector(state.get("prev_flat_grad")), state.get("prev_loss")
        al = self._numbers(state.get("al"))

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # compute the direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                assert old_dirs is not None and old_stps is not None and ro is not None and d is not None
                assert prev_flat_grad is not None
                if al is None:
                    al = [None] * history_size
                memory = (old_dirs, old_stps, ro)
                d, H_diag = _direction(flat_grad, prev_flat_grad, d * t, memory, H_diag, history_size, al)

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            # step length: the first step is scaled down to at most lr / |g|_1 (PyTorch, minFunc)
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / _host(abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = _host(flat_grad.dot(d))
            if gtd > -tolerance_change:  # not a descent direction
                break

            loss, flat_grad, t, ls_func_evals, opt_cond = self._move(
                evaluate, d, t, loss, flat_grad, gtd, max_eval - current_evals, last=n_iter == max_iter
            )
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping rules
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if _host(abs(d * t).max()) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        self._write_state(
            state, d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
            prev_flat_grad=prev_flat_grad, prev_loss=prev_loss, al=al,
        )  # fmt: skip
        for b in self._buckets[0]:
            b.steps += 1
            b.started[:] = True
        return orig_loss

    # -------------------------------------------------------------- state, as PyTorch keeps it
    @property
    def _lbfgs(self) -> dict[Any, Any]:
        """The first parameter's state entry, where PyTorch's LBFGS keeps its memory."""
        return self._lbfgs_state[self.param_groups[0]["params"][0]]

    @property
    def state(self) -> Any:
        """PyTorch's ``defaultdict(dict)`` keyed by parameter: after a step, ``opt.state[params[0]]``
        holds ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
        ``H_diag``, ``prev_flat_grad``, ``prev_loss`` and ``al``, named and shaped as PyTorch's (the
        vectors are flat Tensors over every parameter, ``ro``, ``al`` and ``H_diag`` 0-d Tensors).
        What is assigned there is what the next step uses; other keys are kept and saved.

        Example:
            >>> import downslope as ds
            >>> x = ds.tensor([3.0, -2.0], requires_grad=True)
            >>> opt = ds.optim.LBFGS([x], max_iter=3)
            >>> def closure():
            ...     opt.zero_grad()
            ...     loss = (x * x).sum()
            ...     loss.backward()
            ...     return loss
            >>> _ = opt.step(closure)
            >>> opt.state[x]["n_iter"], tuple(opt.state[x]["d"].shape)
            (2, (2,))
        """
        if "_lbfgs_state" not in self.__dict__:  # while Optimizer.__init__ runs
            return Optimizer.state.fget(self)  # type: ignore[attr-defined]
        return self._lbfgs_state

    @state.setter
    def state(self, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(f"LBFGS.state must be a dict, got {type(value).__name__}")
        fresh: defaultdict[Any, dict[Any, Any]] = defaultdict(dict)
        fresh.update(value)
        self._lbfgs_state = fresh

    def _vector(self, v: Any) -> Any:
        """A state vector (a Tensor, an array, None) as the flat array the algorithm works with."""
        if v is None:
            return None
        hit = self._memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        like_this = self._params[0].array  # the parameters' namespace
        size = sum(p.array.size for p in self._params)
        arr = v.detach().array if isinstance(v, Tensor) else like(v, like_this)
        arr = like(arr, like_this).astype(self._dtype, copy=False).reshape(-1)
        if arr.size != size:
            raise ShapeError(f"LBFGS: a state vector has {arr.size} elements, the parameters have {size} together")
        return arr

    def _vectors(self, vs: Any) -> list[Any] | None:
        return None if vs is None else [self._vector(v) for v in vs]

    def _number(self, v: Any) -> Any:
        """A state number (a 0-d Tensor or array, a Python number, None) as the algorithm holds it: a
        Python number, or a NumPy scalar of the parameters' dtype (its arithmetic rounds as PyTorch's)."""
        if v is None or isinstance(v, (int, float)):
            return v
        arr = v.detach().array if isinstance(v, Tensor) else v
        if type(arr) is np.ndarray:  # read afresh: a write into the 0-d Tensor counts
            return arr.astype(self._dtype, copy=False).reshape(())[()]
        hit = self._memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]  # on a device, no read back of a number the step wrote itself
        host = to_host(arr) if is_array(arr) else np.asarray(arr)  # host: one number, given by the caller
        return host.astype(self._dtype, copy=False).reshape(())[()]

    def _numbers(self, vs: Any) -> list[Any] | None:
        return None if vs is None else [self._number(v) for v in vs]

    def _as_state(self, x: Any) -> Any:
        """What the algorithm holds (an array, a NumPy scalar, a Python number, None) as PyTorch's state
        holds it: arrays and NumPy scalars as Tensors (the same Tensor while the value is the same)."""
        if x is None or isinstance(x, (int, float)) and not isinstance(x, np.generic):
            return x
        hit = self._memo_back.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        return wrap_array(x if is_array(x) else np.asarray(x))  # host: a NumPy scalar as a 0-d array

    def _write_state(self, state: dict[Any, Any], **values: Any) -> None:
        """Store the algorithm's values in ``state`` as PyTorch names and shapes them, and remember
        which Tensor stands for which value (the next step reads them back without a copy)."""
        memo: dict[int, tuple[Any, Any]] = {}
        back: dict[int, tuple[Any, Any]] = {}
        for key, value in values.items():
            if value is None and key == "al":
                continue  # made at the second iteration, as PyTorch's
            items = value if isinstance(value, list) else [value]
            out = [self._as_state(x) for x in items]
            for x, t in zip(items, out):
                if isinstance(t, Tensor):
                    memo[id(t)] = (t, x)
                    back[id(x)] = (x, t)
            state[key] = out if isinstance(value, list) else out[0]
        self._memo, self._memo_back = memo, back

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's ``LBFGS.state_dict()``: ``state`` keyed by parameter position (the memory under the
        first parameter's, its Tensors copied) and ``param_groups`` with ``params`` as positions; plus
        ``optimizer`` and ``options``, as the other optimizers save them."""
        saved = self._torch_state_dict_of(self._lbfgs_state)
        saved["optimizer"] = "LBFGS"
        saved["options"] = {
            "clip_norm": self.clip_norm,
            "clip_value": self.clip_value,
            "error_if_nonfinite": self.error_if_nonfinite,
        }
        return saved

    def _torch_state_dict_of(self, state: Any) -> dict[str, Any]:
        table = self.__dict__
        table["_torch_state"] = state
        try:
            return self._torch_state_dict()
        finally:
            table["_torch_state"] = defaultdict(dict)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`, by PyTorch's LBFGS (its tensors converted), or
        by an older downslope (an ``lbfgs`` entry); floating values are cast to the parameters' dtype."""
        name = "LBFGS"
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ArgumentError(
                f"{name}.load_state_dict: expected a dict from state_dict() with 'state' and 'param_groups'"
            )
        self._check_saved_groups(state_dict, name)
        state = dict(state_dict["state"])
        older = state_dict.get("lbfgs")
        if isinstance(older, Mapping):  # a downslope checkpoint from before the state was PyTorch's
            state = {0: _from_older(older)}
        table = self.__dict__
        table["_torch_state"] = defaultdict(dict)
        try:
            self._load_torch_state_dict({"state": state, "param_groups": state_dict["param_groups"]})
            loaded = table["_torch_state"]
        finally:
            table["_torch_state"] = defaultdict(dict)
        for entry in loaded.values():
            for key in ("func_evals", "n_iter"):
                if isinstance(entry, dict) and key in entry and not isinstance(entry[key], int):
                    entry[key] = _count(_host_value(entry[key]))
        options = state_dict.get("options", {})
        self.clip_norm = options.get("clip_norm", self.clip_norm)
        self.clip_value = options.get("clip_value", self.clip_value)
        self.error_if_nonfinite = options.get("error_if_nonfinite", self.error_if_nonfinite)
        self._lbfgs_state = loaded
        self._memo, self._memo_back = {}, {}


def _from_older(saved: Mapping[str, Any]) -> dict[str, Any]:
    """The memory an older downslope saved (stacked rows, NaN for an unset ``al``) as PyTorch keeps it."""
    out: dict[str, Any] = {k: saved[k] for k in ("func_evals", "n_iter", "d", "t", "H_diag", "prev_flat_grad",
                                                  "prev_loss") if k in saved}  # fmt: skip
    for key in ("old_dirs", "old_stps"):
        if key in saved:
            out[key] = list(np.asarray(_host_value(saved[key])))  # host: a saved checkpoint
    if "ro" in saved:
        out["ro"] = list(np.asarray(_host_value(saved["ro"])))  # host: see above
    if "al" in saved:
        values = np.asarray(_host_value(saved["al"]))  # host: see above
        out["al"] = [None if math.isnan(a) else np.asarray(a) for a in values]
    return out

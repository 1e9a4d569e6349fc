"""The implicit reparameterisation gradient of a Beta (and so of each Dirichlet component) draw:
d x / d alpha at a fixed CDF value, ``-(dF/dalpha)(x; alpha, beta) / pdf(x; alpha, beta)``, as torch's
``_dirichlet_grad`` computes it (ATen's ``dirichlet_grad_one``: Taylor series near x = 0 and x = 1, a
Rice saddle-point expansion when both parameters are large, a rational correction to an analytic
approximation elsewhere), ported over float64 host arrays: each branch runs once, vectorised, on the
elements torch sends to it.

Example:
    >>> import numpy as np
    >>> from downslope.distributions._beta_grad import dirichlet_grad
    >>> x, a, b = 0.3, 0.5, 1.5
    >>> round(float(dirichlet_grad(np.array(x), np.array(a), np.array(a + b)) * (1 - x)), 4)
    0.6063
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._special import digamma_array

__all__ = ["dirichlet_grad"]

# torch's rational-correction coefficients c[numerator/denominator][i: power of u][j: power of a][k: power of b]
_C = np.array(
    [
        [
            [
                [1.003668233, -0.01061107488, -0.0657888334, 0.01201642863],
                [0.6336835991, -0.3557432599, 0.05486251648, -0.001465281033],
                [-0.03276231906, 0.004474107445, 0.002429354597, -0.0001557569013],
            ],
            [
                [0.221950385, -0.3187676331, 0.01799915743, 0.01074823814],
                [-0.2951249643, 0.06219954479, 0.01535556598, 0.001550077057],
                [0.02155310298, 0.004170831599, 0.001292462449, 6.976601077e-05],
            ],
            [
                [-0.05980841433, 0.008441916499, 0.01085618172, 0.002319392565],
                [0.02911413504, 0.01400243777, -0.002721828457, 0.000751041181],
                [0.005900514878, -0.001936558688, -9.495446725e-06, 5.385558597e-05],
            ],
        ],
        [
            [
                [1, -0.02924021934, -0.04438342661, 0.007285809825],
                [0.6357567472, -0.3473456711, 0.05454656494, -0.002407477521],
                [-0.03301322327, 0.004845219414, 0.00231480583, -0.0002307248149],
            ],
            [
                [0.5925320577, -0.1757678135, 0.01505928619, 0.000564515273],
                [0.1014815858, -0.06589186703, 0.01272886114, -0.0007316646956],
                [-0.007258481865, 0.001096195486, 0.0003934994223, -4.12701925e-05],
            ],
            [
                [0.06469649321, -0.0236701437, 0.002902096474, -5.896963079e-05],
                [0.001925008108, -0.002869809258, 0.0008000589141, -6.063713228e-05],
                [-0.0003477407336, 6.959756487e-05, 1.097287507e-05, -1.650964693e-06],
            ],
        ],
    ]
)


def _nan_to_zero(a: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(a), 0.0, a)


def _beta_grad_alpha_small(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Taylor series in x for x near 0 (torch's ``_beta_grad_alpha_small``)."""
    factor = digamma_array(alpha) - digamma_array(alpha + beta) - np.log(x)
    numer = np.ones_like(x)
    series = numer / alpha * (factor + 1 / alpha)
    for i in range(1, 11):
        numer = numer * ((i - beta) * x / i)
        denom = alpha + i
        series = series + numer / denom * (factor + 1 / denom)
    return _nan_to_zero(x * np.power(1 - x, -beta) * series)


def _beta_grad_beta_small(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """d x / d beta by a Taylor series in x for x near 0 (torch's ``_beta_grad_beta_small``)."""
    factor = digamma_array(alpha + beta) - digamma_array(beta)
    numer, betas, dbetas = np.ones_like(x), np.ones_like(x), np.zeros_like(x)
    series = factor / alpha
    for i in range(1, 9):
        numer = numer * (-x / i)
        dbetas = dbetas * (beta - i) + betas
        betas = betas * (beta - i)
        series = series + numer / (alpha + i) * (dbetas + factor * betas)
    return _nan_to_zero(-np.power(1 - x, 1 - beta) * series)


def _beta_grad_alpha_mid(x: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Rice saddle-point expansion for large alpha and beta (torch's ``_beta_grad_alpha_mid``)."""
    total = alpha + beta
    mean = alpha / total
    std = np.sqrt(alpha * beta / (total + 1)) / total
    # near the mean, a polynomial avoids the expansion's singularity at x = mean
    poly = 47 * x * (beta * beta) * (beta * beta) + alpha * (
        (43 + 20 * (16 + 27 * beta) * x) * (beta * beta) * beta
        + alpha
        * (
            3 * (59 + 180 * beta - 90 * x) * (beta * beta)
            + alpha * ((453 + 1620 * beta * (1 - x) - 455 * x) * beta + alpha * (8 * (1 - x) * (135 * beta - 11)))
        )
    )
    prefactor_num = (1 + 12 * alpha) * (1 + 12 * beta) / (total * total)
    prefactor_den = 12960 * alpha * alpha * alpha * beta * beta * (1 + 12 * total)
    near_mean = prefactor_num / (1 - x) * poly / prefactor_den

    prefactor = -x / np.sqrt(2 * alpha * beta / total)
    stirling = (
        (1 + 1 / (12 * alpha) + 1 / (288 * alpha * alpha))
        * (1 + 1 / (12 * beta) + 1 / (288 * beta * beta))
        / (1 + 1 / (12 * total) + 1 / (288 * total * total))
    )
    term1_num = 2 * (alpha * alpha) * (x - 1) + alpha * beta * (x - 1) - x * (beta * beta)
    axbx = alpha * (x - 1) + beta * x
    term1_den = np.sqrt(2 * alpha / beta) * np.power(total, 1.5) * axbx * axbx
    term1 = term1_num / term1_den
    term2 = 0.5 * np.log(alpha / (total * x))
    term3 = np.sqrt(8 * alpha * beta / total) / (beta * x + alpha * (x - 1))
    term4_base = beta * np.log(beta / (total * (1 - x))) + alpha * np.log(alpha / (total * x))
    term4 = np.power(term4_base, -1.5)
    term1234 = term1 + term2 * (term3 + np.where(x < mean, term4, -term4))
    far = stirling * prefactor * term1234
    return np.where((mean - 0.1 * std <= x) & (x <= mean + 0.1 * std), near_mean, far)


def _beta_grad_rational(x: np.ndarray, alpha: np.ndarray, total: np.ndarray) -> np.ndarray:
    """A rational correction to an analytic approximation (the rest of torch's ``dirichlet_grad_one``)."""
    u = np.log(x)
    a = np.log(alpha) - u
    b = np.log(total) - a
    pow_u = (np.ones_like(u), u, u * u)
    pow_a = (np.ones_like(a), a, a * a)
    p = np.zeros_like(x)
    q = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            ua = pow_u[i] * pow_a[j]
            cp, cq = _C[0, i, j], _C[1, i, j]
            p = p + ua * (cp[0] + b * (cp[1] + b * (cp[2] + b * cp[3])))
            q = q + ua * (cq[0] + b * (cq[1] + b * (cq[2] + b * cq[3])))
    approx = x * (digamma_array(total) - digamma_array(alpha)) / (total - alpha)
    return p / q * approx


def dirichlet_grad(x: Any, alpha: Any, total: Any) -> np.ndarray:
    """torch's ``_dirichlet_grad(x, alpha, total)``: ``-(dF/dalpha)(x; alpha, total - alpha) / pdf / (1 - x)``
    elementwise for a Beta(alpha, total - alpha) draw ``x`` (the Dirichlet component x_i with alpha_i and
    total = sum(alpha)), in float64. Host arrays of one broadcast shape."""
    x, alpha, total = np.broadcast_arrays(
        np.asarray(x, np.float64),  # host: the gradient is host work, as the gamma draw is
        np.asarray(alpha, np.float64),  # host: as above
        np.asarray(total, np.float64),  # host: as above
    )
    beta = total - alpha
    boundary = total * x * (1 - x)
    near_0 = (x <= 0.5) & (boundary < 2.5)
    near_1 = ~near_0 & (x >= 0.5) & (boundary < 0.75)
    large = ~near_0 & ~near_1 & (alpha > 6) & (beta > 6)
    rest = ~(near_0 | near_1 | large)
    out = np.empty_like(x)
    with np.errstate(all="ignore"):  # the formulas' own NaN (0 * inf) are handled as torch's are
        # each branch on the elements torch sends to it
        if near_0.any():  # host: a branch no element takes is skipped
            out[near_0] = _beta_grad_alpha_small(x[near_0], alpha[near_0], beta[near_0])
        if near_1.any():  # host: as above
            out[near_1] = -_beta_grad_beta_small(1 - x[near_1], beta[near_1], alpha[near_1])
        if large.any():  # host: as above
            out[large] = _beta_grad_alpha_mid(x[large], alpha[large], beta[large])
        if rest.any():  # host: as above
            out[rest] = _beta_grad_rational(x[rest], alpha[rest], total[rest])
    return out

"""Probability distributions with PyTorch's names (``torch.distributions``): sampling, ``log_prob``,
``entropy``, moments, ``cdf``/``icdf``, differentiable in their parameters (``rsample`` where PyTorch
has it), with ``validate_args`` checking parameters and values as PyTorch does.

Continuous: :class:`Normal`, :class:`MultivariateNormal`, :class:`LowRankMultivariateNormal`, :class:`Uniform`, :class:`Exponential`,
:class:`Laplace`, :class:`Cauchy`, :class:`Gumbel`, :class:`HalfNormal`, :class:`LogNormal`,
:class:`StudentT`, :class:`Gamma`, :class:`Chi2`, :class:`Beta`, :class:`Dirichlet`, :class:`Weibull`,
:class:`Pareto`. Discrete: :class:`Categorical`,
:class:`OneHotCategorical`, :class:`Bernoulli`, :class:`Geometric`, :class:`Binomial`,
:class:`Poisson`, :class:`NegativeBinomial`, :class:`Multinomial`. Built from others: :class:`Independent`, :class:`MixtureSameFamily`,
:class:`TransformedDistribution` (with :class:`ExpTransform`, :class:`AffineTransform`,
:class:`SigmoidTransform`, :class:`TanhTransform`), :class:`RelaxedBernoulli`,
:class:`RelaxedOneHotCategorical`. :func:`kl_divergence` covers the common pairs (``register_kl``
adds more). Formulas and shapes follow PyTorch's; the random draws come from the library's generator
(``ds.manual_seed``), so they are repeatable but not PyTorch's numbers.

Example:
    >>> import downslope as ds
    >>> from downslope.distributions import Categorical
    >>> logits = ds.tensor([0.0, 1.0, 2.0], requires_grad=True)
    >>> dist = Categorical(logits=logits)
    >>> dist.log_prob(ds.tensor(2)).backward()
    >>> round(float(dist.entropy()), 4), [round(float(g), 4) for g in logits.grad]
    (0.8324, [-0.09, -0.2447, 0.3348])
"""

from __future__ import annotations

from . import constraints
from .compose import (
    ExpRelaxedCategorical,
    Independent,
    LogitRelaxedBernoulli,
    MixtureSameFamily,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from .continuous import (
    Beta,
    Cauchy,
    Chi2,
    Dirichlet,
    Exponential,
    Gamma,
    Gumbel,
    HalfNormal,
    Laplace,
    Normal,
    StudentT,
    Uniform,
)
from .discrete import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson
from .distribution import Distribution
from .families import Multinomial, NegativeBinomial, Pareto, Weibull
from .kl import kl_divergence, register_kl
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .multivariate_normal import MultivariateNormal
from .transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    LogNormal,
    SigmoidTransform,
    TanhTransform,
    Transform,
    TransformedDistribution,
)

__all__ = [
    "AffineTransform",
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ComposeTransform",
    "Dirichlet",
    "Distribution",
    "ExpRelaxedCategorical",
    "ExpTransform",
    "Exponential",
    "Gamma",
    "Geometric",
    "Gumbel",
    "HalfNormal",
    "Independent",
    "Laplace",
    "LogNormal",
    "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "Pareto",
    "Poisson",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "SigmoidTransform",
    "StudentT",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "Uniform",
    "Weibull",
    "constraints",
    "kl_divergence",
    "register_kl",
]

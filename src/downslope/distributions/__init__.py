"""Probability distributions with PyTorch's names (``torch.distributions``): sampling, ``log_prob``,
``entropy``, moments, ``cdf``/``icdf``, differentiable in their parameters (``rsample`` where PyTorch
has it), with ``validate_args`` checking parameters and values as PyTorch does.

Continuous: :class:`Normal`, :class:`MultivariateNormal`, :class:`LowRankMultivariateNormal`, :class:`Uniform`, :class:`Exponential`,
:class:`Laplace`, :class:`Cauchy`, :class:`Gumbel`, :class:`HalfNormal`, :class:`LogNormal`,
:class:`StudentT`, :class:`Gamma`, :class:`Chi2`, :class:`Beta`, :class:`Dirichlet`, :class:`Weibull`,
:class:`Pareto`, :class:`Wishart`. Discrete: :class:`Categorical`,
:class:`OneHotCategorical`, :class:`Bernoulli`, :class:`Geometric`, :class:`Binomial`,
:class:`Poisson`, :class:`NegativeBinomial`, :class:`Multinomial`. Built from others: :class:`Independent`, :class:`MixtureSameFamily`,
:class:`TransformedDistribution` (with :class:`ExpTransform`, :class:`AffineTransform`,
:class:`SigmoidTransform`, :class:`TanhTransform`), :class:`RelaxedBernoulli`,
:class:`RelaxedOneHotCategorical`. :func:`kl_divergence` covers the common pairs (``register_kl``
adds more). Formulas and shapes follow PyTorch's; the random draws come from the library's generator
(``ds.manual_seed``), so they are repeatable but not PyTorch's numbers. PyTorch's per-family module
paths work too (``from downslope.distributions.normal import Normal``), as does
``downslope.distributions.utils``.

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

from typing import Any

from . import constraints, transforms
from .compose import (
    ExpRelaxedCategorical,
    Independent,
    LogitRelaxedBernoulli,
    MixtureSameFamily,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from .constraint_registry import biject_to, transform_to
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
from .kl import KLNotImplementedError, kl_divergence, register_kl
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .more import (
    ContinuousBernoulli,
    ExponentialFamily,
    FisherSnedecor,
    GeneralizedPareto,
    HalfCauchy,
    InverseGamma,
    Kumaraswamy,
    LKJCholesky,
    LogisticNormal,
    OneHotCategoricalStraightThrough,
    VonMises,
)
from .multivariate_normal import MultivariateNormal
from .transforms import (
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LogNormal,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    TransformedDistribution,
    identity_transform,
)
from .wishart import Wishart

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "Bernoulli",
    "Beta",
    "Binomial",
    "CatTransform",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ComposeTransform",
    "ContinuousBernoulli",
    "CorrCholeskyTransform",
    "CumulativeDistributionTransform",
    "Dirichlet",
    "Distribution",
    "ExpRelaxedCategorical",
    "ExpTransform",
    "Exponential",
    "ExponentialFamily",
    "FisherSnedecor",
    "Gamma",
    "GeneralizedPareto",
    "Geometric",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "Independent",
    "IndependentTransform",
    "InverseGamma",
    "KLNotImplementedError",
    "Kumaraswamy",
    "LKJCholesky",
    "Laplace",
    "LogNormal",
    "LogisticNormal",
    "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal",
    "LowerCholeskyTransform",
    "MixtureSameFamily",
    "Multinomial",
    "MultivariateNormal",
    "NegativeBinomial",
    "Normal",
    "OneHotCategorical",
    "OneHotCategoricalStraightThrough",
    "Pareto",
    "Poisson",
    "PositiveDefiniteTransform",
    "PowerTransform",
    "RelaxedBernoulli",
    "RelaxedOneHotCategorical",
    "ReshapeTransform",
    "SigmoidTransform",
    "SoftmaxTransform",
    "SoftplusTransform",
    "StackTransform",
    "StickBreakingTransform",
    "StudentT",
    "TanhTransform",
    "Transform",
    "TransformedDistribution",
    "Uniform",
    "VonMises",
    "Weibull",
    "Wishart",
    "biject_to",
    "constraints",
    "identity_transform",
    "kl_divergence",
    "register_kl",
    "transform_to",
    "transforms",
]

# torch.distributions' per-family modules, imported when first named (``ds.distributions.normal``);
# ``from downslope.distributions.normal import Normal`` needs no help.
_SUBMODULES = frozenset(
    {
        "bernoulli",
        "beta",
        "binomial",
        "categorical",
        "cauchy",
        "chi2",
        "continuous_bernoulli",
        "dirichlet",
        "exp_family",
        "exponential",
        "fishersnedecor",
        "gamma",
        "generalized_pareto",
        "geometric",
        "gumbel",
        "half_cauchy",
        "half_normal",
        "independent",
        "inverse_gamma",
        "kumaraswamy",
        "laplace",
        "lkj_cholesky",
        "log_normal",
        "logistic_normal",
        "mixture_same_family",
        "multinomial",
        "negative_binomial",
        "normal",
        "one_hot_categorical",
        "pareto",
        "poisson",
        "relaxed_bernoulli",
        "relaxed_categorical",
        "studentT",
        "transformed_distribution",
        "uniform",
        "utils",
        "von_mises",
        "weibull",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

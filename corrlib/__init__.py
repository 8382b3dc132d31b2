"""corrlib: the helper library of the course *Correlation in Deep Learning*.

Data are laid out ``(n_samples, n_features)``. The statistics core is available at the top
level (``corrlib.pearson``, ``corrlib.corr_matrix``, ...); the larger topics live in submodules
that are imported on first use (``corrlib.plot``, ``corrlib.models``, ``corrlib.training``, ...),
so that ``import corrlib`` stays quick: it loads neither matplotlib nor ``scipy.stats`` nor
``scipy.fft`` (those are imported by the functions that need them, when first called).
"""

from __future__ import annotations

from corrlib._lazy import lazy_attributes
from corrlib._warnings import ConstantInputWarning
from corrlib.autocorrelation import autocorr, crosscorr, estimate_lag
from corrlib.correlation import corr_matrix, pearson, spearman
from corrlib.inference import PearsonTestResult, fisher_ci, pearson_test, spearman_test
from corrlib.reproducibility import get_device, seed_everything
from corrlib.streaming import RunningCorrelation
from corrlib.versions import show_versions

__version__ = "0.1.0"

# Every public submodule, each reachable as ``corrlib.<name>`` before anything else is touched
# (those imported above already are; the others are imported on first attribute access).
_SUBMODULES = (
    "activations",
    "autocorrelation",
    "bootstrap",
    "channels",
    "checkpoints",
    "comparison",
    "correlation",
    "data",
    "ensemble",
    "history",
    "hooks",
    "inference",
    "ledger",
    "losses",
    "models",
    "monitor",
    "plot",
    "ranking",
    "reproducibility",
    "similarity",
    "sparse",
    "streaming",
    "streaming_cka",
    "summaries",
    "training",
    "versions",
    "whitening",
)

# Top-level names that live in a lazily imported submodule (each module is in _SUBMODULES).
_LAZY_NAMES = {
    "threshold_corr": "sparse",
    "ledoit_wolf": "sparse",
    "cov_to_corr": "sparse",
    "partial_corr": "sparse",
    "channel_correlation": "channels",
    "gram_matrix": "channels",
    "bootstrap_ci": "bootstrap",
}

__all__ = [
    "ConstantInputWarning",
    "PearsonTestResult",
    "RunningCorrelation",
    "autocorr",
    "corr_matrix",
    "crosscorr",
    "estimate_lag",
    "fisher_ci",
    "get_device",
    "pearson",
    "pearson_test",
    "seed_everything",
    "show_versions",
    "spearman",
    "spearman_test",
    *_SUBMODULES,
    *_LAZY_NAMES,
]


__getattr__ = lazy_attributes(__name__, _SUBMODULES, _LAZY_NAMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Look inside a network while it runs (the names the course notebooks import from here).

The pieces live in modules of their own, re-exported here:

* :mod:`corrlib.activations`: :class:`ActivationRecorder` records named layers' outputs with
  forward hooks; :func:`as_feature_matrix` lays them out as ``(n_samples, n_features)``;
* :mod:`corrlib.monitor`: :class:`FeatureCorrelationMonitor` follows the correlation between
  a layer's features over training;
* :mod:`corrlib.summaries`: :func:`mean_abs_offdiag` and :func:`effective_rank` summarise a
  correlation matrix in one number.
"""

from __future__ import annotations

from corrlib.activations import ActivationRecorder, as_feature_matrix
from corrlib.monitor import FeatureCorrelationMonitor
from corrlib.summaries import effective_rank, mean_abs_offdiag

__all__ = [
    "ActivationRecorder",
    "FeatureCorrelationMonitor",
    "as_feature_matrix",
    "effective_rank",
    "mean_abs_offdiag",
]

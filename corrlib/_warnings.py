"""Warning classes raised by corrlib (modelled on ``scipy.stats``' own)."""

from __future__ import annotations


class ConstantInputWarning(RuntimeWarning):
    """An input was exactly constant, so its correlation is undefined and reported as NaN.

    As in scipy, constancy is judged exactly (every value equal), never by a variance
    threshold: data on a tiny scale, such as noise of size 1e-9, are not constant.
    """

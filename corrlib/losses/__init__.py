"""Losses built from correlation: DeCov (decorrelating hidden units) and Barlow Twins."""

from corrlib.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss, cross_correlation
from corrlib.losses.decov import DeCovLoss, decov_loss

__all__ = [
    "BarlowTwinsLoss",
    "DeCovLoss",
    "barlow_twins_loss",
    "cross_correlation",
    "decov_loss",
]

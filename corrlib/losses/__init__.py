"""Losses built from correlation: DeCov, Barlow Twins and the eps-safe ``1 - r`` loss."""

from corrlib.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss, cross_correlation
from corrlib.losses.correlation_loss import CorrelationLoss, correlation_loss
from corrlib.losses.decov import DeCovLoss, decov_loss

__all__ = [
    "BarlowTwinsLoss",
    "CorrelationLoss",
    "DeCovLoss",
    "barlow_twins_loss",
    "correlation_loss",
    "cross_correlation",
    "decov_loss",
]

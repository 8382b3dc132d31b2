"""Losses built from correlation: DeCov (decorrelating hidden units) and Barlow Twins."""

from corrlib.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from corrlib.losses.decov import DeCovLoss, decov_loss

__all__ = ["BarlowTwinsLoss", "DeCovLoss", "barlow_twins_loss", "decov_loss"]

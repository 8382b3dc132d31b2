"""Shared test set-up: a non-interactive plotting backend and a fixed torch thread count."""

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)

"""corrlib's one way to warn, and its warning class (modelled on ``scipy.stats``' own).

Every warning of corrlib goes through :func:`warn`, which points it at the first line outside
corrlib: the user's line that called a corrlib function, however many corrlib functions lie
in between. Nothing is counted by hand and nothing is passed down for later.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

# Frames in these directories are skipped: corrlib's own, and torch's wrappers that stand
# between a caller and a corrlib method (``nn.Module.__call__``, ``torch.no_grad``).
_PACKAGE = os.path.dirname(__file__) + os.sep  # as code objects spell it
_WRAPPERS = tuple(
    os.path.join(os.path.dirname(torch.__file__), *parts)
    for parts in (("nn", "modules", "module.py"), ("utils", "_contextlib.py"))
)


class ConstantInputWarning(RuntimeWarning):
    """An input was exactly constant, so its correlation is undefined and reported as NaN.

    As in scipy, constancy is judged exactly (every value equal), never by a variance
    threshold: data on a tiny scale, such as noise of size 1e-9, are not constant.
    """


def constant_input_message(inputs: str, statistic: str = "correlation coefficient") -> str:
    """The one wording of the constant-input warning, after scipy's (``inputs`` names them)."""
    return f"An input array is constant ({inputs}); the {statistic} is not defined (NaN)."


def _outside_corrlib(filename: str) -> bool:
    return not (filename.startswith(_PACKAGE) or filename in _WRAPPERS)


def stacklevel() -> int:
    """The ``stacklevel`` that names the first frame outside corrlib, for a warning raised
    by the function that calls this one."""
    frame = sys._getframe(1)  # the corrlib function that warns: level 1
    level = 1
    while frame.f_back is not None and not _outside_corrlib(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Warn with ``message``, pointing at the first line outside corrlib."""
    warnings.warn(message, category, stacklevel=stacklevel())

"""Shared test set-up: a non-interactive plotting backend, a fixed torch thread count, and the
``course`` marker on the tests of the course rather than of the library."""

from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(2)

# Tests that check the course (notebooks, website, browser, editions, ledger), not corrlib:
# `pytest -m "not course"` leaves them out and checks the library alone.
COURSE_TEST_FILES = {
    "test_course_layout.py",
    "test_course_marker.py",
    "test_ddp_example.py",
    "test_jupyterlab.py",
    "test_ledger.py",
    "test_nbgrader.py",
    "test_site.py",
    "test_student.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if path.suffix == ".ipynb" or path.name in COURSE_TEST_FILES or "tools" in path.parts:
            item.add_marker(pytest.mark.course)

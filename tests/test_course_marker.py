"""The ``course`` marker: ``pytest -m "not course"`` checks the library without the course."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _collected(*args: str) -> str:
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    out = subprocess.run(
        [*cmd, "-n", "0", "--nbval", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_not_course_leaves_out_notebooks_site_and_editions():
    library = _collected("-m", "not course")
    assert "test_comparison.py" in library and "test_correlation.py" in library
    for course_part in (".ipynb", "test_site.py", "test_nbgrader.py", "test_student.py", "tools/"):
        assert course_part not in library, course_part
    course = _collected("-m", "course")
    assert "05_optimization.ipynb" in course and "test_site.py" in course
    assert "test_comparison.py" not in course

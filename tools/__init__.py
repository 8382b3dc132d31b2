"""Build tools for the course: the student edition, the nbgrader course and the course website.

Run them from the repository root: ``python -m tools.make_student``,
``python -m tools.make_nbgrader`` and ``python -m tools.make_html`` (or ``make student``,
``make nbgrader`` and ``make html``).
"""

"""Build tools for the course: the student edition of the notebooks and the course website.

Run them from the repository root: ``python -m tools.make_student`` and
``python -m tools.make_html`` (or ``make student`` and ``make html``).
"""

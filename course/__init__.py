"""The course's base layer, shared by the maintainer's scripts (``tools/``), the instructor's grading toolkit
(``grading/toolkit/``) and the tests: where the course lives, what is in its lessons, how nbgrader is run.
It imports neither of them."""

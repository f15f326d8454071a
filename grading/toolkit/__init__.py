"""The instructor's grading toolkit: collect, autograde in parallel, feedback without hidden tests, export.

``python -m grading.toolkit --help`` lists the commands; grading/README.md (the instructors' guide) has
the workflow."""

"""The code the grader puts into a grading kernel: the agent that serves the learner's answers to the trusted
checker, and the plain-data codec both sides use. The sandbox binds this folder read-only into every kernel."""

from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parent

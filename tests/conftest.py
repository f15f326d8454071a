import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `tools` and `tests` import as packages wherever pytest is started


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Keep each notebook's nbval cells on one xdist worker (they share a kernel); everything else spreads out
    freely under ``--dist loadgroup``."""
    for item in items:
        if item.nodeid.endswith(".ipynb") or ".ipynb::" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))

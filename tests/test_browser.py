"""Lesson 00 in a real browser, the way a learner meets it: JupyterLab started exactly as `make lab` starts it,
the notebook opened in headless Chromium, its first cells run through the UI (Shift+Enter), and the rendered
output checked. Fails when the page, the kernel or nbgrader's JupyterLab extension does not load.

Needs Debian's `chromium` package (``.ci/run`` installs it) and the `playwright` Python package (pinned in
requirements.txt; its own browser download is never used). Without Chromium the test skips on a learner's
machine, and fails in CI (``CI`` set), where it must run. A screenshot is kept in ``tests/artifacts/``.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from course.lessons import NOTEBOOKS, REPO, notebook_path, read

LESSON = "00-orientation"
ARTIFACTS = REPO / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "lesson00-jupyterlab.png"  # the page when the test ends (passed or not)
SCREENSHOT_TOP = ARTIFACTS / "lesson00-jupyterlab-top.png"  # the top of the notebook, after the run
SERVER_LOG = ARTIFACTS / "lesson00-jupyterlab-server.log"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The last cell run through the UI: the article's first example, whose shapes the test reads back.
LAST_CELL_MARKER = "output, hn = gru(input_seq, h0)"
SERVER_START_S = 60
UI_WAIT_MS = 45_000

def unavailable(reason):
    """Skip on a learner's machine; in CI the browser test must run, so fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}. CI must run the browser test: .ci/run installs Debian's chromium package.")
    pytest.skip(f"{reason}: install Chromium (Debian/Ubuntu: apt install chromium) to run the browser test")


def find_chromium():
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", timeout=5):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def quiet_lab_settings(settings_dir):
    """User settings for this server only: no autosave (the course's notebook must stay untouched) and no
    news prompt over the notebook."""
    for plugin, settings in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started by `make lab` (the install step is taken as done), on 127.0.0.1 with a random token;
    stopped at the end, whatever happens."""
    home = tmp_path_factory.mktemp("lab")
    quiet_lab_settings(home / "settings")
    port, token = free_port(), os.urandom(16).hex()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token} "
            # Checkpoints go to the temporary folder, so the course's notebooks/ folder stays as released.
            f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}")
    ARTIFACTS.mkdir(exist_ok=True)
    log = SERVER_LOG.open("w")
    # `-o .venv/.installed`: use the installed environment as it is (`make test` has just installed it).
    server = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "lab", f"ARGS={args}"],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"`make lab` exited with {server.returncode}:\n{SERVER_LOG.read_text()[-3000:]}")
            try:
                if http(f"{url}/api/status?token={token}")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{SERVER_LOG.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url, token
    finally:
        try:
            http(f"{url}/api/shutdown?token={token}", method="POST")  # stops kernels too
            server.wait(timeout=15)
        except Exception:
            pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    if not chromium:
        unavailable("Chromium not found (looked for $CHROMIUM, chromium, chromium-browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh, temporary user data dir.
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def cells_to_run():
    """How many cells, from the top, Shift+Enter runs: up to and including the article's first example."""
    cells = read(notebook_path(LESSON, NOTEBOOKS)).cells
    return next(i for i, c in enumerate(cells) if LAST_CELL_MARKER in c.source) + 1


def wait_for(locator, what):
    """Wait (bounded) until ``locator`` is visible; on time-out, fail saying what did not load."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.wait_for(timeout=UI_WAIT_MS)
    except PlaywrightTimeout:
        log = SERVER_LOG.read_text()[-2000:] if SERVER_LOG.exists() else ""
        pytest.fail(f"{what} within {UI_WAIT_MS // 1000} s (screenshot: {SCREENSHOT.relative_to(REPO)}); "
                    f"server log:\n{log}")


def test_lesson_00_runs_in_jupyterlab_in_chromium(browser, lab):
    url, token = lab
    path = notebook_path(LESSON, NOTEBOOKS)
    before = path.read_bytes()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{url}/lab/tree/{LESSON}/{LESSON}.ipynb?reset&token={token}", timeout=UI_WAIT_MS)
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        cells = notebook.locator(".jp-Cell")
        wait_for(cells.first, "the notebook did not render")
        wait_for(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"Python 3 \(ipykernel\) \| Idle")),
                 "the kernel did not start (the status bar never said 'Python 3 (ipykernel) | Idle')")

        # nbgrader's JupyterLab extension is loaded, enabled, and its Validate button is in the notebook toolbar.
        config = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent)")
        loaded = [e["name"] for e in config.get("federated_extensions", [])]
        assert "@jupyter/nbgrader" in loaded, f"nbgrader's JupyterLab extension is not installed: {loaded}"
        disabled = [name for name in config.get("disabledExtensions", []) if "nbgrader" in name]
        assert not disabled, f"nbgrader's JupyterLab extension is disabled: {disabled}"
        wait_for(page.locator(".jp-NotebookPanel-toolbar").get_by_role("button", name="Validate"),
                 "nbgrader's Validate button did not appear in the notebook toolbar")

        # Select the first cell (by its prompt area, not the badge's link) and run cell after cell, as a learner does.
        count = cells_to_run()
        cells.first.locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Escape")
        for _ in range(count):
            page.keyboard.press("Shift+Enter")
        wait_for(cells.nth(count - 1).locator(".jp-OutputArea-output", has_text="torch.Size([5, 32, 20])"),
                 "the kernel did not run the first cells (no 'torch.Size([5, 32, 20])' under the first example)")

        # text_content, not inner_text: JupyterLab skips rendering cells out of view (content-visibility).
        text = notebook.text_content()
        assert re.search(r"Python 3\.\d+\.\d+ · PyTorch \S+ · device: (cpu|cuda|mps)", text), "no set-up line"
        assert "A small computation on your device gives 12.0" in text
        assert "CheckFailed: output shape: expected shape (5, 32, 20), got (5, 32, 40)" in text
        assert "torch.Size([1, 32, 20])" in cells.nth(count - 1).text_content()
        colab = cells.nth(1)
        assert "google.colab" in colab.text_content(), "the second cell is not the Colab set-up cell"
        assert colab.locator(".jp-InputArea-prompt").text_content().strip() == "[1]:", "the Colab cell did not run"
        assert colab.locator(".jp-OutputArea-output").count() == 0, "the Colab cell printed something outside Colab"
        stderr = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert stderr.count() == 0, f"output on stderr: {stderr.all_text_contents()}"
        assert not errors, f"JavaScript errors on the page: {errors}"
        cells.first.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # let the browser paint the cells that scrolled into view
        page.screenshot(path=str(SCREENSHOT_TOP))
    finally:
        page.screenshot(path=str(SCREENSHOT))
        page.close()
    assert path.read_bytes() == before, "the browser session changed the course's notebook"


# --- a hostile feedback page ---------------------------------------------------------------------------------------

HOSTILE_MARKDOWN = """# Feedback, opened by the instructor and the student

[click](javascript:window.__pwned='markdown-link') [J](JaVaScRiPt:window.__pwned='mixed-case')
[e](&#106;avascript:window.__pwned='entity') [a](<javascript:window.__pwned='angle'>) [r][ref]
[d](data:text/html,<script>window.__pwned='data-link'</script>) [v](vbscript:msgbox)
<a href="javascript:window.__pwned='raw-link'">raw</a> <img src=x onerror="window.__pwned='raw-img'">
<svg onload="window.__pwned='svg'"></svg> <script>window.__pwned='script'</script>

[ref]: javascript:window.__pwned='reference'
"""


def hostile_notebook():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    outputs = [
        new_output("display_data", data={"text/html": "<img src=x onerror=\"window.__pwned='output-img'\">"
                                                      "<script>window.__pwned='output-script'</script>"}),
        new_output("display_data", data={"text/markdown": "[m](javascript:window.__pwned='output-markdown')"}),
        new_output("display_data", data={"image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' "
                                                          "onload=\"window.__pwned='output-svg'\"></svg>"}),
        new_output("display_data", data={"application/javascript": "window.__pwned='output-js'"}),
        new_output("stream", name="stdout", text="<script>window.__pwned='stream'</script>"),
    ]
    return new_notebook(cells=[new_markdown_cell(HOSTILE_MARKDOWN), new_code_cell("show()", outputs=outputs)],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def feedback_page(nb):
    """``nb`` as the course's feedback page: the exporter and preprocessors of ``generate_feedback`` in
    grading/nbgrader_config.py (all but GetGrades, which reads the gradebook)."""
    from nbconvert import HTMLExporter
    from nbgrader.preprocessors import GetGrades
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "grading")).load_config()
    feedback = config.GenerateFeedback
    exporter = (feedback.exporter_class if "exporter_class" in feedback else HTMLExporter)(config=config)
    for step in feedback.preprocessors:
        if step is not GetGrades:
            exporter.register_preprocessor(step, enabled=True)
    return exporter.from_notebook_node(nb)[0]


def test_a_hostile_feedback_page_runs_nothing(browser, tmp_path):
    """A learner's Markdown and outputs in a feedback page, opened from disk in Chromium, every link clicked: no
    script runs (nothing sets window.__pwned or the title, no dialog opens)."""
    path = tmp_path / "feedback.html"
    path.write_text(feedback_page(hostile_notebook()), encoding="utf-8")
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(path.as_uri(), wait_until="load", timeout=UI_WAIT_MS)
        title = page.title()
        clicked = page.evaluate("""() => {
            const links = [...document.querySelectorAll('a[href]')].filter(a => !/^https?:/i.test(a.href));
            links.forEach(a => a.click());
            return links.map(a => a.getAttribute('href'));
        }""")
        page.wait_for_timeout(500)
        assert len(clicked) >= 6, clicked  # the learner's links are there, defused
        assert page.evaluate("window.__pwned") is None, page.evaluate("window.__pwned")
        assert page.title() == title and not dialogs, dialogs
        assert "<script>window.__pwned='stream'</script>" in page.locator("body").text_content()  # as text
    finally:
        page.close()

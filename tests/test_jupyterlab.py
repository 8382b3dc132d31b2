"""`make lab` opens what learners expect: JupyterLab serves the notebooks and runs them.

One JupyterLab server, started headless on a free local port with a random token and the
notebook folder as its root (as `make lab` does), serves both tests: the first talks to its
REST API and to a kernel over the websocket; the second drives the real page in headless
Chromium (skipped where Debian's `chromium` and `chromium-driver` are not installed).
Autosave is switched off and the notebook folder is compared before and after, so the tests
never change a notebook.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import requests
import websocket

from tests._browser import chrome_options, chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SCREENSHOT = ROOT / "build" / "jupyterlab.png"
NOTEBOOK = "00_introduction.ipynb"
WAIT_S = 60.0

# JupyterLab user settings: never save behind the test's back, never call the internet.
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _chapter_notebooks() -> list[str]:
    return sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) with the hash of its content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = WAIT_S, what: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def notebooks_before() -> dict[str, str]:
    return _snapshot(NOTEBOOK_DIR)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, notebooks_before) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("jupyter")
    for name, values in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(home / "ipython"),
        MPLBACKEND="Agg",
    )
    port, token = _free_port(), secrets.token_hex(16)
    log = home / "server.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={NOTEBOOK_DIR}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Lab(f"http://127.0.0.1:{port}", token, process, log)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{log.read_text()}")
            return server.api("GET", "/api/status").status_code == 200

        wait_for(ready, what="the JupyterLab server to answer")
        yield server
    finally:
        with contextlib.suppress(Exception):
            for kernel in server.api("GET", "/api/kernels").json():
                server.api("DELETE", f"/api/kernels/{kernel['id']}")
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _execute(lab: Lab, kernel_id: str, code: str) -> str:
    """Run ``code`` in a kernel over its websocket; return the ``text/plain`` result."""
    ws_url = lab.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
    conn = websocket.create_connection(
        ws_url, header=[f"Authorization: token {lab.token}"], timeout=WAIT_S
    )
    try:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "session": uuid.uuid4().hex,
            "username": "test",
            "msg_type": "execute_request",
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
        request = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": {**content, "user_expressions": {}, "stop_on_error": True},
            "channel": "shell",
            "buffers": [],
        }
        conn.send(json.dumps(request))
        result, idle = None, False
        deadline = time.monotonic() + WAIT_S
        while not (result is not None and idle) and time.monotonic() < deadline:
            msg = json.loads(conn.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "execute_result":
                result = msg["content"]["data"]["text/plain"]
            elif kind == "error":
                pytest.fail(f"kernel error: {msg['content']['ename']}: {msg['content']['evalue']}")
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        assert idle, f"no idle status within {WAIT_S} s"
        return result
    finally:
        conn.close()


def test_server_lists_every_notebook_and_runs_a_kernel(lab: Lab, notebooks_before) -> None:
    listing = lab.api("GET", "/api/contents").json()
    listed = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
    assert listed == set(_chapter_notebooks())

    reply = lab.api("POST", "/api/kernels", json={"name": "python3"})
    assert reply.status_code == 201, reply.text
    kernel_id = reply.json()["id"]
    try:
        state = lab.api("GET", f"/api/kernels/{kernel_id}").json()["execution_state"]
        assert state in {"starting", "idle", "busy"}
        assert _execute(lab, kernel_id, "1 + 1") == "2"
        assert lab.api("GET", f"/api/kernels/{kernel_id}").json()["execution_state"] == "idle"
    finally:
        assert lab.api("DELETE", f"/api/kernels/{kernel_id}").status_code == 204
    kernels = {k["id"] for k in lab.api("GET", "/api/kernels").json()}
    assert kernel_id not in kernels
    assert _snapshot(NOTEBOOK_DIR) == notebooks_before


def _first_output_cell(path: Path) -> tuple[int, str]:
    """Position among the code cells and first output line of the first cell that prints."""
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for k, cell in enumerate(code_cells):
        if "NBVAL_IGNORE_OUTPUT" in cell.source:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("text", "").strip():
                return k, output["text"].strip().splitlines()[0].strip()
    pytest.fail(f"{path.name} has no code cell with a stored printed output")


def _click_menu(driver, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its entry ``item``."""
    from selenium.webdriver.common.by import By

    def find(xpath: str):
        return wait_for(
            lambda: [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()],
            what=xpath,
        )[0]

    find(f"//li[contains(@class, 'lm-MenuBar-item')][.//*[text()='{menu}']]").click()
    find(f"//li[contains(@class, 'lm-Menu-item')][.//*[text()='{item}']]").click()


def test_notebook_runs_in_the_browser(lab: Lab, notebooks_before, tmp_path) -> None:
    browser, driver_path = chromium()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    target, expected = _first_output_cell(NOTEBOOK_DIR / NOTEBOOK)
    options = chrome_options(
        browser,
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")

        def code_cells():
            return driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")

        wait_for(lambda: len(code_cells()) > target, what=f"the code cells of {NOTEBOOK}")
        # Start from a clean page, so that prompt and output can only come from this run.
        _click_menu(driver, "Edit", "Clear Outputs of All Cells")
        wait_for(
            lambda: (
                not driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-OutputArea-output")
                and code_cells()[0].find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text.strip()
                in {"[ ]:", ""}
            ),
            what="the stored outputs to be cleared",
        )
        # Collapsed cells (the claim checks, jupyter.source_hidden) show no editor to type in.
        _click_menu(driver, "View", "Expand All Code")
        for k in range(target + 1):
            cell = code_cells()[k]
            editor = cell.find_element(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", editor)
            editor.click()
            editor.send_keys(Keys.SHIFT, Keys.ENTER)

            def prompt(k=k) -> bool:
                text = code_cells()[k].find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text
                return text.strip() == f"[{k + 1}]:"

            wait_for(prompt, what=f"code cell {k} to run (execution count {k + 1})")

        def output() -> str:
            return code_cells()[target].find_element(By.CSS_SELECTOR, ".jp-OutputArea").text

        wait_for(lambda: expected in output(), what=f"the output {expected!r}")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
    finally:
        driver.quit()
    assert SCREENSHOT.stat().st_size > 10_000
    assert _snapshot(NOTEBOOK_DIR) == notebooks_before

"""Each notebook runs top to bottom on a real kernel with its small settings (RAYKD_NOTEBOOK_SMALL=1).

The kernel is a process of its own, pointed at this session's Ray (RAY_ADDRESS): a notebook that
needs Ray joins it, as it would join a `ray start` cluster, rather than starting a second one on the
same two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass
class Executed:
    text: str
    """Everything the cells printed or displayed as text (streams, reprs, HTML tables, Markdown)."""
    images: int
    """How many PNG figures the cells displayed."""


@pytest.fixture
def run_notebook(ray_session, tmp_path, monkeypatch) -> Callable[[str], Executed]:
    """Executes notebooks/<name> in a kernel whose working directory is tmp_path; fails on any error output."""

    def run(name: str) -> Executed:
        monkeypatch.setenv("RAYKD_NOTEBOOK_SMALL", "1")  # the kernel inherits this process's environment
        monkeypatch.setenv("RAY_ADDRESS", ray_session.get_runtime_context().gcs_address)
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
        assert not errors, errors
        text = []
        for output in outputs:
            data = output.get("data", {})
            text += [output.get("text", ""), data.get("text/plain", ""), data.get("text/html", ""), data.get("text/markdown", "")]
        return Executed("\n".join(text), sum("image/png" in o.get("data", {}) for o in outputs))

    return run

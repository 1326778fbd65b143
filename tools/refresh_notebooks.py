"""Re-run the example notebooks and save the outputs that nbval compares against.

    .venv/bin/python tools/refresh_notebooks.py [NOTEBOOK ...]   # default: notebooks/*.ipynb

Cells tagged ``nbval-skip`` need the real platform: they are left unrun, as nbval leaves them.
Nothing machine-specific is saved: no widget state, no timings, and no link to the services
the run started (they ended with it: a reader opening the notebook would meet dead ports). The
addresses stay as text; ``notebooks/sanitize.cfg`` takes the links out of what runs too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

SKIP_TAG = "nbval-skip"
ROOT = Path(__file__).resolve().parent.parent
# A link to a service on this machine (the sandbox's gateway): 127.0.0.1 or a *.localhost host.
LOCAL_LINK = re.compile(r'<a href="http://(?:127\.0\.0\.1|[\w.-]*localhost)(?::\d+)?/[^"]*"')


class _SkippingClient(NotebookClient):
    async def async_execute_cell(
        self, cell: Any, cell_index: int, execution_count: int | None = None, **kwargs: Any
    ) -> Any:
        if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            cell.outputs = []
            cell.execution_count = None
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, **kwargs)


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    _SkippingClient(
        notebook,
        timeout=300,
        store_widget_state=False,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                data["text/html"] = LOCAL_LINK.sub("<a", data["text/html"])
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    print(f"refreshed {path.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    paths = [Path(arg).resolve() for arg in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        refresh(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Re-run the example notebooks and save the outputs that nbval compares against.

    .venv/bin/python tools/refresh_notebooks.py [NOTEBOOK ...]   # default: notebooks/*.ipynb

Cells tagged ``nbval-skip`` need the real platform: they are left unrun, as nbval leaves them.
Nothing machine-specific is saved: no widget state, no timings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

SKIP_TAG = "nbval-skip"
ROOT = Path(__file__).resolve().parent.parent


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

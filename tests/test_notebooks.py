"""The committed example notebooks: clean files whose outputs nbval can compare.

nbval itself runs them (``notebooks`` is in pytest's testpaths); these tests check what nbval
does not: that the saved files hold no secret, no widget state and nothing machine-specific,
and that every cell nbval runs has saved outputs to be compared with.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SKIP_TAG = "nbval-skip"
# A JWT-shaped string: what SCNet and sandbox tokens look like.
TOKEN_SHAPE = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}")


def tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request: pytest.FixtureRequest) -> tuple[Path, Any]:
    path: Path = request.param
    return path, nbformat.read(path, as_version=4)


def test_both_example_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "scnet-platform.ipynb"}


def test_no_token_widget_state_or_machine_path_is_saved(notebook: tuple[Path, Any]) -> None:
    path, nb = notebook
    nbformat.validate(nb)
    text = path.read_text(encoding="utf-8")
    assert "widgets" not in nb.metadata, "saved widget state"
    assert not TOKEN_SHAPE.search(text), "something shaped like a token"
    for local in {str(ROOT), sys.prefix, sys.base_prefix, tempfile.gettempdir() + "/"}:
        assert local not in text, f"machine-specific path {local!r}"
    for cell in nb.cells:
        assert "execution" not in cell.metadata, "timings are saved"


def test_every_cell_nbval_runs_has_saved_outputs_to_compare(notebook: tuple[Path, Any]) -> None:
    _path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if SKIP_TAG in tags(cell):
            assert cell.execution_count is None and not cell.outputs
        else:
            # nbval compares only cells that were run when the notebook was saved.
            assert cell.execution_count is not None, cell.source


def test_cells_that_need_the_real_platform_are_skipped() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "scnet-platform.ipynb", as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    # A token prompt would wait forever; a real region address cannot be reached from CI.
    for cell in code:
        if "%scnet_token" in cell.source or "your-region-address" in cell.source:
            assert SKIP_TAG in tags(cell), cell.source
    assert any("SimpleSDXL" in c.source and SKIP_TAG in tags(c) for c in code)
    assert any("SimpleSDXL" in c.source and SKIP_TAG not in tags(c) for c in code)


def test_quickstart_shows_clickable_urls_of_services_that_answered() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    pages = [out.data["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    assert sum("Service is up" in p and 'target="_blank"' in p for p in pages) == 4
    answers = [out.data["text/plain"] for out in outputs if out.output_type == "execute_result"]
    assert answers.count("'Hello from a service started by scnet-magic!\\n'") == 4


def test_no_saved_output_links_to_a_service_of_the_run_that_saved_it(
    notebook: tuple[Path, Any],
) -> None:
    # The services ended with that run: a reader would open links to dead ports.
    _path, nb = notebook
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            page = out.get("data", {}).get("text/html", "")
            assert not re.search(r'href="http://(127\.0\.0\.1|[\w.-]*localhost)\b', page), page


def test_the_test_command_runs_the_notebooks_with_the_sanitize_file() -> None:
    pytest_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = pytest_config["ini_options"]
    assert "notebooks" in options["testpaths"]
    assert "--nbval " in options["addopts"] + " "
    assert "--nbval-sanitize-with notebooks/sanitize.cfg" in options["addopts"]
    patterns = re.findall(
        r"^regex: (.*)$\n^replace: (.*)$",
        (ROOT / "notebooks" / "sanitize.cfg").read_text(),
        flags=re.MULTILINE,
    )
    assert len(patterns) >= 4
    for regex, _replace in patterns:
        re.compile(regex)

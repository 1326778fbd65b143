"""The package's shape: no import cycle, and one path that starts a service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grimp
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import StartResult, cli, service
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm
from scnet_magic.validation import StartRequest

PACKAGE = Path(__file__).resolve().parent.parent / "scnet_magic"


def test_no_import_cycle_between_modules() -> None:
    # Imports inside functions count (grimp sees them), and annotation-only ones too, as for
    # lint-imports: the renderers render the results' to_dict() and name no result type.
    graph = grimp.build_graph("scnet_magic", exclude_type_checking_imports=False)
    modules = sorted(graph.modules - {"scnet_magic"})
    in_cycles = [
        module
        for module in modules
        for imported in graph.find_modules_directly_imported_by(module) - {"scnet_magic"}
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert in_cycles == []


def test_the_three_front_ends_share_one_start_path(
    ip: InteractiveShell,
    sandbox_env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls: list[tuple[StartRequest, StartResult]] = []
    real_start = service.start

    def recorded(request: StartRequest, *args: Any, **kwargs: Any) -> StartResult:
        result = real_start(request, *args, **kwargs)
        calls.append((request, result))
        return result

    monkeypatch.setattr(service, "start", recorded)
    notebook, port, command = Sandbox.notebook_id, "7860", "python webui.py --port 7860"
    with capture_output():
        ip.run_line_magic("scnet_start", f'--id {notebook} --port {port} --command "{command}"')
        form = StartForm(notebook_id=notebook, port=port, command=command)
        form.start_button.click()
        assert form.wait(30)
    assert cli.main(["start", "--id", notebook, "--port", port, "--command", command]) == 0
    capsys.readouterr()

    (magic, from_form, from_cli) = calls
    assert magic[0] == from_form[0] == from_cli[0] == StartRequest(notebook, 7860, command)
    assert type(magic[1]) is type(from_form[1]) is type(from_cli[1]) is StartResult
    assert magic[1].to_dict() == from_form[1].to_dict() == from_cli[1].to_dict()
    assert len(sandbox_env.start_requests()) == 3

"""What the results and the form look like in JupyterLab 4 (Light and Dark) and Notebook 7, in
English and Chinese: every coloured text reaches 4.5:1 against what is behind it (measured
from the computed styles), the padlock needs no emoji font, the form's parts line up.

A notebook of rendered results (no platform needed: the results are made in the kernel) is
run once per front end, theme and language; screenshots of each output are kept under
test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from .conftest import _WATCHED
from .server import JupyterServer

if TYPE_CHECKING:
    from playwright.sync_api import Locator

    from .page import NotebookPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
NOTEBOOK = "looks.ipynb"
ID = "1896050410550136833"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
# (front end, theme, language): both themes of JupyterLab in both languages, Notebook 7 in
# the other theme for each language.
LOOKS = [
    ("lab", "light", "en"),
    ("lab", "dark", "en"),
    ("lab", "light", "zh"),
    ("lab", "dark", "zh"),
    ("notebook", "light", "zh"),
    ("notebook", "dark", "en"),
]

CELLS = {
    "setup": f"""\
%load_ext scnet_magic
import scnet_magic
from scnet_magic import NotebookList, ServiceUrl, StartResult
from scnet_magic.i18n import _
from scnet_magic.startform import confirm_box
from scnet_magic import display

def result(**changes):
    fields = dict(code="0", msg="success", exec_success=True, error_msg=None, output=None,
                  url="https://c-{ID}.ksai.scnet.cn:58043/", notebook_id="{ID}", port=7860,
                  raw={{}})
    fields.update(changes)
    return StartResult(**fields)""",
    "ok": "result()",
    "pending": "result(exec_success=False, output=\"python: can't open file 'app.py'\")",
    "error": 'result(code="10004", url=None, error_msg="notebook not found")',
    "ready": "result().marked_ready(2.5)",
    "protected": 'result().guarded_by(43187, "g1", 7860)',
    "notebooks": f"""\
NotebookList.from_records([
    {{"id": "{ID}", "notebookName": "webui", "notebookStatus": "Running",
     "customsizePort": 7860, "command": "python webui.py"}},
    {{"id": "1896050410550136834", "notebookName": "old", "notebookStatus": "Terminated"}},
    {{"id": "1896050410550136835", "notebookName": "new", "notebookStatus": "Creating"}},
    {{"id": "1896050410550136836", "notebookName": "bad", "notebookStatus": "Failed"}},
])""",
    "url": f'ServiceUrl("{ID}", "https://c-{ID}.ksai.scnet.cn:58043/", "active", {{}})',
    "stop": f"""\
confirm_box(display.stop_warning("webui", "{ID}"), _("Stop the instance"), lambda: "")""",
    "form": f'form = scnet_magic.form(notebook_id="{ID}", port="0", command="python app.py")',
}


class ThemedServer(JupyterServer):
    """A Jupyter server whose front end shows ``theme`` and whose kernels speak ``language``."""

    def __init__(self, app: str, root: Path, home: Path, theme: str, language: str) -> None:
        super().__init__(app, root, home)
        self.theme = theme
        self.language = language

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["SCNET_LANG"] = self.language
        return env

    def _write_user_settings(self) -> None:
        super()._write_user_settings()
        path = self.home / "config/lab/user-settings/@jupyterlab/apputils-extension"
        path.mkdir(parents=True, exist_ok=True)
        settings = {"theme": THEMES[self.theme], "adaptive-theme": False}
        (path / "themes.jupyterlab-settings").write_text(json.dumps(settings))


@pytest.fixture(scope="module", params=LOOKS, ids=["-".join(look) for look in LOOKS])
def looks(
    request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookPage]:
    """The notebook of results, run in one front end, theme and language."""
    from .page import NotebookPage

    app, theme, language = request.param
    name = "-".join(request.param)
    root = tmp_path_factory.mktemp(f"{name}-root")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    nbformat.write(notebook, root / NOTEBOOK)
    server = ThemedServer(app, root, tmp_path_factory.mktemp(f"{name}-home"), theme, language)
    _WATCHED.append(server)
    server.start()
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    context.set_default_timeout(30_000)
    page = NotebookPage(context.new_page(), server, NOTEBOOK)
    page.look = name  # type: ignore[attr-defined]  # for the screenshots' names
    _WATCHED.append(page)
    try:
        page.open()
        page.run_all()
        yield page
    finally:
        page.closed = True
        context.close()
        server.stop()
        server.closed = True


def output(page: NotebookPage, cell: str) -> Locator:
    cells = page.page.locator(".jp-Notebook .jp-CodeCell")
    return page.outputs(cells.nth(list(CELLS).index(cell)))


def screenshot(page: NotebookPage, locator: Locator, what: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=SCREENSHOTS / f"{page.look}-{what}.png")  # type: ignore[attr-defined]


# The contrast of an element's text with the first opaque background behind it, by WCAG 2's
# formula; a translucent text colour is blended over that background first.
CONTRAST = """e => {
  // Any CSS colour (rgb(), color(srgb …) from color-mix) as bytes, read back from a canvas.
  const ctx = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
  const rgba = c => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data; return [r, g, b, a / 255]; };
  let node = e, bg = [255, 255, 255, 1];
  while (node && node.nodeType === 1) {
    const c = rgba(getComputedStyle(node).backgroundColor);
    if (c[3] === 1) { bg = c; break; }
    node = node.parentElement;
  }
  if (!node || node.nodeType !== 1) {
    bg = rgba(getComputedStyle(document.body).backgroundColor);
  }
  const fg = rgba(getComputedStyle(e).color);
  const mixed = [0, 1, 2].map(i => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = rgb => 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  const [hi, lo] = [lum(mixed), lum(bg)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""
# What is coloured: each result's headline, its links and lines; the table's statuses; the
# form's problems.
COLOURED = (
    ".scnet-result > div, .scnet-result a, .scnet-result summary, "
    "table.scnet-notebooks span, table.scnet-notebooks td, .scnet-error"
)


def test_every_coloured_text_reaches_4_5_to_1(looks: NotebookPage) -> None:
    for cell in CELLS:
        if cell not in ("setup", "form"):
            shown = output(looks, cell)
            shown.first.wait_for()
            screenshot(looks, shown.first, cell)
    texts = looks.page.locator(f".jp-OutputArea-output :is({COLOURED})")
    assert texts.count() >= 20
    low = []
    for i in range(texts.count()):
        text = texts.nth(i)
        ratio = float(text.evaluate(CONTRAST))
        if ratio < 4.5:
            low.append(f"{ratio:.2f}:1 {text.inner_text()[:60]!r}")
    assert not low, low


def test_the_padlock_is_drawn_not_an_emoji(looks: NotebookPage) -> None:
    protected = output(looks, "protected").locator(".scnet-protected")
    lock = protected.locator("svg.scnet-lock")
    assert lock.is_visible() and (lock.bounding_box() or {}).get("width", 0) >= 8
    assert "\N{LOCK}" not in protected.inner_text()


def test_the_stop_warning_is_a_card_and_its_button_fits(looks: NotebookPage) -> None:
    stop = output(looks, "stop")
    screenshot(looks, stop.first, "stop")
    assert stop.locator(".scnet-result.scnet-pending").is_visible()
    button = stop.locator("button").first
    assert button.evaluate("b => b.scrollWidth <= b.clientWidth"), button.inner_text()


def test_the_form_marks_bad_fields_and_lines_up(looks: NotebookPage) -> None:
    form = output(looks, "form")
    start = form.locator("button.mod-primary")
    start.click()
    problems = form.locator(".scnet-result.scnet-error")
    problems.first.wait_for()
    port = form.locator(".widget-text input").nth(1)
    assert port.evaluate("e => getComputedStyle(e).boxShadow") != "none"
    command = form.locator(".widget-textarea textarea")
    assert command.evaluate("e => getComputedStyle(e).boxShadow") == "none"  # not at fault
    # The results in the form in the font size of the magic's.
    size = "e => getComputedStyle(e).fontSize"
    assert problems.first.evaluate(size) == output(looks, "ok").locator(".scnet-result").evaluate(
        size
    )
    # The options start where the protect box starts; its note goes under the fields.
    boxes = form.locator(".widget-checkbox")
    lefts = {round((boxes.nth(i).bounding_box() or {})["x"]) for i in (0, 1, 2)}
    assert len(lefts) == 1, lefts
    boxes.first.locator("input").check()
    # The protect note on a line of its own under the inputs: no word left alone beside them.
    note = form.get_by_text(re.compile("password visitors|访问者"))
    note_box, id_box = note.bounding_box(), form.locator(".widget-text input").first.bounding_box()
    assert note_box and id_box and abs(note_box["x"] - id_box["x"]) <= 2
    assert note_box["height"] < 2 * float(
        note.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 20")
    )
    screenshot(looks, form.locator(".widget-vbox").first, "form")

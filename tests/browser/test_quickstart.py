"""The quickstart notebook in a real JupyterLab 4 and Notebook 7, in headless Chromium.

What users see is rendered by the browser: a widget that fails to render, a link that is not
clickable or an output that the front end renders from another MIME type than intended show up
only here. Each front end runs the whole notebook once (Run All); the tests then look at the
page, use the form, and follow the links.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import free_port

if TYPE_CHECKING:
    # Playwright is imported where it is used: without it, the tests skip (see chromium.py)
    # rather than fail to import.
    from playwright.sync_api import Locator

    from .page import NotebookPage

pytestmark = pytest.mark.browser

# The sandbox's stand-in for the platform's external address: a gateway on loopback.
EXTERNAL_URL = re.compile(r"^http://127\.0\.0\.1:\d+/$")
# A JWT-shaped string, as SCNet tokens (and the sandbox's) are.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{16,}\.")
# What the front end shows instead of a widget it cannot render.
WIDGET_ERROR = "Error displaying widget"
WIDGET_TEXT_FORM = "SCNet start form (a widget"

START_CELL = re.compile(r"^result = %scnet_start --port")
FORM_CELL = re.compile(r"^%scnet_start$")
PYTHON_FORM_CELL = re.compile(r"form = scnet_magic\.form\(")
SANDBOX_CELL = re.compile(r"^sandbox = %scnet_sandbox --execute$")
NOTEBOOKS_CELL = re.compile(r"^%scnet_notebooks$")
# Screenshots kept for people to look at (CI keeps test-artifacts/).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def expect(locator: Locator) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def result_link(output: Locator) -> Locator:
    """The external URL's link in a rendered start result."""
    return output.locator(".scnet-result a[href]")


def assert_opens_in_new_tab(link: Locator) -> str:
    """Check the one link and return its address."""
    expect(link).to_have_count(1, timeout=10_000)
    href = link.get_attribute("href") or ""
    assert EXTERNAL_URL.match(href), f"not an external URL: {href!r}"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "").split()
    assert link.inner_text() == href
    assert link.is_visible()
    return href


def test_start_output_links_the_external_url(notebook: NotebookPage) -> None:
    output = notebook.outputs(notebook.one_cell(START_CELL))
    href = assert_opens_in_new_tab(result_link(output))
    assert href == notebook.server.kernel_expression("result.url")


def test_forms_render_as_widgets(notebook: NotebookPage) -> None:
    text = notebook.page.locator("body").inner_text()
    assert WIDGET_ERROR not in text
    assert WIDGET_TEXT_FORM not in text, "a form is shown as text, not as a widget"
    for pattern in (FORM_CELL, PYTHON_FORM_CELL):
        output = notebook.outputs(notebook.one_cell(pattern))
        assert output.get_by_role("button", name="Start").is_visible()
        assert output.get_by_label("Port", exact=True).is_visible()
        assert output.get_by_label("Command", exact=True).is_visible()
    # The notebook starts a service from Python with the second form: the form's result
    # area on the page shows the result, with the link.
    output = notebook.outputs(notebook.one_cell(PYTHON_FORM_CELL))
    href = assert_opens_in_new_tab(result_link(output))
    assert href == notebook.server.kernel_expression("form.result.url")


def test_form_starts_a_service_that_its_link_reaches(
    notebook: NotebookPage, service_site: tuple[str, str]
) -> None:
    folder, text = service_site
    # The sandbox runs to the end of the notebook: the form Run All showed still works.
    form_cell = notebook.one_cell(FORM_CELL)
    form = notebook.outputs(form_cell)

    port = free_port()
    # An instance of its own (demo-12): a start on the default instance would replace the
    # service the notebook started there (one custom port per instance).
    form.get_by_label("Notebook id", exact=True).fill("1897000000000095028")
    form.get_by_label("Port", exact=True).fill(str(port))
    form.get_by_label("Command", exact=True).fill(
        f"python3 -m http.server {port} --bind 127.0.0.1 --directory {folder}"
    )
    form.get_by_role("button", name="Start").click()
    # The result area first says "Starting…", then shows the answer.
    answer = form.locator(".scnet-ok, .scnet-pending, .scnet-error")
    expect(answer).to_have_count(1, timeout=45_000)
    expect(answer).to_contain_text("Service is up")
    link = result_link(form)
    assert_opens_in_new_tab(link)

    with notebook.page.context.expect_page() as opened:
        link.click()
    service = opened.value
    service.wait_for_load_state()
    assert text in service.locator("body").inner_text()
    service.close()


def test_page_shows_no_token(notebook: NotebookPage) -> None:
    secrets = {"the Jupyter server token": notebook.server.token}
    secrets.update({f"sandbox token #{i}": t for i, t in enumerate(notebook.sandbox_tokens)})
    assert notebook.sandbox_tokens and all(JWT.match(t) for t in notebook.sandbox_tokens)
    exposure = notebook.exposure()
    places = {"the page markup": exposure["html"], "the page text": exposure["text"]}
    places.update({f"field value #{i}": value for i, value in enumerate(exposure["values"])})
    # Names and places only in the messages: the report must not show what it looks for.
    leaks = [
        f"{secret} in {place}"
        for place, content in places.items()
        for secret, value in secrets.items()
        if value in content
    ]
    leaks += [
        f"a JWT-shaped string in {place}"
        for place, content in places.items()
        if JWT.search(content)
    ]
    assert not leaks, "; ".join(leaks)


# -- what the first hour showed (issue "The first hour") ------------------------------------


def screenshot(notebook: NotebookPage, locator: Locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=SCREENSHOTS / f"{notebook.server.app}-{name}.png")


def style(locator: Locator, name: str) -> str:
    return str(locator.evaluate("(e, name) => getComputedStyle(e)[name]", name))


def test_the_magics_link_looks_like_the_forms_link(notebook: NotebookPage) -> None:
    magic_output = notebook.outputs(notebook.one_cell(START_CELL))
    magic_link = result_link(magic_output)
    form_link = result_link(notebook.outputs(notebook.one_cell(PYTHON_FORM_CELL)))
    screenshot(notebook, magic_output.locator(".scnet-result"), "magic-result")
    text = magic_output.locator(".scnet-result")
    assert style(magic_link, "color") == style(form_link, "color")
    assert style(magic_link, "color") != style(text, "color")
    assert style(magic_link, "textDecorationLine") == "underline"
    # No code style under the link (JupyterLab paints code on grey).
    assert magic_link.locator("code").count() == 0
    assert style(magic_link, "backgroundColor") in ("rgba(0, 0, 0, 0)", "transparent")


def test_the_links_still_answer_after_run_all(notebook: NotebookPage) -> None:
    links = notebook.page.locator(".scnet-result a[href]")
    # The instance of the boot-and-stop section is stopped on purpose: its link is dead.
    stopped = notebook.outputs(notebook.one_cell("--boot")).locator(".scnet-result a[href]")
    dead = {link.get_attribute("href") for link in stopped.all()}
    hrefs = {link.get_attribute("href") for link in links.all()} - dead
    assert len(hrefs) >= 3 and dead, (hrefs, dead)
    for href in hrefs:
        # The service itself answers (a gateway error would mean it is gone; a stopped
        # sandbox refuses the connection, which raises).
        assert href and notebook.page.request.get(href).status not in (502, 503, 504), href


def test_starting_shows_while_the_request_is_in_flight(notebook: NotebookPage) -> None:
    cell = notebook.one_cell(START_CELL)
    # Every call answered three seconds late: the package sandbox's hook, replaced on the
    # notebook's instance (sandbox_faults.FaultySandbox cannot be imported in the kernel).
    notebook.server.kernel_expression(
        "setattr(sandbox, '_override', lambda *call: __import__('time').sleep(3.0) or False)"
    )
    # A port of its own: the first run's service still holds the notebook's port, and a
    # re-run on a port in use is refused before anything is sent (unless --replace).
    notebook.server.kernel_expression(
        "exec('old = port; port = free_port(); command = command.replace(str(old), str(port))',"
        " globals())"
    )
    try:
        cell.locator(".jp-InputPrompt").click()
        notebook.page.keyboard.press("Shift+Enter")
        starting = notebook.outputs(cell).filter(has_text="Starting the service on port")
        expect(starting).to_be_visible(timeout=3_000)
        screenshot(notebook, starting, "starting")
        expect(result_link(notebook.outputs(cell))).to_have_count(1, timeout=30_000)
        expect(starting).to_have_count(0)
    finally:
        notebook.server.kernel_expression("delattr(sandbox, '_override')")


def test_the_notebooks_table_reads_well(notebook: NotebookPage) -> None:
    table = notebook.outputs(notebook.one_cell(NOTEBOOKS_CELL)).locator("table.scnet-notebooks")
    screenshot(notebook, table, "notebooks")
    rows = table.locator("tbody tr")
    statuses = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(rows.count())]
    running = statuses.count("Running")
    assert running and statuses[:running] == ["Running"] * running  # running first
    for cell in (table.locator("th").first, rows.first.locator("td").nth(1)):
        assert style(cell, "textAlign") in ("left", "start")
    first_status = rows.first.locator("td span")
    # The "up" green (the theme's, made legible: see test_visual.py for the contrast).
    red, green, blue = (float(v) for v in re.findall(r"[\d.]+", style(first_status, "color"))[:3])
    assert green > max(red, blue), style(first_status, "color")


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, locator
    return dict(found)


def test_the_form_lays_out_within_its_box(notebook: NotebookPage) -> None:
    output = notebook.outputs(notebook.one_cell(FORM_CELL))
    form = output.locator(".widget-vbox").first
    screenshot(notebook, form, "form")
    right = box(form)["x"] + box(form)["width"]
    fields = form.locator(".widget-text, .widget-textarea, .widget-password, .widget-dropdown")
    for i in range(fields.count()):
        if fields.nth(i).is_visible():
            field = box(fields.nth(i))
            assert field["x"] + field["width"] <= right + 0.5, fields.nth(i).inner_html()[:200]
    id_input = box(output.get_by_label("Notebook id", exact=True))
    note = output.get_by_text(re.compile(r"\d+ notebooks, \d+ running"))
    assert abs(box(note)["x"] - id_input["x"]) <= 2  # under the fields, not the labels
    token = output.get_by_label("Token", exact=True)
    # The placeholder fits in the field (the canvas measures it in the field's own font).
    fits = token.evaluate(
        """e => { const s = getComputedStyle(e); const c = document.createElement('canvas')
        .getContext('2d'); c.font = s.font; return c.measureText(e.placeholder).width
        <= e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) }"""
    )
    assert fits, token.get_attribute("placeholder")
    assert output.get_by_label("up to (s)").is_disabled()
    output.get_by_text("Advanced").click()
    base_url = output.get_by_label("Base URL", exact=True)
    expect(base_url).to_be_visible()
    screenshot(notebook, form, "form-advanced")
    assert abs(box(base_url)["x"] - id_input["x"]) <= 2  # indented like the other rows

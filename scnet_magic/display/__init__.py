"""Every HTML, text and JSON rendering, shared by the results, the magics, the form and the
command line.

Escaping happens here and only here: everything that came from the server goes through
:func:`html.escape`; links open in a new tab without giving the new page a handle on the
notebook (``rel="noopener noreferrer"``). Renderings are written in the language in force
(:mod:`scnet_magic.i18n`): the caller's, or the session's default. The result types are known
here by their fields only (:mod:`.base`), so this package imports none of them.

``base`` holds what every rendering shares, ``results`` the renderings of a start (and showing
them in IPython), ``records`` those of the notebooks table, the instance and the signed-in
session.
"""

from .base import (
    LINK_COLOR,
    LINK_STYLE,
    error_html,
    info_html,
    lines_html,
    link_html,
    note_html,
    to_json,
)
from .records import (
    instance_line,
    instance_waiting_text,
    login_status_text,
    login_text,
    notebook_html,
    notebook_text,
    notebooks_html,
    notebooks_text,
    running_first,
    status_message,
    status_name,
    stop_html,
    stop_text,
    stop_warning,
)
from .results import (
    ProgressLine,
    Shown,
    close_starting,
    open_starting,
    open_waiting,
    prints_only,
    protected_line,
    service_url_html,
    service_url_text,
    show,
    show_once,
    start_html,
    start_text,
    starting_text,
    waiting_bundle,
    waiting_text,
)

__all__ = [
    "LINK_COLOR",
    "LINK_STYLE",
    "ProgressLine",
    "Shown",
    "close_starting",
    "error_html",
    "info_html",
    "instance_line",
    "instance_waiting_text",
    "lines_html",
    "link_html",
    "login_status_text",
    "login_text",
    "note_html",
    "notebook_html",
    "notebook_text",
    "notebooks_html",
    "notebooks_text",
    "open_starting",
    "open_waiting",
    "prints_only",
    "protected_line",
    "running_first",
    "service_url_html",
    "service_url_text",
    "show",
    "show_once",
    "start_html",
    "start_text",
    "starting_text",
    "status_message",
    "status_name",
    "stop_html",
    "stop_text",
    "stop_warning",
    "to_json",
    "waiting_bundle",
    "waiting_text",
]

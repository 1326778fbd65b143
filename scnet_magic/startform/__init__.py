"""The widgets front end: the start form and the region dropdown (imports ipywidgets)."""

from .form import StartForm, form
from .parts import confirm_box, region_picker

__all__ = ["StartForm", "confirm_box", "form", "region_picker"]

"""The widgets front end: the start form and the region dropdown (imports ipywidgets)."""

from .form import StartForm, form
from .parts import region_picker

__all__ = ["StartForm", "form", "region_picker"]

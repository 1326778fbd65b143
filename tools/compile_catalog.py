"""Bring the Chinese message catalog up to date with the code, and compile it.

    .venv/bin/python tools/compile_catalog.py           # update the .po, write the .mo
    .venv/bin/python tools/compile_catalog.py --check   # exit 1 if either is out of date

The messages are the English strings the code passes to ``_()``, ``N_()`` and ``ngettext()``
(extracted with Babel). A message new in the code is added to the ``.po`` with an empty
translation, to be filled in; one no longer in the code is dropped. Both files are committed:
users need no build step, and the tests check that they agree with the code and each other.
"""

from __future__ import annotations

import gettext
import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scnet_magic"
LOCALE = "zh_CN"
PO_PATH = PACKAGE / "locale" / LOCALE / "LC_MESSAGES" / "scnet_magic.po"
MO_PATH = PO_PATH.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}

HEADER = """\
# Simplified Chinese messages of scnet-magic. The msgids are the English strings in the code.
# Update with tools/compile_catalog.py, fill in the empty msgstr, run it again (writes the .mo).
# Keep every {placeholder}, URL and code identifier as it is."""

Msgid = str | tuple[str, str]


def extract() -> dict[Msgid, list[str]]:
    """Every message in the package's code, in order of appearance, with the files using it."""
    found: dict[Msgid, list[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        if isinstance(message, (tuple, list)):
            message = (message[0], message[1])
        where = f"scnet_magic/{filename}"
        files = found.setdefault(message, [])
        if where not in files:
            files.append(where)
    return found


def read_catalog(path: Path = PO_PATH) -> Catalog:
    if not path.exists():
        return Catalog(locale=LOCALE, domain="scnet_magic")
    with path.open("rb") as source:
        return read_po(source, locale=LOCALE, domain="scnet_magic")


def updated(catalog: Catalog, messages: dict[Msgid, list[str]]) -> Catalog:
    """A catalog with exactly the code's messages, keeping the translations already made."""
    fresh = Catalog(
        locale=LOCALE,
        domain="scnet_magic",
        project="scnet-magic",
        version="",
        copyright_holder="",
        msgid_bugs_address="",
        creation_date=catalog.creation_date,
        revision_date=catalog.revision_date,
        language_team="",
        last_translator="",
        header_comment=HEADER,
        fuzzy=False,  # a fuzzy header would leave the plural rule out of the .mo
    )
    for msgid, files in messages.items():
        old = catalog.get(msgid)
        string: str | tuple[str, ...] = "" if isinstance(msgid, str) else ("",)
        if old is not None and old.string:
            string = old.string
        fresh.add(msgid, string, locations=[(name, None) for name in files])
    return fresh


def po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, include_lineno=False, omit_header=False)
    return out.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def main(argv: list[str]) -> int:
    check = "--check" in argv
    catalog = updated(read_catalog(), extract())
    want_po = po_bytes(catalog)
    want_mo = mo_bytes(read_po(io.BytesIO(want_po), locale=LOCALE, domain="scnet_magic"))
    # Compared without the header lines that change by themselves (the Babel version, the
    # date): a run on an up-to-date tree then writes nothing, and leaves it clean.
    stale = [
        path
        for path, want in ((PO_PATH, want_po), (MO_PATH, want_mo))
        if not path.exists() or comparable(path.read_bytes(), path) != comparable(want, path)
    ]
    untranslated = [m.id for m in catalog if m.id and not all(_strings(m.string))]
    if check:
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    PO_PATH.parent.mkdir(parents=True, exist_ok=True)
    for path, want in ((PO_PATH, want_po), (MO_PATH, want_mo)):
        if path in stale:
            path.write_bytes(want)
    print(f"{len(catalog)} messages, {len(untranslated)} without a translation")
    for msgid in untranslated:
        print(f"  untranslated: {msgid!r}")
    return 0


_VOLATILE_HEADERS = re.compile(rb'^"(Generated-By|POT-Creation-Date): [^"]*"\n', re.MULTILINE)


def comparable(data: bytes, path: Path) -> object:
    """What must match for a file to be up to date: the .po's text, comments and order
    included (a stale one is rewritten), and the .mo's messages."""
    if path.suffix == ".po":
        return _VOLATILE_HEADERS.sub(b"", data)
    return compiled(data, path)


def compiled(data: bytes, path: Path) -> dict[object, str]:
    """What gettext will look up: every translation of a .po or .mo file, plus the plural rule.

    A .po is compiled first, so both kinds compare equal when the .mo is that .po compiled.
    """
    if path.suffix == ".po":
        data = mo_bytes(read_po(io.BytesIO(data), locale=LOCALE, domain="scnet_magic"))
    translations = gettext.GNUTranslations(io.BytesIO(data))
    table: dict[object, str] = {
        key: value
        for key, value in translations._catalog.items()  # type: ignore[attr-defined]
        if key != ""  # the header
    }
    table["plural rule"] = translations._info.get("plural-forms", "")  # type: ignore[attr-defined]
    return table


def _strings(string: str | tuple[str, ...]) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else tuple(string)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Browser tests; a package so that its conftest.py and tests/conftest.py do not clash."""

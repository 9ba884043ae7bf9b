"""Every setting is in one table (digitrec/config.py) and in the README's; old names still work."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from digitrec import config

ROOT = Path(__file__).resolve().parent.parent


def test_code_reads_only_settings_in_the_table():
    """No module reads a DIGITREC_ variable the table does not list (so the README's table is complete)."""
    read = set()
    for path in [ROOT / "app.py", *ROOT.glob("digitrec/*.py"), *ROOT.glob("training/*.py"), *ROOT.glob("bench/*.py")]:
        read |= set(re.findall(r"\bDIGITREC_[A-Z_]*[A-Z]\b", path.read_text()))
    assert read - set(config.VARIABLES) - set(config.RENAMED) == set()


def test_readme_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(DIGITREC_[A-Z_]+)`", readme, flags=re.M))
    assert rows == set(config.VARIABLES)


def test_defaults_and_values(monkeypatch):
    monkeypatch.delenv("DIGITREC_CONCURRENCY", raising=False)
    assert config.number("DIGITREC_CONCURRENCY") == 2
    monkeypatch.setenv("DIGITREC_CONCURRENCY", "4")
    assert config.number("DIGITREC_CONCURRENCY") == 4
    monkeypatch.setenv("DIGITREC_CONCURRENCY", "many")
    with pytest.raises(ValueError, match="DIGITREC_CONCURRENCY must be a number"):
        config.number("DIGITREC_CONCURRENCY")
    with pytest.raises(KeyError, match="not a digitrec setting"):
        config.text("DIGITREC_NOPE")


@pytest.mark.parametrize("old, new", sorted(config.RENAMED.items()))
def test_old_names_are_read_with_a_warning(monkeypatch, caplog, old, new):
    monkeypatch.delenv(new, raising=False)
    monkeypatch.setenv(old, "7")
    monkeypatch.setattr(config, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="digitrec"):
        assert config.text(new) == "7"
    assert f"{old} is deprecated: set {new} instead" in caplog.text
    monkeypatch.setenv(new, "8")  # the new name wins
    assert config.text(new) == "8"

"""The README's settings table names every setting, so a new one cannot go undocumented."""

import re
from pathlib import Path

from orchestration.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_settings_table() -> None:
    documented = set(re.findall(r"`CSW_([A-Z0-9_]+)`", README.read_text(encoding="utf-8")))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "add these settings to README.md's Settings table"

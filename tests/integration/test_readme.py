"""The README's Python example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from databus.settings import Settings

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_publishes_and_reads_back(
    bus_settings: Settings, tmp_path: Path
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    key = bus_settings.pseudonym_key.get_secret_value() if bus_settings.pseudonym_key else ""
    env = os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": bus_settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": key,
        "DATABUS_CONFIG": str(tmp_path / "absent.toml"),
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Message(topic='hrss.face_authentication.v1'")
    assert "channel='app'" in result.stdout
    assert "11010519491231002X" not in result.stdout

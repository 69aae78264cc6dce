"""The systemd units in deploy/ are valid (systemd-analyze verify), hardened, and name real commands and
settings."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailflow.cli import main
from mailflow.resources import CHECKOUT_ROOT
from mailflow.settings import Settings

DEPLOY = CHECKOUT_ROOT / "deploy"
INSTALLED = "/opt/mailflow/venv/bin/mailflow"
UNITS = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "User": "mailflow",
}


def _service(path: Path) -> dict[str, list[str]]:
    """The [Service] section, each key with all its values (systemd allows repeating keys)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (Debian: systemd)"
)
def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: the installed path, templated to one that does here.
    program = tmp_path / "bin" / "mailflow"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, str(program)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown or misspelt directives are only warnings for systemd: any output at all fails the test.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr


def test_worker_desk_and_backup_are_hardened_alike() -> None:
    services = {path.stem: _service(path) for path in DEPLOY.glob("*.service")}
    assert set(services) == {"mailflow-worker", "mailflow-desk", "mailflow-backup"}
    for name, service in services.items():
        for key, value in HARDENING.items():
            assert value in service.get(key, []), f"{name}: {key}={value} missing"
        assert "@system-service" in service["SystemCallFilter"], name
        (data_dir,) = [
            v.split("=", 1)[1] for v in service["Environment"] if v.startswith("MAILFLOW_DATA_DIR=")
        ]
        assert data_dir in service["ReadWritePaths"][0].split(), name
        assert service["EnvironmentFile"] == ["/etc/mailflow/mailflow.env"]


def test_the_units_run_commands_that_exist() -> None:
    for path in DEPLOY.glob("*.service"):
        (command,) = _service(path)["ExecStart"]
        words = re.split(r"[\s\"']+", command[command.index(INSTALLED) + len(INSTALLED) :].strip())
        assert words[0] in main.commands, f"{path.name}: mailflow {words[0]} is no command"
    timer = configparser.ConfigParser()
    timer.read(DEPLOY / "mailflow-backup.timer")
    assert timer["Timer"]["OnCalendar"]


def test_the_example_environment_names_only_real_settings() -> None:
    names = re.findall(r"^#?(MAILFLOW_[A-Z_]+)=", (DEPLOY / "mailflow.env.example").read_text(), re.MULTILINE)
    assert len(names) > 10
    unknown = [name for name in names if name.removeprefix("MAILFLOW_").lower() not in Settings.model_fields]
    assert unknown == []

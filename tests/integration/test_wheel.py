"""The built wheel runs anywhere: `python -m build`, installed into a fresh virtualenv outside the checkout,
runs `mailflow demo` from another directory with its own data directory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mailflow.resources import CHECKOUT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLES = sorted((CHECKOUT_ROOT / "samples" / "mailbox").glob("*.eml"))
# Names a wheel must never carry: the test suite, the checkout's data directory, keys, training corpora.
FORBIDDEN_TOP = ("tests/", "storage/", "samples/", "templates/", "classifiers/")  # at the top: not packaged
FORBIDDEN = ("mailflow.sqlite3", "secret-key", "blobs/", "_data/classifiers/training", ".env")


DESK_PAGES = """
from mailflow.bootstrap import App
from mailflow.settings import load_settings
from mailflow.web import create_app

client = create_app(App(load_settings())).test_client()
login = client.get("/login", headers={"Accept-Language": "nl"}, base_url="https://localhost")
style = client.get("/static/desk.css", base_url="https://localhost")
print(login.status_code, style.status_code, "Aanmelden" if "Aanmelden" in login.text else "untranslated")
"""


def _clean_environment(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv and no MAILFLOW_* leaking from the test run into the installed copy."""
    keep = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MAILFLOW_") and key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    return keep | {"COLUMNS": "200"} | extra  # rich wraps its lines at the terminal's width


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # sdist first, then the wheel from the sdist (build's default): MANIFEST.in is tested on the way.
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--outdir", str(out), str(CHECKOUT_ROOT)]
    _run(command, out, os.environ.copy(), 600)
    (built,) = out.glob("mailflow-*.whl")
    return built


def test_the_wheel_carries_the_shipped_data_and_nothing_private(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.startswith(FORBIDDEN_TOP) or any(p in name for p in FORBIDDEN)]
    for needed in (
        "mailflow/_data/templates/web/base.html",
        "mailflow/_data/classifiers/documents.toml",
        "mailflow/_data/classifiers/labels.toml",
        "mailflow/_data/classifiers/model/manifest.json",
        "mailflow/_data/classifiers/model/model.npz",
        "mailflow/_data/classifiers/embeddings/vectors.npz",
        "mailflow/migrations/versions/0001_initial_schema.py",
        "mailflow/web/translations/nl/LC_MESSAGES/messages.mo",
        "mailflow/web/static/desk.css",
    ):
        assert needed in names, needed
    samples = [name for name in names if name.startswith("mailflow/_data/samples/mailbox/")]
    assert len([name for name in samples if name.endswith(".eml")]) == len(SAMPLES)
    assert any(name.startswith("mailflow/_data/classifiers/products/") for name in names)


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = _clean_environment()
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    _run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], tmp_path, env, 900)

    # The installed copy reads its own data, not the checkout's; its default data directory is the user's.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import mailflow; from mailflow.settings import Settings; s = Settings(); "
            "print(mailflow.__file__, s.templates_dir, s.classifiers_dir, s.effective_model_dir, s.data_dir, "
            "sep='\\n')",
        ],
        elsewhere,
        _clean_environment(XDG_DATA_HOME=str(tmp_path / "xdg")),
        60,
    ).split()
    assert all(path.startswith(str(venv)) for path in where[:4]), where
    assert where[4] == str(tmp_path / "xdg" / "mailflow")

    data = tmp_path / "data"
    demo_environment = _clean_environment(MAILFLOW_DATA_DIR=str(data))
    output = _run([str(venv / "bin" / "mailflow"), "demo"], elsewhere, demo_environment, 600)
    assert f"{len(SAMPLES)} sample emails arrived" in output and f"processed {len(SAMPLES)}" in output
    with sqlite3.connect(data / "mailflow.sqlite3") as database:
        (stored,) = database.execute("SELECT count(*) FROM messages").fetchone()
        (replies,) = database.execute("SELECT count(*) FROM replies").fetchone()
    assert stored == len(SAMPLES) and replies > 0
    assert len(list((data / "outbox").iterdir())) >= replies
    assert not list(elsewhere.iterdir()), "the demo wrote into the current directory"

    # The desk's pages, style sheet and Dutch translation come from the wheel too.
    desk = _run([str(venv / "bin" / "python"), "-c", DESK_PAGES], elsewhere, demo_environment, 120)
    assert desk.split()[-3:] == ["200", "200", "Aanmelden"], desk


def test_an_editable_install_reads_the_checkout(tmp_path: Path) -> None:
    """`pip install -e .` (make venv) copies nothing: an edit of templates/ or classifiers/ shows at once."""
    venv = tmp_path / "venv"
    env = _clean_environment()
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    # Only the lookup is under test here, so no dependencies: mailflow.resources needs the standard library.
    _run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-e", str(CHECKOUT_ROOT)],
        tmp_path,
        env,
        300,
    )
    printed = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from mailflow import resources as r; print(r.shipped('templates'))",
        ],
        tmp_path,
        env,
        60,
    )
    assert printed.strip() == str(CHECKOUT_ROOT / "templates")
    assert not (CHECKOUT_ROOT / "mailflow" / "_data").exists()

"""Where the data mailflow ships lives: reply and desk templates, the catalogue with its model and word
vectors (``classifiers``), and the demo's sample mailbox.

The repository keeps them as top-level directories (``templates/``, ``classifiers/``, ``samples/``).
A built wheel carries a copy inside the package, ``mailflow/_data/<name>`` (setup.py's build step puts
it there), read through ``importlib.resources``. A checkout, and an editable install of it, has no such
copy and reads the top-level directories, so an edit there shows at once. Settings override both
(``MAILFLOW_TEMPLATES_DIR``, ``MAILFLOW_CLASSIFIERS_DIR``, ``MAILFLOW_MODEL_DIR``, ...).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGED_DATA = "_data"
CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def packaged(name: str) -> Path | None:
    """The copy of ``name`` inside the installed package, or None (a checkout has none)."""
    resource = files("mailflow").joinpath(PACKAGED_DATA, name)
    # Jinja, Flask and numpy want real directories: a package imported from a zip has none to give.
    if not isinstance(resource, Path) or not resource.is_dir():
        return None
    return resource


def shipped(name: str) -> Path:
    """The shipped directory ``name`` (templates, classifiers, samples): packaged copy, else checkout."""
    return packaged(name) or CHECKOUT_ROOT / name


def is_installed_package() -> bool:
    """True when mailflow runs from a built wheel rather than from a checkout."""
    return packaged("templates") is not None

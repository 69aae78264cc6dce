"""The build step that puts the shipped data into the wheel; everything else is in pyproject.toml.

The repository keeps ``templates/``, ``classifiers/`` and ``samples/`` at its top level; a wheel carries
them as ``mailflow/_data/`` (read by ``mailflow.resources``). An editable install copies nothing: it
reads the checkout's directories, so edits show at once.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# What the installed package needs at run time; the training corpus specs stay in the repository.
SHIPPED = {"templates": "templates", "classifiers": "classifiers", "samples/mailbox": "samples/mailbox"}
LEFT_OUT = shutil.ignore_patterns("training", "__pycache__", "*.pyc", ".*")


class BuildWithShippedData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "mailflow", "_data")
        for source, destination in SHIPPED.items():
            if not Path(source).is_dir():
                raise SystemExit(f"cannot build: {source}/ is missing (build from a checkout or an sdist)")
            shutil.copytree(source, target / destination, ignore=LEFT_OUT, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithShippedData})

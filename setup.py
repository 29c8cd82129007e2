"""Only what pyproject.toml cannot say: the top-level templates/ folder (the one users edit)
is copied into the wheel as the package's digest/templates, so an installed `digest` renders
mail without the source tree."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildWithTemplates(build_py):
    def run(self) -> None:
        # a build folder left from an older checkout would ship modules since moved or deleted
        shutil.rmtree(Path(self.build_lib) / "digest", ignore_errors=True)
        super().run()
        target = Path(self.build_lib) / "digest" / "templates"
        target.mkdir(parents=True, exist_ok=True)
        for template in sorted(TEMPLATES.iterdir()):
            if template.is_file():
                shutil.copy2(template, target / template.name)


setup(cmdclass={"build_py": BuildWithTemplates})

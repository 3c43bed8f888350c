"""The Help menu: *About labctl* (the versions of labctl and of what it runs on) and the
README's sections, each shown in a window of its own."""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import qVersion
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMenu, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

README = Path(__file__).resolve().parents[1] / "README.md"
#: Packages whose versions *About* lists.
PACKAGES = ("labctl", "PySide6-Essentials", "pyqtgraph", "numpy", "h5py", "pydantic", "pymeasure", "pyvisa", "scipy",
            "tiled")


def versions() -> dict[str, str]:
    """Name → version of labctl, Python, Qt and the libraries it uses (missing ones left out)."""
    out = {"Python": platform.python_version(), "Qt": qVersion()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def readme_sections(path: Path = README) -> list[tuple[str, str]]:
    """(title, Markdown text) of each ``## `` section of the README, in order (empty if none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    return [(parts[k].strip(), f"## {parts[k].strip()}\n{parts[k + 1]}") for k in range(1, len(parts) - 1, 2)]


class HelpMenu(QMenu):
    """*About labctl* and *README* ▸ one entry per section."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__("&Help", parent)
        about = QAction("About labctl", self)
        about.triggered.connect(self.about)
        self.addAction(about)
        self.readme = self.addMenu("README")
        self.sections = readme_sections()
        for title, text in self.sections:
            action = QAction(title, self)
            action.triggered.connect(lambda _=False, t=title, m=text: self.show_section(t, m))
            self.readme.addAction(action)
        if not self.sections:
            missing = QAction(f"(no README at {README})", self)
            missing.setEnabled(False)
            self.readme.addAction(missing)
        self.dialogs: list[QDialog] = []

    def about_text(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>&nbsp;{v}</td></tr>" for k, v in versions().items())
        return ("<h3>labctl</h3><p>Bench software for solid-state lithium battery research: Keithley 2400, "
                "NEWARE and BioLogic cyclers, an AFM controller, and their simulators.</p>"
                f"<table>{rows}</table><p>{sys.executable}</p>")

    def about(self) -> None:
        QMessageBox.about(self.parentWidget(), "About labctl", self.about_text())

    def show_section(self, title: str, markdown: str) -> QDialog:
        dialog = QDialog(self.parentWidget())
        dialog.setWindowTitle(f"labctl — {title}")
        layout = QVBoxLayout(dialog)
        browser = QTextBrowser()
        browser.setOpenExternalLinks(True)
        browser.setSearchPaths([str(README.parent)])
        browser.setMarkdown(markdown)
        layout.addWidget(browser)
        dialog.resize(900, 700)
        dialog.show()
        self.dialogs.append(dialog)
        return dialog


__all__ = ["HelpMenu", "readme_sections", "versions"]

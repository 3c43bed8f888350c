"""Text shown to the operator in one style: units as the window writes them (mA cm⁻², µm),
test times as the window's clocks give them (:func:`ui.progress.format_duration`).

Run files store plain-ASCII messages (``"short at 1.8 mA cm-2, t = 32400.0 s (step 36)"``);
:func:`tidy` turns them into what the rest of the window says (``"… 1.8 mA cm⁻², t = 9.00 h
(step 36)"``), so an event does not read in seconds in one place and hours in the next.
"""

from __future__ import annotations

import re

from ui.progress import format_duration

_UNITS = (
    (re.compile(r"\bcm-2\b|\bcm\^-2\b|/cm2\b|/cm\^2\b"), " cm⁻²"),
    (re.compile(r"\bcm2\b"), "cm²"),
    (re.compile(r"\bcm-1\b"), "cm⁻¹"),
    (re.compile(r"\bg-1\b"), "g⁻¹"),
    (re.compile(r"\bum\b"), "µm"),
    (re.compile(r"\buA\b"), "µA"),
    (re.compile(r"\bohm\b"), "Ω"),
)
_TIME = re.compile(r"\bt = (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?) s\b")


def tidy(text: str) -> str:
    """``text`` with the window's unit spellings and test times (``t = … s``) in s, min, h or d."""
    for pattern, replacement in _UNITS:
        text = pattern.sub(replacement, text)
    text = text.replace("  cm⁻²", " cm⁻²").replace("mA cm⁻²", "mA cm⁻²")
    return _TIME.sub(lambda m: f"t = {format_duration(float(m.group(1)))}", text)


__all__ = ["tidy"]

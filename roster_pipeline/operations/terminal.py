"""Text for a terminal: names from Clever are printed, never interpreted.

A district or school name is an SIS value anyone at the district can type. Printed as is, an
escape sequence in it could clear the operator's screen, retitle the window, hide a line or
rewrite what `sync` and `status` just said; a bidirectional override could reorder it.
"""

from __future__ import annotations

import re

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"             # CSI: cursor moves, colours, screen clears
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)"   # OSC, DCS, SOS, PM, APC strings: titles, hyperlinks, to BEL or ST
    r"|\x1b[ -/]*[0-~]?",                  # any other ESC sequence (and a lone ESC)
    re.S)
# C0 and DEL, C1, and the bidirectional embeddings, overrides and isolates ("Trojan source").
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BREAKS = re.compile(r"[\t\n]")


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters; a tab or line break becomes a space
    (a name cannot start a line that looks like the command's own)."""
    return _BREAKS.sub(" ", _CONTROLS.sub("", _ESCAPES.sub("", text)))

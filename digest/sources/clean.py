"""Text as people should read it: LaTeX leftovers, HTML entities and hard wraps undone,
arXiv's "arXiv:… Announce Type: … Abstract:" prefix removed; meaning kept."""

from __future__ import annotations

import html
import re
import unicodedata

from ..text import one_line

_ANNOUNCE = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*(?:Abstract:\s*)?", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{1,200}>")
# {\it x}, {\bf x}, {\em x}, {\sc x}, {\rm x}, {\tt x}
_FONT_GROUP = re.compile(r"\{\\(?:it|bf|em|sc|rm|tt|sf|sl)\s+([^{}]*)\}")
# \textit{x}, \emph{x}, \textbf{x}, \mathrm{x}, \texttt{x}, \mathbf{x}, \mathcal{x}
_FONT_CMD = re.compile(r"\\(?:text(?:it|bf|tt|sc|rm|sf|sl)?|emph|math(?:rm|bf|cal|it|tt|sf|bb))\{([^{}]*)\}")
_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
}
# \"o, \"{o}, {\"o}, \'{e}, \v{s}, \c{c}
_ACCENT = re.compile(r"\{?\\([\"'`^~=.]|[uvHck](?=[{ ]))\s*\{?([A-Za-z])\}?\}?")
_SPECIAL = {
    r"\&": "&",
    r"\%": "%",
    r"\$": "$",
    r"\#": "#",
    r"\_": "_",
    r"\ss": "ß",
    r"\o": "ø",
    r"\O": "Ø",
    r"\aa": "å",
    r"\AA": "Å",
    r"\ae": "æ",
    r"\l": "ł",
    "~": " ",
    "--": "–",
}


def strip_announce(text: str) -> str:
    return _ANNOUNCE.sub("", text, count=1)


def delatex(text: str) -> str:
    """Undo the LaTeX that leaks into titles and abstracts; leave real math ($x^2$) alone."""
    for _ in range(3):  # nested groups unwrap from the inside out
        text = _FONT_GROUP.sub(r"\1", text)
        text = _FONT_CMD.sub(r"\1", text)
    text = _ACCENT.sub(lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]), text)
    for raw, plain in _SPECIAL.items():
        if raw.startswith("\\"):
            text = re.sub(re.escape(raw) + r"(?![A-Za-z])", plain, text)
        elif "$" not in text:  # "~" and "--" mean something else inside math
            text = text.replace(raw, plain)
    text = text.replace("``", "“").replace("''", "”")
    return text


def clean(text: str | None, *, strip_tags: bool = False) -> str:
    """One paragraph of clean text."""
    if not text:
        return ""
    text = strip_announce(text)
    if strip_tags:
        text = _TAG.sub(" ", text)
    text = html.unescape(text)  # before the control check: "&#27;" is an escape character too
    text = delatex(text)
    return one_line(text)

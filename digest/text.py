"""Text on its way to a person: a template, a mail header or a terminal.

Inputs are written by strangers (feeds, dumps, JSON) and by hand (subscribers.yaml). Control
characters in them can rewrite a terminal, break a mail header or make mjml refuse a
document; bidi overrides can make text read other than it is. Everything shown passes
through `printable` (or `one_line`); every link through `http_url`.
"""

from __future__ import annotations

import re
import reprlib
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

# C0 controls except tab, LF and CR; DEL and the C1 controls; the bidi embeddings, overrides
# and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI); the Unicode line/paragraph separators.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


# Terminal escape sequences as a whole (CSI "ESC [ 31m", OSC "ESC ] ... BEL"), so no "[31m" is left
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def printable(text: str) -> str:
    """`text` without terminal escapes, control and bidi-override characters (tabs and line
    breaks kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")  # a subscriber id: lower-case, safe in paths and URLs

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 4
_repr.maxlevel = 2
QUOTED_CHARS = 200


def quoted(value: object) -> str:
    """A user's value quoted in a message: cut short (never expanded in full, whatever its size
    or nesting: at most QUOTED_CHARS), free of control characters (repr keeps it on one line)."""
    text = printable(_repr.repr(value))
    return text if len(text) <= QUOTED_CHARS else text[: QUOTED_CHARS - 3] + "..."


def one_line(text: str) -> str:
    """Printable text on one line, runs of whitespace collapsed: for headers and titles."""
    return " ".join(printable(text).split())


def has_controls(text: str) -> bool:
    return _CONTROLS.search(text) is not None


def http_url(value: object) -> str | None:
    """`value` if it is an absolute http(s) URL with a host and nothing hidden in it; else None.

    `javascript:`, `data:`, relative and schemeless URLs never become links."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > 2048 or has_controls(url) or any(ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def mask_query(url: str) -> str:
    """`url` with its query values and any password hidden: an api_key never reaches a screen."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***") for k, _ in pairs], safe="*") if pairs else "***"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


_WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A light plural stemmer: "networks" and "network", "studies" and "study" meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-case, plural-stemmed words: the one tokenizer of digest's lexical evidence."""
    return [stem(w) for w in _WORD.findall(text.lower())]


# --- math a person can read -------------------------------------------------------------------

# inline math: $...$ not escaped, not $$, and not padded with spaces ("costs $5 and $6" is money)
_MATH = re.compile(r"(?<![\\$])\$(?![\s$])(.+?)(?<![\s\\$])\$(?!\$)")
_SUPER = str.maketrans("0123456789+-=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ")
_SUB = str.maketrans("0123456789+-=()aeoxhklmnpstijruv", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼᵣᵤᵥ")
_SCRIPT = re.compile(r"([_^])(?:\{([^{}]{1,12})\}|([A-Za-z0-9+\-]))")


def _scripts(text: str) -> str:
    """x^2 -> x², a_{ij} -> aᵢⱼ; a script with a character that has no Unicode form is kept
    in parentheses, R^{n\\times d} -> R^(n×d), so it never runs into the next word."""

    def one(m: re.Match[str]) -> str:
        body = m.group(2) if m.group(2) is not None else m.group(3)
        table = _SUPER if m.group(1) == "^" else _SUB
        out = body.translate(table)
        if all(ord(ch) > 127 for ch in out):
            return out
        if m.group(2) is None or len(body) == 1 or re.fullmatch(r"\\[A-Za-z]+", body):
            return m.group(0)  # one symbol ("\\infty", "\\max") needs no parentheses
        return m.group(1) + (body if body.startswith("(") and body.endswith(")") else f"({body})")

    return _SCRIPT.sub(one, text)


def _math_text(latex: str) -> str:
    try:
        from pylatexenc.latex2text import LatexNodes2Text
    except ImportError:  # pragma: no cover - a dependency; the raw math is still readable enough
        return latex
    converter = LatexNodes2Text(math_mode="text", strict_latex_spaces="based-on-source")
    try:
        return converter.latex_to_text(_scripts(latex)).strip()
    except Exception:  # noqa: BLE001 - odd LaTeX from a feed must never break a mail
        return latex


# display math and the other inline forms: $$...$$, \[...\], \(...\), then $...$ as above
ANY_MATH = re.compile(
    r"\$\$(?P<display>.+?)\$\$|\\\[(?P<bracket>.+?)\\\]|\\\((?P<paren>.+?)\\\)|" + _MATH.pattern, re.DOTALL
)
_EM_DASH = re.compile(r"(?<!-)---(?!-)")
_EN_DASH = re.compile(r"(?<![-<])--(?![->])")  # not an arrow ("-->", "<--")


def _dashes(text: str) -> str:
    """TeX's dashes as a reader sees them: "---" an em dash, "--" an en dash (Erdős–Rényi)."""
    return _EN_DASH.sub("\u2013", _EM_DASH.sub("\u2014", text)) if "--" in text else text


def readable(text: str) -> str:
    """`text` with its math as readable Unicode ("$\\bf{D^3}$QE" -> "D³QE"), whichever way it is
    delimited ($...$, $$...$$, \\(...\\), \\[...\\]), and TeX dashes outside math as dashes; for
    display only: the stored text stays as ingested. Text outside math is otherwise left alone
    ("50% of" would be a LaTeX comment)."""
    if "$" not in text and "\\" not in text:
        return _dashes(text)
    out, last = [], 0
    for m in ANY_MATH.finditer(text):
        out.append(_dashes(text[last : m.start()]))
        latex = next(g for g in m.groups() if g is not None)
        out.append(_math_text(latex))
        last = m.end()
    out.append(_dashes(text[last:]))
    return "".join(out)

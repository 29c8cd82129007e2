"""Author names, matched however they are written (the `authors:` a subscriber follows).

The rule. A followed name matches a paper's author when

1. the surnames are the same after folding: case, accents and spaces/hyphens do not count
   ("Søgaard" = "Sogaard", "Torre-Vanegas" = "Torre Vanegas", "LeCun" = "Le Cun"), but every
   letter does: particles are part of the surname ("van der Maaten" is not "Maaten"), and a
   surname is never a prefix match ("Li" is not "Lin");
2. the first given names agree: the same name, or an initial and a name that starts with it
   ("A." = "Anders"); a hyphenated given name is one name, agreeing part by part
   ("J.-P." = "Jean-Philippe"; "J." = "Jean-Philippe"; but "Jean" is not "Jean-Philippe", nor
   "Wei" "Wei-An"); given names written together or apart are the same ("Chiawen" = "Chia-Wen");
3. further (middle) given names agree where both sides have one, the same way; a middle name
   written on one side only is ignored ("Yann A. LeCun" = "Yann LeCun", not "Yann B. LeCun").

Folding: Unicode NFKD with the accents dropped, lower case, and the letters NFKD leaves alone
spelled in ASCII: ø→o, ł→l, ß→ss, æ→ae, œ→oe, đ/ð→d, þ→th, ı→i. Transliterations are not
guessed: "Schölkopf" matches "Scholkopf", not "Schoelkopf".

How a name is read:
- "Last, First" (one comma) is the surname first: "Bottou, Léon", "van der Maaten, Laurens";
  lower-case particles at the end of the given part belong to the surname ("Maaten, Laurens van der").
- Otherwise the last word is the surname, together with the particles (van, von, de, der, la, di, ...)
  written just before it, when they are in lower case ("Laurens van der Maaten") or two or more
  in a row ("Fernando De La Torre"). A single capitalised particle ("Anh Van Nguyen") is read as a
  middle name, since in many names it is one; rule 1 still matches "Gerard De Melo" with
  "Gerard de Melo", because a surname may take up the whole given names written before it.
  Only whole names are taken up that way, never an initial: "Mony J. Leon" is not "Mony J. de Leon".
- Initials may be written with or without dots and spaces: "A. B." = "A.B." = "A B"; two or three
  capitals without dots are initials too: "JP Vert" = "J. P. Vert" (unless the whole name is in
  capitals), so "JP Vert" matches "Jean-Philippe Vert" and "J.-P. Vert" (J for the first name,
  P a middle initial that the other side lacks) but also "Jean Paul Vert".
- Surname first without a comma is understood only when the rest are initials: "Bottou L.";
  "BOTTOU Léon" or "Zhang San" are read as given name first (write "Bottou, Léon").
- Ignored: anything in brackets ("Léon Bottou (Meta)"), digits and footnote marks, other
  punctuation, apostrophes ("O'Brien" = "OBrien"), and the suffixes Jr, Sr, II, III, IV.
- A single word ("NVIDIA") is a name with no given names; it matches only the same single word.
  A name is never matched by a bare surname: "Søgaard" alone does not match "Anders Søgaard".

`ambiguous` tells a name of initials only ("A. Søgaard"): it matches every Søgaard whose given
name starts with A, and the caller may want to say so.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Followed", "Name", "ambiguous", "ambiguous_name", "author_index", "matches", "parse"]

# letters NFKD does not decompose into a base letter plus accents (lower case: we fold after casefold)
_SPELLED = str.maketrans({
    "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
    "ħ": "h", "ŧ": "t", "ŀ": "l", "ŋ": "n", "ĸ": "k", "ſ": "s",
})
_PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "dei", "degli", "da", "das", "dos", "do",
    "du", "di", "la", "le", "les", "lo", "ten", "ter", "te", "zu", "zum", "zur", "bin", "ibn",
    "al", "el", "st",
})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})

_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_APOSTROPHES = re.compile(r"['’ʼ`´]")
_HYPHENS = re.compile(r"[-‐‑‒–—]")
_INNER_DOT = re.compile(r"\.(?=\w)")  # "A.B." -> "A. B."
# a word: letters, with the combining marks a decomposed (NFD) accent is written with
_WORD = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f])+")
_PROBE = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f]){2,}")


@dataclass(frozen=True)
class Name:
    """A person's name, folded for matching."""

    first: tuple[str, ...]  # given names (and middle), folded; an initial is one letter
    last: str  # surname, folded, particles included ("van der maaten")


def _fold(text: str) -> str:
    """`text` in lower-case ASCII-like letters: accents dropped, ø→o, ł→l, ß→ss, æ→ae, ..."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.translate(_SPELLED)


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    return _fold(word)


@dataclass(frozen=True)
class _Part:
    text: str  # as written, punctuation gone
    dotted: bool  # written with a dot after it ("A.")


# A word is what spaces separate; its parts are what hyphens and dots separate: "J.-P." is one word
# of two parts, J and P; "Torre-Vanegas" one word of two parts.
_Word = tuple[_Part, ...]


def _words(text: str) -> list[_Word]:
    words = []
    for chunk in _INNER_DOT.sub(". ", _APOSTROPHES.sub("", text)).split():
        chunk = _HYPHENS.sub(" ", chunk)
        parts = tuple(
            _Part(match.group(), chunk[match.end():match.end() + 1] == ".") for match in _WORD.finditer(chunk)
        )
        if parts:
            words.append(parts)
    return words


def _is(word: _Word, kind: frozenset[str]) -> bool:
    """`word` is a single part found (folded) in `kind` (_PARTICLES, _SUFFIXES)."""
    return len(word) == 1 and _fold_word(word[0].text) in kind


def _is_initial(word: _Word) -> bool:
    return all(len(part.text) == 1 for part in word)


def _drop_suffixes(words: list[_Word], keep: int) -> list[_Word]:
    """`words` without a trailing Jr, Sr, II, ...; at least `keep` words stay."""
    while len(words) > keep and _is(words[-1], _SUFFIXES):
        words = words[:-1]
    return words


def _given(words: Iterable[_Word], all_caps: bool) -> tuple[str, ...]:
    """Given names folded, a hyphenated one kept whole ("jean-philippe", "j-p");
    "JP" (2-3 capitals, no dot, in a name not all in capitals) is two initials."""
    names: list[str] = []
    for word in words:
        text = word[0].text
        if len(word) == 1 and not all_caps and 2 <= len(text) <= 3 and text.isupper() and not word[0].dotted:
            names.extend(_fold(letter) for letter in text)
        else:
            names.append("-".join(folded for folded in (_fold(part.text) for part in word) if folded))
    return tuple(name for name in names if name)


def _surname(words: Iterable[_Word]) -> str:
    return " ".join(folded for word in words for folded in (_fold(part.text) for part in word) if folded)


def _particles_before_last(words: list[_Word]) -> int:
    """How many words just before the last one are surname particles: lower case, or two or more
    in a row ("De La Torre"); a first word always stays a given name."""
    run = 0
    while run + 3 <= len(words) and _is(words[-2 - run], _PARTICLES):
        run += 1
    if run == 1 and not words[-2][0].text.islower():
        return 0  # "Anh Van Nguyen": a middle name
    return run


def _parse_last_first(last_part: str, first_part: str, all_caps: bool) -> Name | None:
    surname = _drop_suffixes(_words(last_part), keep=1)
    given = _words(first_part)
    while len(given) > 1 and _is(given[-1], _PARTICLES) and given[-1][0].text.islower():
        surname = [given.pop(), *surname]  # "Maaten, Laurens van der"
    last = _surname(surname)
    return Name(_given(given, all_caps), last) if last else None


def _parse_first_last(words: list[_Word], all_caps: bool) -> Name | None:
    words = _drop_suffixes(words, keep=2)
    if len(words) > 1 and not _is_initial(words[0]) and all(map(_is_initial, words[1:])):
        return Name(_given(words[1:], all_caps), _surname(words[:1]))  # "Bottou L."
    split = len(words) - 1 - _particles_before_last(words)
    last = _surname(words[split:])
    return Name(_given(words[:split], all_caps), last) if last else None


@lru_cache(maxsize=65536)
def parse(name: str) -> Name | None:
    """`name` read as given names and surname (see the module docstring); None when it has no letters."""
    text = _BRACKETED.sub(" ", name)
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    all_caps = all(ch.isupper() for ch in letters)
    parts = [part for part in text.split(",") if _words(part)]
    parts = [part for part in parts if not _is_suffix(part)] or parts
    if not parts:
        return None
    if len(parts) >= 2:
        return _parse_last_first(parts[0], parts[1], all_caps)
    return _parse_first_last(_words(parts[0]), all_caps)


def _is_suffix(part: str) -> bool:
    words = _words(part)
    return len(words) == 1 and _is(words[0], _SUFFIXES)


def _key(surname: str) -> str:
    """A surname as compared: its letters, spaces gone ("van der maaten" -> "vandermaaten")."""
    return surname.replace(" ", "")


def _is_initials(name: str) -> bool:
    """`name` is an initial, or hyphenated initials ("j-p")."""
    return all(len(part) == 1 for part in name.split("-"))


def _has_initial(given: Iterable[str]) -> bool:
    return any(len(part) == 1 for name in given for part in name.split("-"))


def _letters(given: Iterable[str]) -> str:
    return "".join(given).replace("-", "")


def _agree(one: str, other: str) -> bool:
    """Two given names agree: the same, an initial and a name starting with it ("a", "anders";
    "j", "jean-philippe"), or hyphenated names agreeing part by part ("j-p", "jean-philippe")."""
    if len(one) == 1 or len(other) == 1:
        return one[0] == other[0]
    one_parts, other_parts = one.split("-"), other.split("-")
    if len(one_parts) != len(other_parts):
        return False
    if len(one_parts) == 1:
        return one == other
    return all(_agree(a, b) for a, b in zip(one_parts, other_parts, strict=True))


def _given_match(one: tuple[str, ...], other: tuple[str, ...]) -> bool:
    if not one or not other:
        return not one and not other
    if not _has_initial((*one, *other)) and _letters(one) == _letters(other):
        return True  # "chiawen" = "chia-wen" = "chia wen"
    return all(_agree(a, b) for a, b in zip(one, other, strict=False))


def _rest_of_given(surname_key: str, name: Name) -> tuple[str, ...] | None:
    """`name`'s given names once its surname is read as `surname_key`, or None when it can't be.

    The surname may take up whole given names written before it ("Gerard De Melo" read as
    surname "demelo" leaves "gerard"), never an initial.
    """
    key = _key(name.last)
    given = name.first
    for taken in range(len(given) + 1):
        rest, taken_up = given[:len(given) - taken], given[len(given) - taken:]
        if _has_initial(taken_up):
            return None
        if _letters(taken_up) + key == surname_key:
            return rest
    return None


def matches(followed: Name, author: Name) -> bool:
    """Whether `author` (from a paper) is the person `followed` names; the rule is symmetric."""
    rest = _rest_of_given(_key(followed.last), author)
    if rest is not None and _given_match(followed.first, rest):
        return True
    rest = _rest_of_given(_key(author.last), followed)
    return rest is not None and _given_match(rest, author.first)


def ambiguous(followed: Name) -> bool:
    """True for a name of initials only ("A. Søgaard"): it may match several people."""
    return bool(followed.first) and all(_is_initials(name) for name in followed.first)


def ambiguous_name(written: str) -> bool:
    """`ambiguous` for a name as written; False for one that is not a name."""
    name = parse(written)
    return name is not None and ambiguous(name)


def _probes(name: Name) -> set[str]:
    """Every folded word an author's name must contain to possibly match `name`: the word its
    surname ends with is a tail of `name`'s letters (surname, maybe with given names before it)."""
    letters = _letters(given for given in name.first if not _has_initial([given])) + _key(name.last)
    return {letters[start:] for start in range(len(letters) - 1)}


def author_index(author_lists: Iterable[Iterable[str]]) -> dict[str, list[int]]:
    """Folded name word -> the items (papers) with an author holding it: built once for a day,
    it spares every follower a pass over every author."""
    index: dict[str, list[int]] = {}
    for i, authors in enumerate(author_lists):
        for word in {_fold_word(w) for author in authors for w in _PROBE.findall(author)}:
            index.setdefault(word, []).append(i)
    return index


class Followed:
    """A subscriber's followed names, parsed once, indexed by the tails of their surnames."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names: list[tuple[str, Name]] = []
        self._index: dict[str, list[int]] = {}
        for written in names:
            name = parse(written)
            if name is None:
                continue
            position = len(self._names)
            self._names.append((written, name))
            for probe in _probes(name):
                self._index.setdefault(probe, []).append(position)

    @property
    def words(self) -> set[str]:
        """Every folded word an author's name needs to hold to match one of these names."""
        return set(self._index)

    def _candidates(self, author: str) -> list[int]:
        """Followed names `author` could match, in the subscriber's order; no parsing."""
        found: set[int] = set()
        for word in _PROBE.findall(author):
            found.update(self._index.get(_fold_word(word), ()))
        return sorted(found)

    def match(self, authors: Iterable[str]) -> str | None:
        """The followed name (as the subscriber wrote it) that one of `authors` matches, else None."""
        if not self._names:
            return None
        for author in authors:
            candidates = self._candidates(author)
            if not candidates:
                continue
            name = parse(author)
            if name is None:
                continue
            for position in candidates:
                written, followed = self._names[position]
                if matches(followed, name):
                    return written
        return None

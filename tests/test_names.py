"""digest.names: followed authors match however their names are written."""

from __future__ import annotations

import pytest

from digest.names import Followed, Name, ambiguous, matches, parse

# Real author names: the left side of each pair is exactly as it appears in the "authors" field of
# the arXiv listings in /work/shared/data/arxiv_daily/raw_daily_listings/*.jsonl (public author
# names); the right side is how a subscriber might write the same person in subscribers.yaml.
SAME_PERSON = [
    ("Léon Bottou", "Leon Bottou"),  # accents
    ("Léon Bottou", "Bottou, Léon"),  # "Last, First"
    ("Léon Bottou", "L. Bottou"),  # initial followed
    ("Léon Bottou", "LEON BOTTOU"),  # case
    ("Léon Bottou", "Léon Bottou (Meta AI)"),  # affiliation in brackets
    ("Anders Søgaard", "A. Søgaard"),  # initial, ø
    ("Anders Søgaard", "Anders Sogaard"),  # ø -> o
    ("Yann LeCun", "Yann A. LeCun"),  # middle initial on one side only
    ("Yann LeCun", "Yann Le Cun"),  # a surname written in two words
    ("Lonneke van der Plas", "L. van der Plas"),  # particles
    ("Lonneke van der Plas", "van der Plas, Lonneke"),
    ("Anton van den Hengel", "Anton Van Den Hengel"),  # capitalised particles
    ("Anton van den Hengel", "Hengel, Anton van den"),  # particles after the comma
    ("Fernando De La Torre", "Fernando de la Torre"),
    ("Fernando De la Torre", "Torre, Fernando de la"),
    ("Gerard de Melo", "G. de Melo"),
    ("Gerard de Melo", "Gerard De Melo"),  # a single capitalised particle
    ("Julio de la Torre-Vanegas", "Julio de la Torre Vanegas"),  # hyphen vs space in a surname
    ("Daniel Gonzálbez-Biosca", "Daniel Gonzalbez Biosca"),
    ("Rune Møberg Jacobsen", "Rune Jacobsen"),  # middle name on one side only
    ("Rune Møberg Jacobsen", "R. M. Jacobsen"),  # initials for both
    ("Torbjørn Netland", "Torbjorn Netland"),
    ("Michał Tarnawski", "Michal Tarnawski"),  # ł -> l
    ("Simon Reiß", "Simon Reiss"),  # ß -> ss
    ("Alper Yıldırım", "Alper Yildirim"),  # dotless ı
    ("Mustafa İzzet Muştu", "Mustafa Mustu"),  # dotted İ, cedilla, middle name
    ("Ömer Veysel Çağatan", "Omer V. Cagatan"),
    ("Björn W. Schuller", "Bjorn Schuller"),
    ("Jürgen Schmidhuber", "J. Schmidhuber"),
    ("Jonathan A. Karr Jr", "Jonathan Karr"),  # suffix
    ("Jonathan A. Karr Jr", "Karr, Jr., Jonathan A."),
    ("Chia-Wen Lin", "C.-W. Lin"),  # hyphenated given name, initials
    ("Chia-Wen Lin", "Chiawen Lin"),  # given names written together
    ("Ştefan-Bogdan Badea", "S.-B. Badea"),  # hyphenated given name, part by part
    ("Ştefan-Bogdan Badea", "S. Badea"),
    ("Chia-Wen Lin", "Chia Wen Lin"),
    ("A. B. Siddique", "AB Siddique"),  # capitals without dots are initials
    ("Dayyán O'Brien", "Dayyan OBrien"),  # apostrophe
    ("Mony J. de Leon", "Mony de Leon"),
]

# Pairs that must NOT match: different people, or names we refuse to guess at.
DIFFERENT_PEOPLE = [
    ("Anders Søgaard", "Bjarne Søgaard"),  # different first name
    ("Anders Søgaard", "B. Søgaard"),  # initial disagrees
    ("Anders Søgaard", "Anders Sørensen"),  # different surname
    ("Anders Søgaard", "Søgaard"),  # a bare surname is not enough
    ("Bin Li", "Bin Lin"),  # a surname that is a prefix of another
    ("Hongfei Lin", "Hongfei Li"),
    ("Binbin Lin", "Bin Lin"),  # a given name that is a prefix of another
    ("Yann LeCun", "Yann LeCu"),
    ("Björn W. Schuller", "Björn K. Schuller"),  # middle initials disagree on both sides
    ("Rune Møberg Jacobsen", "Rune Kristian Jacobsen"),  # middle names disagree on both sides
    ("Fernando De La Torre", "Fernando Torre"),  # particles are part of the surname
    ("Lonneke van der Plas", "Lonneke Plas"),
    ("Anton van den Hengel", "Anton van der Hengel"),
    ("Mony J. de Leon", "Mony J. Leon"),  # an initial never becomes part of the surname
    ("Julio de la Torre-Vanegas", "Julio de la Torre"),  # half a double surname
    ("Fernando De la Torre", "Daniel Torres"),
    ("Gerard de Melo", "Maer Rodrigues de Melo"),
    ("Léon Bottou", "Léo Bottou"),  # a name is not an abbreviation of a longer one
    ("Chia-Wen Lin", "Chih-Hao Lin"),
    ("Wei-An Wang", "Wei Wang"),  # a hyphenated given name is one name
    ("Ştefan-Bogdan Badea", "Stefan Badea"),
    ("Chia-Wen Lin", "C.-H. Lin"),
    ("Bernhard Schölkopf", "Bernhard Schoelkopf"),  # transliterations are not guessed
    ("Jonathan A. Karr Jr", "Jonathan A. Carr"),
]


def _parsed(name: str) -> Name:
    parsed = parse(name)
    assert parsed is not None, name
    return parsed


@pytest.mark.parametrize(("listed", "followed"), SAME_PERSON)
def test_variants_of_a_real_name_match(listed: str, followed: str) -> None:
    assert matches(_parsed(followed), _parsed(listed))


@pytest.mark.parametrize(("listed", "followed"), SAME_PERSON)
def test_matching_is_symmetric(listed: str, followed: str) -> None:
    assert matches(_parsed(listed), _parsed(followed))


@pytest.mark.parametrize(("listed", "followed"), DIFFERENT_PEOPLE)
def test_near_misses_do_not_match(listed: str, followed: str) -> None:
    assert not matches(_parsed(followed), _parsed(listed))
    assert not matches(_parsed(listed), _parsed(followed))


def test_parse_reads_last_comma_first() -> None:
    assert parse("Bottou, Léon") == Name(("leon",), "bottou")


def test_parse_strips_affiliation_in_brackets() -> None:
    assert parse("Léon Bottou (MIT)") == Name(("leon",), "bottou")
    assert parse("Léon Bottou [NYU]") == Name(("leon",), "bottou")


def test_parse_ignores_digits_footnote_marks_and_extra_whitespace() -> None:
    assert parse("  Léon   Bottou1,*  ") == Name(("leon",), "bottou")


def test_parse_folds_decomposed_accents_too() -> None:
    assert parse("Le\u0301on Bottou") == Name(("leon",), "bottou")


def test_parse_keeps_particles_in_the_surname() -> None:
    assert parse("Laurens van der Maaten") == Name(("laurens",), "van der maaten")
    assert parse("Maaten, Laurens van der") == Name(("laurens",), "van der maaten")
    assert parse("Fernando De La Torre") == Name(("fernando",), "de la torre")


def test_parse_reads_a_single_capitalised_particle_as_a_middle_name() -> None:
    assert parse("Anh Van Nguyen") == Name(("anh", "van"), "nguyen")


def test_parse_keeps_a_hyphenated_surname_whole() -> None:
    assert parse("Julio de la Torre-Vanegas") == Name(("julio",), "de la torre vanegas")


def test_parse_keeps_hyphenated_given_names_whole_and_splits_initials() -> None:
    assert parse("Jean-Philippe Vert") == Name(("jean-philippe",), "vert")
    assert parse("J.-P. Vert") == Name(("j-p",), "vert")
    assert parse("JP Vert") == Name(("j", "p"), "vert")
    assert parse("J.P. Vert") == Name(("j", "p"), "vert")
    assert parse("A.B. Siddique") == parse("A B Siddique") == Name(("a", "b"), "siddique")


def test_parse_drops_suffixes() -> None:
    assert parse("Jonathan A. Karr Jr") == Name(("jonathan", "a"), "karr")
    assert parse("Jonathan A. Karr, Jr.") == Name(("jonathan", "a"), "karr")
    assert parse("Martin Luther King III") == Name(("martin", "luther"), "king")


def test_parse_reads_surname_then_initials() -> None:
    assert parse("Bottou L.") == Name(("l",), "bottou")


def test_parse_of_a_single_word_has_no_given_names() -> None:
    assert parse("NVIDIA") == Name((), "nvidia")


@pytest.mark.parametrize("unusable", ["", "   ", ":", "(MIT)", "1, 2", "*†"])
def test_parse_returns_none_without_letters(unusable: str) -> None:
    assert parse(unusable) is None


def test_jean_philippe_matches_all_its_abbreviations() -> None:
    full = _parsed("Jean-Philippe Vert")
    for written in ("J.-P. Vert", "J. P. Vert", "JP Vert", "J.P. Vert", "Jean-P. Vert", "J. Vert"):
        assert matches(_parsed(written), full), written
    for other in ("J.-Q. Vert", "Jean Vert", "Jean P. Vert", "Philippe Vert"):
        assert not matches(_parsed(other), full), other


def test_capital_initials_may_stand_for_first_and_middle_name() -> None:
    assert matches(_parsed("JP Vert"), _parsed("Jean Paul Vert"))
    assert not matches(_parsed("JP Vert"), _parsed("Jean Quentin Vert"))


def test_a_single_word_matches_only_itself() -> None:
    assert matches(_parsed("NVIDIA"), _parsed("Nvidia"))
    assert not matches(_parsed("NVIDIA"), _parsed("Jensen Nvidia"))


@pytest.mark.parametrize("name", ["A. Søgaard", "J.-P. Vert", "JP Vert", "A. B. Siddique", "Bottou L."])
def test_initials_only_names_are_ambiguous(name: str) -> None:
    assert ambiguous(_parsed(name))


@pytest.mark.parametrize("name", ["Anders Søgaard", "Jean P. Vert", "A. Murat Tekalp", "NVIDIA"])
def test_names_with_a_full_given_name_are_not_ambiguous(name: str) -> None:
    assert not ambiguous(_parsed(name))


def test_followed_returns_the_subscribers_own_spelling() -> None:
    followed = Followed(["Léon Bottou", "A. Søgaard"])
    assert followed.match(["Sijia Chen", "Anders Søgaard"]) == "A. Søgaard"
    assert followed.match(["Bottou, Leon"]) == "Léon Bottou"


def test_followed_returns_none_when_no_author_matches() -> None:
    followed = Followed(["Léon Bottou", "A. Søgaard"])
    assert followed.match(["Bin Li", "Bjarne Søgaard", "Léo Bottou"]) is None
    assert followed.match([]) is None


def test_followed_takes_the_first_matching_author() -> None:
    followed = Followed(["Léon Bottou", "Yann LeCun"])
    assert followed.match(["Yann LeCun", "Léon Bottou"]) == "Yann LeCun"


def test_followed_ignores_unusable_names() -> None:
    followed = Followed(["", "  ", "(MIT)"])
    assert followed.match(["Léon Bottou", ""]) is None
    assert Followed([]).match(["Léon Bottou"]) is None


def test_followed_finds_surnames_written_differently() -> None:
    followed = Followed(["Yann LeCun", "Julio de la Torre Vanegas", "Laurens van der Maaten"])
    assert followed.match(["Yann Le Cun"]) == "Yann LeCun"
    assert followed.match(["Julio de la Torre-Vanegas"]) == "Julio de la Torre Vanegas"
    assert followed.match(["Maaten, L. van der"]) == "Laurens van der Maaten"


def test_followed_does_not_parse_authors_without_a_followed_surname() -> None:
    followed = Followed(["Anders Søgaard"])
    before = parse.cache_info()
    assert followed.match(["Sijia Chen", "Yanqiu Yu", "En Yu", "Wenbing Tao (HUST)"]) is None
    after = parse.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)

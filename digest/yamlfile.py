"""Hand-edited YAML, read safely and fast: PyYAML's safe loader (libyaml's parser when the wheel
has it) refusing what such a file never needs and an attacker would use, the line of any node
for messages, and a size limit.

    read_text(path, limit=..., missing=...)   the text, or ConfigError saying what to do
    load(text) -> (data, root)                 the document and its composed root; Refused
    line_of(root, "subscribers", 3, "email")   the 1-based line of a node, for a message
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .text import quoted


def read_text(path: Path, *, limit: int, missing: str) -> str:
    """The file's text (UTF-8, a BOM dropped), refused over `limit` bytes; ConfigError saying
    `missing` (what to do) when there is no such file."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ConfigError(
                f"{path}: {size / 2**20:.1f} MB is over the {limit // 2**20} MB limit for this file; "
                "is this the right file?"
            )
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; {missing}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc


def line_of(node: yaml.Node | None, *path: str | int) -> int | None:
    """1-based line of the node at `path` inside a composed YAML document, if found."""
    for key in path:
        if node is None:
            return None
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            return None
    return None if node is None else node.start_mark.line + 1


@contextmanager
def collector_paused() -> Iterator[None]:
    """Reading a file of 20,000 subscribers makes millions of small objects, none of them garbage: the
    cycle collector would walk them all again and again (it halves the time to leave it off for
    the read; what it would have found is collected after)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Checks:
    """What a hand-edited subscriber list never needs and an attacker would use, refused: a key
    given twice (the second silently won), and aliases to lists or mappings (nested, they expand
    exponentially: the "billion laughs")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise Refused(
                    f"line {line}: duplicate key {quoted(key)} (first on line {seen[key]}); keep one of them"
                )
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _Loader(_Checks, yaml.SafeLoader):
    """The pure-Python loader: it sees each alias as it composes, so it names the alias and its
    line. Used for the message when the fast loader refuses a file or finds it broken."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if isinstance(node, yaml.CollectionNode):
                raise Refused(
                    f"line {event.start_mark.line + 1}: the alias *{quoted(event.anchor)} repeats a list "
                    "or mapping; write it out, or put shared settings under 'defaults:'"
                )
        return super().compose_node(parent, index)


class _FastLoader(_Checks, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser and composer (20,000 subscribers in a second or two, against half a
    minute in pure Python), with the same refusals. Composing cannot expand an alias (a node is
    shared, not copied); constructing the same list or mapping a second time is the alias."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if isinstance(node, yaml.CollectionNode) and node in self.constructed_objects:
            raise Refused("an alias repeats a list or mapping")
        return super().construct_object(node, deep=deep)


class Refused(yaml.YAMLError):
    """A file that uses what a hand-edited list never needs (duplicate keys, aliases to collections)."""


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its composed root (for `line_of`); Refused, or yaml.YAMLError with the
    line it stopped at. The fast loader reads a good file; a file it refuses or cannot parse is
    read again by the pure-Python one, whose message says exactly where (it stops at the first
    alias or error, so a bomb stays cheap). The cycle collector is paused for the read."""
    with collector_paused():
        try:
            return _compose_and_construct(_FastLoader, text)
        except yaml.YAMLError:
            return _compose_and_construct(_Loader, text)


def _compose_and_construct(kind: type, text: str) -> tuple[Any, yaml.Node | None]:
    loader = kind(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()

"""One strict YAML loader for the files people write by hand: policies, ceremony plans and
rehearsal answers.

:class:`StrictSafeLoader` is PyYAML's ``SafeLoader`` that refuses every explicit tag
(``!!binary``, ``!!python/object:...``, ``!!str``, ``!custom``, ``!<tag:...>``) while it
composes the node tree: our files are plain YAML whose meaning the reader decides, never the
file. The refusal is a ``yaml.MarkedYAMLError`` carrying the tag's position, so callers that
already turn YAML errors into ``file:line`` messages report it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, cast

import yaml
from yaml.composer import ComposerError
from yaml.error import Mark
from yaml.events import CollectionStartEvent, ScalarEvent

# The non-specific tag "!" (a quoted scalar's implicit str) is no explicit tag.
_NON_SPECIFIC = (None, "!")


class ExplicitTagRefused(ComposerError):
    """A YAML tag in a file we read strictly."""


class StrictSafeLoader(yaml.SafeLoader):
    """``SafeLoader`` without explicit tags: a tagged node is refused with its position."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, ScalarEvent | CollectionStartEvent) and (
            event.tag not in _NON_SPECIFIC
        ):
            mark = cast(Mark | None, event.start_mark)
            raise ExplicitTagRefused(
                None,
                None,
                f"YAML tag {event.tag!r} is not allowed (write plain values, no tags)",
                mark,
            )
        return super().compose_node(parent, index)


def compose(text: str) -> yaml.Node | None:
    """The single document of ``text`` as a node tree (``None`` when empty), tags refused."""
    return yaml.compose(text, Loader=StrictSafeLoader)


def safe_load(text: str) -> Any:
    """Plain Python values of the single document of ``text``, tags refused."""
    return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 -- a SafeLoader subclass


def mapping_nodes(
    node: yaml.Node,
    where: str,
    allowed: Collection[str],
    required: Collection[str],
    fail: Callable[[yaml.Node, str], Exception],
) -> dict[str, yaml.Node]:
    """The keys and value nodes of a mapping read strictly: plain unique keys, only
    ``allowed`` ones, every ``required`` one present. ``fail(node, message)`` makes the error
    (the caller's type, carrying the node's file:line)."""
    if not isinstance(node, yaml.MappingNode):
        raise fail(node, f"{where} must be a mapping")
    out: dict[str, yaml.Node] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise fail(knode, f"{where}: keys must be plain strings")
        key = str(knode.value)
        if key in out:
            raise fail(knode, f"{where}: duplicate key {key!r}")
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise fail(knode, f"{where}: unknown key {key!r} (known: {known})")
        out[key] = vnode
    for key in sorted(required):
        if key not in out:
            raise fail(node, f"{where}: missing required key {key!r}")
    return out


__all__ = ["ExplicitTagRefused", "StrictSafeLoader", "compose", "mapping_nodes", "safe_load"]

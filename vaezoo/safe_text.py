"""YAML and JSON that cannot hurt: the safe loaders, plus limits on what a file may make us build.

``yaml.safe_load`` already constructs no Python objects beyond plain data. What it still
allows, and this module refuses:

* a key given twice in one mapping (PyYAML keeps the last one silently): an error naming the
  key and both lines;
* alias expansion that explodes ("billion laughs": ten aliases of ten aliases of ... build a
  tree of 10^9 nodes out of a few hundred bytes; every later deep copy, validation or dump
  would walk all of them): refused when the expanded document passes ``MAX_NODES``;
* absurd nesting: refused past ``MAX_DEPTH`` levels (PyYAML's composer recurses, so it would
  otherwise end in a RecursionError);
* bytes that are not UTF-8 text, and files larger than any config (``MAX_BYTES``).

JSON (``config.json``) has no aliases; its duplicate keys are refused the same way.
"""

from __future__ import annotations

from typing import Any

import json

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["load_yaml", "load_json", "decode_text", "YamlLimitError", "MAX_NODES", "MAX_DEPTH", "MAX_BYTES"]

MAX_NODES = 100_000  # the largest config in the zoo expands to a few hundred
MAX_DEPTH = 64
MAX_BYTES = 1 << 20


class YamlLimitError(yaml.YAMLError):
    """The document is larger or deeper than a config can be (``problem`` says which)."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, None


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                raise ConstructorError(
                    problem=f"the key {key!r} is given twice in one mapping, on line {first.start_mark.line + 1} "
                            f"and on line {key_node.start_mark.line + 1}: keep one",
                    problem_mark=key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_size(root: Node) -> None:
    """The node count and depth of the document with every alias expanded, computed over the
    graph of distinct nodes (each once), so that checking a bomb costs no more than reading it."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            on_path.discard(key)
            if size[key] > MAX_NODES:
                raise YamlLimitError(f"the document expands to more than {MAX_NODES:,} values (its aliases "
                                     f"repeat others many times over); a config is never that large")
            if depth[key] > MAX_DEPTH:
                raise YamlLimitError(f"the document nests deeper than {MAX_DEPTH} levels; a config never does")
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlLimitError("an alias refers to a value that holds it (a recursive document); a config is a tree")
        if len(on_path) > MAX_DEPTH:
            raise YamlLimitError(f"the document nests deeper than {MAX_DEPTH} levels; a config never does")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def decode_text(data: bytes, what: str = "the file") -> str:
    """``data`` as UTF-8 text, or a ValueError that says where it is not."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"{what} is {len(data):,} bytes; a config is at most {MAX_BYTES:,}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): "
                         f"save it as UTF-8") from None


def load_yaml(text: str) -> Any:
    """Plain data from YAML ``text``, as ``yaml.safe_load`` would give, within the limits above.
    Raises ``yaml.YAMLError`` (with ``problem`` and, where known, ``problem_mark``)."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlLimitError(f"the document nests deeper than {MAX_DEPTH} levels; a config never does") from None
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice in one object: keep one")
        out[key] = value
    return out


def load_json(text: str) -> Any:
    """``json.loads`` that refuses a key given twice in one object (json keeps the last silently).
    Raises ValueError (json.JSONDecodeError is one)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)

"""The one YAML reader of configs, ``inference.yml`` and PaddleClas deploy configs, bounded against hostile files.

YAML's safe loader runs no code, but a small file can still ask for unbounded work: aliases that name
aliases (a 1 KB "billion laughs" expands to 10^9 nodes in whatever walks the result, ``repr`` included),
nesting that overflows the recursive composer, an integer of a million digits. ``parse_yaml`` refuses these
while it composes, with one ``ConfigError`` line naming the file and the line, and refuses a key given twice
in one mapping (YAML keeps the last silently, so a repeated section would drop the first whole). Text must be
UTF-8 (a BOM is accepted) or UTF-16 with a BOM, as Windows editors write it.
"""
import codecs
import re

import yaml
from yaml.nodes import MappingNode, SequenceNode

from .errors import ConfigError, short_repr
from .fileio import read_regular_file

MAX_DEPTH = 64  # nested collections; PaddleClas's deepest config nests 6
MAX_ALIAS_NODES = 10_000  # nodes that aliases may add by repeating what their anchors hold
MAX_INT_DIGITS = 40  # every integer a config holds has a few digits; Python's int() of a million is slow
MAX_YAML_BYTES = 1 << 20  # a config or inference.yml is a few KB (1000 class names take ~20 KB)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """What the loader will not build; parse_yaml prefixes the file."""


class BoundedLoader(yaml.SafeLoader):
    """YAML's safe loader with the bounds above, duplicate keys refused, and ``1e-3`` read as a float
    (YAML 1.1 needs ``1.0e-3``; YAML 1.2 does not)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0
        self._open_anchors = set()
        self._measured = {}  # id(node) -> _measure(node)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        if not isinstance(event, yaml.ScalarEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels at line {event.start_mark.line + 1}")
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.discard(event.anchor)
            if not isinstance(event, yaml.ScalarEvent):
                self._depth -= 1

    def _count_alias(self, event):
        line = event.start_mark.line + 1
        if event.anchor in self._open_anchors:
            raise _Refused(f"alias {short_repr(event.anchor)} at line {line} refers to a collection that "
                           f"contains it")
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # yaml's own error names the undefined alias
        size, height = self._measure(node)
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _Refused(f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (at line {line}); "
                           f"write the values out instead")
        if self._depth + height > MAX_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels through alias {short_repr(event.anchor)} "
                           f"at line {line}")

    def _measure(self, node):
        """(nodes, nesting levels) that ``node`` stands for with its aliases expanded. Every alias inside it
        was measured when it was composed, so the recursion only follows the written nesting."""
        measured = self._measured.get(id(node))
        if measured is None:
            if isinstance(node, (SequenceNode, MappingNode)):
                children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
                sizes, heights = zip(*map(self._measure, children)) if children else ((), ())
                measured = (1 + sum(sizes), 1 + max(heights, default=0))
            else:
                measured = (1, 0)
            self._measured[id(node)] = measured
        return measured

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            self._refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicate_keys(self, node):
        first = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # '<<: *defaults' then a key of its own overrides the default, as intended
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: yaml's own error names it
            if seen is not key_node:
                raise _Refused(f"duplicate key {short_repr(key)} at lines {seen.start_mark.line + 1} and "
                               f"{key_node.start_mark.line + 1}")

    def construct_yaml_int(self, node):
        digits = len(node.value)
        if digits > MAX_INT_DIGITS:
            raise _Refused(f"an integer of {digits:,} characters at line {node.start_mark.line + 1}; "
                           f"at most {MAX_INT_DIGITS}")
        return super().construct_yaml_int(node)


# YAML 1.1's numbers without its base-60 forms: "1:0" stays a string (to be refused where a number is due), not 60.
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in _NUMBER_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
BoundedLoader.add_implicit_resolver(  # 1e-3, as YAML 1.2 reads it
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))
BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def parse_yaml(text, where):
    """The data of YAML ``text``; ``where`` ("config file x.yaml") starts every error line."""
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except _Refused as error:
        raise ConfigError(f"{where}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context = getattr(error, "context", None)  # "while parsing a flow sequence"
        raise ConfigError(f"{where} is not valid YAML: {context + ', ' if context else ''}{problem}{at}") from None


def decode_text(data, where):
    """UTF-8 (with or without a BOM), or UTF-16 that starts with its BOM; anything else is refused naming
    the first byte that is not UTF-8 (or the first NUL byte, which UTF-16 without a BOM has)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{where} is not valid UTF-16 text (at offset {error.start})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{where} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") \
            from None
    if "\0" in text:  # UTF-16 or UTF-32 without a BOM decodes as UTF-8; YAML never holds a NUL
        raise ConfigError(f"{where} is not UTF-8 text (byte 0x00 at offset {data.index(0)})")
    return text


def read_yaml_file(path, what, max_bytes=MAX_YAML_BYTES, shown_as=None):
    """The data of the YAML file ``path`` (a regular file of at most ``max_bytes``). Errors name it as
    ``<what> <path>`` ("config file x.yaml"), or as ``shown_as`` alone when given."""
    where = str(shown_as) if shown_as is not None else f"{what} {path}"
    return parse_yaml(decode_text(read_regular_file(path, max_bytes, what), where), where)

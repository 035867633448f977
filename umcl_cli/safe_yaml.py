"""YAML for files other people write: safe tags only, and no alias bombs.

``yaml.safe_load`` never runs code, but nine nested levels of aliases expand a 1 KB file into
billions of values that then hang or exhaust memory downstream. Here the parsed node graph is
measured before any Python object is built: a few aliases (a shared block or two) are fine, an
expansion beyond a small budget or a self-referencing alias is refused.
"""

from __future__ import annotations

from typing import Any

import yaml

from umcl_cli.errors import UsageError

MAX_ALIASES = 64
# Values after expanding every alias; real recipes hold a few hundred.
MAX_VALUES = 20_000
MAX_BYTES = 1 << 20
_FIX = "write the values out instead of repeating them through '&anchor' / '*alias'"


def load_bounded(text: str, source: str) -> Any:
    """Parse ``text`` like ``yaml.safe_load``; ``UsageError`` naming ``source`` for oversized input.

    YAML syntax errors propagate as ``yaml.YAMLError`` for the caller to place.
    """
    if len(text) > MAX_BYTES:
        raise UsageError(f"{source} is larger than {MAX_BYTES // 1024} KB", "keep recipes and prompt files short")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply", "flatten the YAML") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Count aliases (a node reached more than once) and the values the document expands to."""
    seen: dict[int, int] = {}  # node id -> expanded size
    active: set[int] = set()
    aliases = 0

    def size(node: yaml.Node) -> int:
        nonlocal aliases
        key = id(node)
        if key in active:
            raise UsageError(f"{source}: an alias refers to a block that contains it", _FIX)
        if key in seen:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise UsageError(f"{source} uses more than {MAX_ALIASES} YAML aliases", _FIX)
            return seen[key]
        active.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        active.discard(key)
        seen[key] = total
        if total > MAX_VALUES:
            raise UsageError(f"{source}: YAML aliases expand to more than {MAX_VALUES} values", _FIX)
        return total

    size(root)

"""Line numbers for YAML values, so validation errors can point at the line."""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def locate(root: yaml.Node | None, loc: Sequence[str | int]) -> tuple[int | None, bool]:
    """1-based line of the node at `loc` (or of its deepest existing parent), and whether found."""
    node = root
    line = None if node is None else node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if match is None:
                # For an unknown key the key node itself is the place to point at.
                key_node = next(
                    (k for k, _ in node.value if getattr(k, "value", None) == key), None
                )
                if key_node is not None:
                    return key_node.start_mark.line + 1, True
                return line, False
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if not 0 <= key < len(node.value):
                return line, False
            node = node.value[key]
        else:
            return line, False
        line = node.start_mark.line + 1
    return line, True


def dotted(loc: Sequence[str | int]) -> str:
    """('signals', 2, 'kind') -> 'signals[2].kind'."""
    out = ""
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + key
    return out

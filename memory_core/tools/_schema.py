"""The JSON schemas the adapters publish for a tool, and its output as data.

An LLM pays for every token of a tool's schema on every call, so the published
schemas are pydantic's, made compact: ``title`` keys dropped, ``$defs`` inlined,
``X | None`` written as ``X`` (an optional argument is one that is not
``required``), defaults that say nothing (``null``, ``""``, ``[]``, ``{}``, ``false``)
left out, and so are bounds, lengths, patterns, formats and
``additionalProperties: false`` (unknown arguments are refused): the input model
still enforces every one of them, and a violation comes back as a readable
error naming the argument (``invalid arguments: max_messages: ...``), which
costs tokens only when it happens. Output schemas also drop descriptions and
write ``X | None`` as ``"type": [X, "null"]``; the structured output keeps every
field (:func:`structured`), ``None`` included, so clients see stable keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["input_schema", "output_schema", "structured"]

_DROPPED = frozenset(
    {
        "title",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "pattern",
        "propertyNames",
        "patternProperties",
        "format",
    }
)
_OUTPUT_DROPPED = _DROPPED | {"description", "default", "additionalProperties", "format"}
_LITERAL = frozenset({"default", "enum", "const", "examples", "required"})
_NULL = {"type": "null"}


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The compact JSON schema of a tool's arguments."""
    schema = model.model_json_schema()
    compact: dict[str, Any] = _compact(schema, schema.get("$defs", {}), _DROPPED)
    return compact


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The compact JSON schema of a tool's output as :func:`structured` dumps it."""
    schema = model.model_json_schema(mode="serialization")
    compact: dict[str, Any] = _compact(schema, schema.get("$defs", {}), _OUTPUT_DROPPED)
    return compact


def structured(output: BaseModel) -> dict[str, Any]:
    """A tool's output as JSON-ready data (what MCP publishes as structured content)."""
    data: dict[str, Any] = output.model_dump(mode="json")
    return data


def _compact(node: Any, defs: dict[str, Any], dropped: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_compact(n, defs, dropped) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):  # inlined, without the class docstring of the target
        target = {k: v for k, v in defs[ref.rsplit("/", 1)[-1]].items() if k != "description"}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in dropped or key == "$defs":
            continue
        if key == "additionalProperties" and value is False:
            continue  # unknown arguments are refused when called, with their names
        if key == "properties":
            out[key] = {name: _compact(prop, defs, dropped) for name, prop in value.items()}
        elif key in _LITERAL:
            out[key] = value
        else:
            out[key] = _compact(value, defs, dropped)
    if "required" in out and not out["required"]:
        del out["required"]
    variants = out.get("anyOf")
    if isinstance(variants, list) and _NULL in variants:
        rest = [v for v in variants if v != _NULL]
        if len(rest) == 1 and "description" not in dropped:  # input: optional is enough
            del out["anyOf"]
            out = {**rest[0], **out}
        elif len(rest) == 1 and isinstance(rest[0].get("type"), str):  # output: X or null
            del out["anyOf"]
            out = {**rest[0], **out, "type": [rest[0]["type"], "null"]}
        elif len(rest) == 1 and "enum" in rest[0]:
            del out["anyOf"]
            out = {**rest[0], **out, "enum": [*rest[0]["enum"], None]}
        elif "description" not in dropped:
            out["anyOf"] = rest
    if "default" in out and (out["default"] in (None, "", [], {}) or out["default"] is False):
        del out["default"]
    if "enum" in out:
        out.pop("type", None)
    return out

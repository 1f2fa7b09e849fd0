"""Offline LLM extraction with a local GGUF model file, through llama.cpp.

Set ``llm_gguf`` (``CONVMEM_LLM_GGUF``) to the path of a GGUF model (an
instruction-tuned one: see docs/extraction.md for sizes) and extraction runs on
this machine, with no network: :class:`GGUFExtractor` is the
:class:`~memory_core.extraction.llm.LLMExtractor` (same prompt, same checks of
every item, same citations) over a :class:`GGUFClient` instead of LiteLLM.

The reply is constrained while it is generated: a grammar derived from the
reply's JSON schema lets the model write nothing but a JSON object of that
shape, and every string and list in it has a maximum length, so a reply always
ends (a small model otherwise loops until the token budget runs out).

A local model is slow (seconds to minutes per conversation on a CPU), so the
extractor is marked ``background``: ending a conversation queues it for a
worker thread instead of extracting it in the caller's thread (see
:mod:`memory_core.extraction.background`).

llama.cpp comes from ``llama-cpp-python``, the optional extra ``gguf``,
imported on first use.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from memory_core.errors import ConfigError, LLMReplyError
from memory_core.extraction.llm import Attempt, LLMClient, LLMExtractor
from memory_core.extraction.prompts import (
    ExtractionReply,
    Prompt,
    ReconcileReply,
)
from memory_core.models import ObservationKind, Outcome, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

__all__ = ["GGUFClient", "GGUFExtractor", "bounded_schema", "schema_grammar"]

T = TypeVar("T", bound=BaseModel)

EXTRA = "pip install 'conversation-memory[gguf]'"
#: Longest string the grammar lets a model write where the schema sets no maximum.
DEFAULT_MAX_CHARS = 120
#: Longest list the grammar lets a model write where the schema sets no maximum.
DEFAULT_MAX_ITEMS = 20
#: Schema keywords left out of the grammar (checked by validation afterwards instead):
#: regular expressions and number ranges are not reliably turned into grammars.
_UNCONSTRAINED = ("pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                  "exclusiveMaximum", "title", "description", "default")  # fmt: skip


#: A reference to a message or statement of the prompt (``m3``, ``E1``, ``P2``).
_Ref = Annotated[str, Field(max_length=8)]


class _Observation(BaseModel):
    """:class:`LLMObservation` as generated: the same keys, tighter bounds (checked
    afterwards by :class:`LLMObservation` itself)."""

    model_config = ConfigDict(extra="forbid")

    kind: ObservationKind
    text: str = Field(max_length=200)
    confidence: float
    evidence: list[_Ref] = Field(min_length=1, max_length=4)
    trait_key: str | None = Field(default=None, max_length=40)
    value: str | None = Field(default=None, max_length=80)


class _Trait(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=40)
    value: Annotated[str, Field(max_length=80)] | int | float | bool
    confidence: float
    evidence: list[_Ref] = Field(min_length=1, max_length=4)


class _Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=600)
    outcome: Outcome
    evidence: list[_Ref] = Field(default_factory=list, max_length=8)


class _ExtractionShape(BaseModel):
    """The shape an extraction reply is generated in (:class:`ExtractionReply` leaves
    its items unchecked so that one bad item is dropped, not the whole reply). Its
    bounds keep the longest possible reply near 6,000 characters."""

    model_config = ConfigDict(extra="forbid")

    observations: list[_Observation] = Field(default_factory=list, max_length=8)
    traits: list[_Trait] = Field(default_factory=list, max_length=8)
    summary: _Summary | None = None


class _Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal: _Ref
    decision: Literal["add", "update", "duplicate", "discard", "delete"]
    target: _Ref | None = None
    reason: str = Field(default="", max_length=200)


class _ReconcileShape(BaseModel):
    """The shape a reconcile reply is generated in (its decisions are checked one by one)."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[_Decision] = Field(default_factory=list, max_length=12)


#: Reply models whose grammar comes from a stricter shape.
_SHAPES: dict[type[BaseModel], type[BaseModel]] = {
    ExtractionReply: _ExtractionShape,
    ReconcileReply: _ReconcileShape,
}


def bounded_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema a reply of ``model`` is generated under: objects take no
    other keys, strings and lists have a maximum length, and the keywords in
    ``_UNCONSTRAINED`` are dropped."""
    schema = copy.deepcopy(_SHAPES.get(model, model).model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        for key in _UNCONSTRAINED:
            node.pop(key, None)
        kind = node.get("type")
        if kind == "string" and "enum" not in node and "const" not in node:
            node.setdefault("maxLength", DEFAULT_MAX_CHARS)
        elif kind == "array":
            node.setdefault("maxItems", DEFAULT_MAX_ITEMS)
        elif kind == "object" or "properties" in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    visit(sub)
            elif key not in ("enum", "const", "required"):
                visit(value)

    visit(schema)
    return schema


_CHAR = r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_BASE_RULES = {
    "space": '" "?',
    "char": _CHAR,
    "number": '"-"? [0-9]{1,15} ("." [0-9]{1,15})? space',
    "integer": '"-"? [0-9]{1,15} space',
    "boolean": '("true" | "false") space',
    "null": '"null" space',
}


def _literal(value: Any) -> str:
    """A GBNF literal of ``value``'s JSON spelling."""
    text = json.dumps(value, ensure_ascii=True)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def schema_grammar(schema: dict[str, Any]) -> str:
    """A GBNF grammar (llama.cpp) for JSON values of ``schema``, as
    :func:`bounded_schema` makes it: objects with every property in order, strings
    and lists within their bounds (written as ``{m,n}`` repetitions, which llama.cpp
    expands itself: nesting them, as llama-cpp-python's own converter does, crashes
    its parser at a few hundred levels)."""
    defs: dict[str, Any] = schema.get("$defs", {})
    rules = dict(_BASE_RULES)

    def rule(name: str, body: str) -> str:
        rules[name] = body
        return name

    def visit(node: dict[str, Any], name: str) -> str:
        if "$ref" in node:
            ref = str(node["$ref"]).rsplit("/", 1)[-1]
            target = "def-" + re.sub(r"[^A-Za-z0-9-]", "-", ref)
            if target not in rules:
                rules[target] = ""  # reserved: a recursive reference ends here
                rules[target] = body_of(defs[ref], target)
            return target
        return rule(name, body_of(node, name))

    def body_of(node: dict[str, Any], name: str) -> str:
        if "$ref" in node:
            return visit(node, name)
        if "const" in node:
            return _literal(node["const"]) + " space"
        if "enum" in node:
            return "(" + " | ".join(_literal(v) for v in node["enum"]) + ") space"
        if "anyOf" in node:
            options = [visit(o, f"{name}-{i}") for i, o in enumerate(node["anyOf"])]
            return " | ".join(options)
        kind = node.get("type")
        if kind == "object":
            parts = []
            for key, sub in node.get("properties", {}).items():
                value = visit(sub, f"{name}-{re.sub(r'[^A-Za-z0-9-]', '-', key)}")
                parts.append(f'{_literal(key)} space ":" space {value}')
            return '"{" space ' + ' "," space '.join(parts) + ' "}" space'
        if kind == "array":
            item = visit(node.get("items", {}), f"{name}-item")
            low, high = int(node.get("minItems", 0)), int(node["maxItems"])
            if high == 0:
                return '"[" space "]" space'
            more = f'( "," space {item} ){{{max(low - 1, 0)},{high - 1}}}'
            items = f"{item} {more}" if low else f"( {item} {more} )?"
            return f'"[" space {items} "]" space'
        if kind == "string":
            low, high = int(node.get("minLength", 0)), int(node["maxLength"])
            return f'"\\"" char{{{low},{high}}} "\\"" space'
        if kind in ("number", "integer", "boolean", "null"):
            return str(kind)
        raise ValueError(f"no grammar for the schema node {node!r}")

    root = visit(schema, "root")
    if root != "root":
        rules["root"] = root
    return "\n".join(f"{name} ::= {body}" for name, body in rules.items()) + "\n"


def check_model_file(path: Path) -> Path:
    """``path`` if it is a readable GGUF file, else a ConfigError saying what to do."""
    if not path.exists():
        raise ConfigError(
            f"llm_gguf: there is no file at {path}; give the path of a GGUF model file "
            "(e.g. an instruction-tuned model of 1B parameters or more, Q4_K_M), or unset "
            "llm_gguf to use llm_model or the heuristic extractor"
        )
    if not path.is_file():
        raise ConfigError(f"llm_gguf: {path} is not a file; give the path of a .gguf model file")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ConfigError(f"llm_gguf: cannot read {path}: {exc}") from exc
    if magic != b"GGUF":
        raise ConfigError(
            f"llm_gguf: {path} is not a GGUF model file (it does not start with 'GGUF'); "
            "convert the model with llama.cpp's convert_hf_to_gguf.py or download its "
            "GGUF version"
        )
    return path


class GGUFClient(LLMClient):
    """Grammar-constrained JSON chat completions from a local GGUF model (llama.cpp).

    Replies are checked and asked again like :class:`LLMClient`'s (there are no
    rate limits or timeouts to retry). The model is loaded on first use and kept;
    calls are serialised (one llama.cpp context).

    Args:
        path: The GGUF model file (checked here: ConfigError if missing or not GGUF).
        context_tokens: The model's context window: the prompt and the reply must fit.
        max_tokens: Reply budget (default: what the context window leaves after the
            prompt; the grammar bounds the reply anyway).
        threads: CPU threads (default: llama.cpp's, half the cores).
        max_attempts: Generations per task at most.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        context_tokens: int = 8192,
        max_tokens: int | None = None,
        threads: int | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.path = check_model_file(Path(path).expanduser())
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(f"local GGUF extraction (llm_gguf) needs llama-cpp-python: {EXTRA}")
        if context_tokens < 512:
            raise ConfigError(f"context_tokens must be at least 512, got {context_tokens}")
        # llama.cpp cuts the budget to what the context leaves after the prompt
        budget = max_tokens or context_tokens
        super().__init__(f"gguf/{self.path.name}", max_attempts=max_attempts, max_tokens=budget)
        self.context_tokens = context_tokens
        self.threads = threads
        self._llama: Llama | None = None
        self._grammars: dict[type[BaseModel], LlamaGrammar] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GGUFClient(path={str(self.path)!r})"

    def _load(self) -> Llama:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ConfigError(
                    f"local GGUF extraction (llm_gguf) needs llama-cpp-python: {EXTRA}"
                ) from exc
            try:
                self._llama = Llama(
                    str(self.path),
                    n_ctx=self.context_tokens,
                    n_threads=self.threads,
                    seed=0,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ConfigError(
                    f"llm_gguf: llama.cpp could not load {self.path} ({exc}): the file is "
                    "damaged or incomplete (download it again) or its architecture is "
                    "newer than this llama.cpp (upgrade llama-cpp-python)"
                ) from exc
        return self._llama

    def _grammar(self, reply_model: type[BaseModel]) -> LlamaGrammar:
        if reply_model not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            grammar = schema_grammar(bounded_schema(reply_model))
            self._grammars[reply_model] = LlamaGrammar.from_string(grammar, verbose=False)
        return self._grammars[reply_model]

    def complete_json(self, prompt: Prompt, reply_model: type[T]) -> tuple[T, Usage]:
        """A JSON object that validates as ``reply_model``, generated under its
        grammar; returns it and the usage (tokens counted, cost 0)."""
        with self._lock:
            llama = self._load()
            grammar = self._grammar(reply_model)

            def send(messages: Prompt, budget: int) -> Attempt:
                try:
                    response: Any = llama.create_chat_completion(
                        messages=cast(Any, messages),  # a list of role/content dicts
                        grammar=grammar,
                        temperature=0.0,
                        max_tokens=budget,
                        seed=0,
                    )
                except ValueError as exc:  # the prompt does not fit the context window
                    raise LLMReplyError(
                        f"{self.model}: {exc}; raise llm_gguf_context (the model's context "
                        "window) or extract shorter conversations",
                        Usage(calls=1),
                    ) from exc
                choice = response["choices"][0]
                counted = response.get("usage") or {}
                usage = Usage(
                    calls=1,
                    prompt_tokens=int(counted.get("prompt_tokens", 0)),
                    completion_tokens=int(counted.get("completion_tokens", 0)),
                )
                content = str(choice["message"].get("content") or "")
                return content, choice.get("finish_reason"), usage

            return self._converse(prompt, reply_model, send)

    def _grow(self, budget: int) -> int:
        return min(budget * 2, self.context_tokens)


class GGUFExtractor(LLMExtractor):
    """:class:`LLMExtractor` over a local GGUF model: offline, slow, so it runs in
    the background (``background = True``: ending a conversation queues it)."""

    #: Extraction is queued for the background worker instead of run inline.
    background = True

    def __init__(
        self, path: str | Path, *, client: GGUFClient | None = None, **options: Any
    ) -> None:
        super().__init__(client=client or GGUFClient(path, **options))
        self.name = self.client.model  # gguf/<file name>

    def __repr__(self) -> str:
        return f"GGUFExtractor({self.client!r})"

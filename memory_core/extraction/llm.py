"""Extraction with any LLM, through LiteLLM (OpenAI, Anthropic, Azure, Bedrock,
Ollama, vLLM ...).

:class:`LLMClient` makes JSON-mode chat calls and never lets a bad reply
through: a reply that is not JSON is repaired (``json_repair``: code fences,
trailing commas, unclosed brackets), one that is cut off at ``max_tokens`` is
asked again with a larger budget, one that does not fit the reply model is
asked again with the validation error; rate limits, timeouts, connection and
server errors are retried with exponential backoff. After ``max_attempts`` it
raises :class:`LLMReplyError` (a :class:`~memory_core.errors.ModelError`),
carrying the usage spent. Every call's tokens and cost are counted
(:class:`~memory_core.models.Usage`; models LiteLLM has no price for cost 0,
with a note).

LiteLLM is the optional extra ``llm``, imported on first use (with its model
price list read locally, never fetched).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from memory_core._litellm import import_litellm, off_thread
from memory_core.errors import ConfigError, LLMReplyError
from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.extraction.prompts import (
    ExtractionReply,
    Prompt,
    customer_refs,
    extraction_prompt,
    parse_extraction,
)
from memory_core.models import Usage
from memory_core.recall import count_tokens

__all__ = ["LLMClient", "LLMExtractor", "LLMReplyError"]

log = logging.getLogger("memory_core.extraction")
T = TypeVar("T", bound=BaseModel)


#: What one model call gave: the reply's text, why it stopped (``length`` when cut
#: off at the budget) and what it cost; or, as a string, a failure worth another
#: try after a pause (rate limit, timeout, server error).
Attempt = tuple[str, str | None, Usage] | str


def parse_json(content: str) -> tuple[dict[str, Any] | None, bool]:
    """The JSON object in ``content``, and whether it had to be repaired."""
    try:
        value = json.loads(content)
        return (value, False) if isinstance(value, dict) else (None, False)
    except json.JSONDecodeError:
        pass
    from json_repair import repair_json

    repaired = repair_json(content, return_objects=True)
    return (repaired, True) if isinstance(repaired, dict) and repaired else (None, True)


def check_reply(content: str, reply_model: type[T]) -> tuple[T | None, str, bool]:
    """``content`` read as ``reply_model``: the reply (or None), what is wrong with it
    (or ``""``), and whether its JSON had to be repaired."""
    value, repaired = parse_json(content)
    if value is None:
        return None, "reply is not a JSON object", repaired
    try:
        return reply_model.model_validate(value), "", repaired
    except PydanticValidationError as exc:
        return (
            None,
            f"reply does not fit {reply_model.__name__}: {exc.errors()[0]['msg']}",
            repaired,
        )


def ask_again(prompt: Prompt, content: str, problem: str) -> Prompt:
    """``prompt`` followed by the unusable reply and a request to answer again."""
    return [
        *prompt,
        {"role": "assistant", "content": content[:4000]},
        {
            "role": "user",
            "content": f"That reply was unusable ({problem}). "
            "Reply again with one JSON object only, in the format asked for.",
        },
    ]


class LLMClient:
    """JSON-mode chat completions through LiteLLM, validated, repaired and retried.

    Args:
        model: A LiteLLM model name with its provider, e.g. ``openai/gpt-4o-mini``,
            ``anthropic/claude-3-5-haiku-latest``, ``ollama/llama3.1``.
        api_key / api_base: Passed to LiteLLM (default: the provider's environment
            variables, e.g. ``OPENAI_API_KEY``).
        timeout: Seconds per request.
        max_attempts: Requests per task at most (first try included).
        backoff: Seconds before the first retry after a rate limit or timeout; doubles.
        max_tokens: Reply budget of the first attempt (doubled after a truncated reply).
        sleep: How to wait between retries (tests pass a no-op).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 3,
        backoff: float = 1.0,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model or not model.strip():
            raise ConfigError("an LLM model name is needed, e.g. 'openai/gpt-4o-mini'")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        self.model = model
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._api_key = api_key
        self._api_base = api_base
        self._sleep = sleep

    def __repr__(self) -> str:  # never shows the key
        return f"LLMClient(model={self.model!r}, api_base={self._api_base!r})"

    def _usage(self, litellm: ModuleType, response: Any, prompt: Prompt, content: str) -> Usage:
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        notes: list[str] = []
        if not prompt_tokens and not completion_tokens:
            prompt_tokens = sum(count_tokens(m["content"]) for m in prompt)
            completion_tokens = count_tokens(content)
            notes.append(f"{self.model}: provider reported no token usage; estimated")
        not_mapped = getattr(litellm.exceptions, "ModelNotMappedError", LookupError)
        try:
            cost = float(litellm.completion_cost(completion_response=response) or 0.0)
        except (not_mapped, ValueError, KeyError):
            cost = 0.0
            notes.append(f"{self.model}: no price known to LiteLLM; cost counted as 0")
        return Usage(
            calls=1,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            notes=tuple(notes),
        )

    def complete_json(self, prompt: Prompt, reply_model: type[T]) -> tuple[T, Usage]:
        """Ask for a JSON object that validates as ``reply_model``; returns it and the usage."""
        litellm = import_litellm("the LLM extractor")
        import openai  # a dependency of LiteLLM; every provider error derives from its errors

        retryable = (
            openai.RateLimitError,
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.InternalServerError,
        )

        def send(messages: Prompt, budget: int) -> Attempt:
            try:
                response = off_thread(
                    partial(
                        litellm.completion,
                        model=self.model,
                        messages=messages,
                        response_format={"type": "json_object"},
                        temperature=self.temperature,
                        max_tokens=budget,
                        timeout=self.timeout,
                        max_retries=0,  # retries are ours, so every call is counted
                        api_key=self._api_key,
                        api_base=self._api_base,
                    )
                )
            except retryable as exc:
                return f"{type(exc).__name__}: {exc}"
            except openai.OpenAIError as exc:  # authentication, bad request: retrying won't help
                raise LLMReplyError(f"LLM {self.model!r} failed: {exc}", Usage(calls=1)) from exc
            choice = response.choices[0]
            content = str(getattr(choice.message, "content", None) or "")
            usage = self._usage(litellm, response, prompt, content)
            return content, getattr(choice, "finish_reason", None), usage

        return self._converse(prompt, reply_model, send)

    def _grow(self, budget: int) -> int:
        """The reply budget after a reply was cut off at ``budget`` tokens."""
        return budget * 2

    def _converse(
        self, prompt: Prompt, reply_model: type[T], send: Callable[[Prompt, int], Attempt]
    ) -> tuple[T, Usage]:
        """Call ``send(messages, budget)`` until its reply validates as ``reply_model``:
        a truncated reply is asked again with a larger budget, an unusable one with
        what is wrong with it, a failure ``send`` reports as a string after a backoff;
        a :class:`LLMReplyError` from ``send`` ends it (with the usage so far)."""
        messages = list(prompt)
        usage = Usage()
        budget = self.max_tokens
        problem = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            try:
                attempted = send(messages, budget)
            except LLMReplyError as exc:
                raise LLMReplyError(str(exc), usage + exc.usage) from exc
            if isinstance(attempted, str):
                usage += Usage(calls=1)
                problem = attempted
                if attempt < self.max_attempts:
                    delay = self.backoff * 2 ** (attempt - 1)
                    log.warning("LLM %s: %s; retrying in %.1fs", self.model, problem, delay)
                    self._sleep(delay)
                continue
            content, finish, spent = attempted
            usage += spent
            if finish == "length":
                problem = f"reply truncated at {budget} tokens"
                budget = self._grow(budget)
                log.warning("LLM %s: %s; asking again", self.model, problem)
                continue
            reply, problem, repaired = check_reply(content, reply_model)
            if reply is not None:
                if repaired:
                    usage += Usage(notes=("repaired malformed JSON",))
                return reply, usage
            log.warning("LLM %s: %s; asking again", self.model, problem)
            messages = ask_again(prompt, content, problem)
        raise LLMReplyError(
            f"LLM {self.model!r} gave no usable reply after {self.max_attempts} attempts "
            f"(last problem: {problem})",
            usage,
        )


class LLMExtractor:
    """Observations, trait updates and a summary from an LLM.

    Give a model name (and any :class:`LLMClient` options) or a ready client.
    Items of the reply that do not validate, or that cite no customer message,
    are dropped and listed in ``ExtractionOutput.rejected``; nothing unchecked
    reaches the store.
    """

    def __init__(
        self, model: str | None = None, *, client: LLMClient | None = None, **options: Any
    ):
        if client is None:
            if model is None:
                raise ConfigError("LLMExtractor needs a model name or an LLMClient")
            client = LLMClient(model, **options)
        self.client = client
        self.name = f"litellm/{client.model}"

    def __repr__(self) -> str:
        return f"LLMExtractor({self.client!r})"

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        if not data.messages:
            return ExtractionOutput()
        prompt, refs = extraction_prompt(data)
        reply, usage = self.client.complete_json(prompt, ExtractionReply)
        parsed = parse_extraction(reply)
        rejected = list(parsed.rejected)
        customer = customer_refs(data, refs)

        def cited(what: str, evidence: list[str]) -> tuple[str, ...] | None:
            ids = tuple(dict.fromkeys(refs[r] for r in evidence if r in customer))
            if not ids:
                rejected.append(f"{what}: cites no customer message ({', '.join(evidence)})")
                return None
            return ids

        observations: list[ProposedObservation] = []
        for item in parsed.observations:
            if (ids := cited(f"observation {item.text!r}", item.evidence)) is not None:
                observations.append(
                    ProposedObservation(
                        kind=item.kind,
                        text=item.text.strip().rstrip("."),
                        confidence=item.confidence,
                        evidence=ids,
                        trait_key=item.trait_key,
                        value=item.value,
                        note="llm",
                    )
                )
        traits: list[TraitUpdate] = []
        for t in parsed.traits:
            if (ids := cited(f"trait {t.key!r}", t.evidence)) is not None:
                traits.append(
                    TraitUpdate(key=t.key, value=t.value, confidence=t.confidence, evidence=ids)
                )
        summary = None
        if parsed.summary is not None:
            summary = ProposedSummary(
                text=parsed.summary.text.strip(),
                outcome=parsed.summary.outcome,
                evidence=tuple(
                    dict.fromkeys(refs[r] for r in parsed.summary.evidence if r in refs)
                ),
            )
        return ExtractionOutput(
            observations=observations,
            traits=traits,
            summary=summary,
            usage=usage,
            rejected=rejected,
        )

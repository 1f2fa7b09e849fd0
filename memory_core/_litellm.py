"""LiteLLM, imported and called the way a library must (one place for the
embedder and the LLM extractor).

LiteLLM is the optional extra ``llm`` and is imported on first use only. Its
defaults misbehave in a library, so on import:

* ``LITELLM_LOCAL_MODEL_COST_MAP`` defaults to ``True`` (``os.environ.setdefault``:
  an explicit setting wins). Otherwise importing LiteLLM downloads its model
  price list from GitHub, and on failure keeps retrying in a background thread.
* ``litellm.suppress_debug_info = True``. Otherwise LiteLLM prints a "Give
  Feedback / Get Help" banner to stdout on every failed call, which would
  corrupt a stdio protocol such as MCP's.
* its response models are built once, with pydantic's warning about a
  TypedDict of LiteLLM's silenced (a caller can do nothing about it).

And each call runs in a short-lived worker thread (:func:`off_thread`): a
blocking LiteLLM call made on the main thread creates an event loop for its
logging hooks (``asyncio.get_event_loop()``), installs it as the thread's
current loop and never closes it. In a worker thread the hooks run in
``asyncio.run``, which closes its loop.
"""

from __future__ import annotations

import contextvars
import os
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from memory_core.errors import ConfigError

__all__ = ["import_litellm", "off_thread"]

_T = TypeVar("_T")
_import_lock = threading.Lock()
_primed = False


def import_litellm(purpose: str) -> ModuleType:
    """LiteLLM, set up as above; ``purpose`` names what needs it in the error
    raised when the extra is not installed."""
    global _primed
    with _import_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        try:
            import litellm
        except ImportError as exc:
            raise ConfigError(
                f"{purpose} needs LiteLLM: pip install 'conversation-memory[llm]'"
            ) from exc
        litellm.suppress_debug_info = True
        if not _primed:
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore",
                    message=r"Item .* is using the `ReadOnly` qualifier",
                    category=UserWarning,
                )
                litellm.ModelResponse()
            _primed = True
        return litellm


def off_thread(call: Callable[[], _T]) -> _T:
    """Run ``call`` in a fresh thread (same context variables); return or raise its outcome."""
    context = contextvars.copy_context()
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(context.run(call))
        except BaseException as exc:  # handed over to the calling thread, re-raised there
            failure.append(exc)

    worker = threading.Thread(target=target, name="convmem-litellm", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]

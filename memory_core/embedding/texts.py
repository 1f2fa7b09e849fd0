"""The texts embedded for messages: each turn with the end of the turns before it."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CONTEXT_WORDS", "embedding_texts"]

#: Words of each preceding turn embedded as context (bounds the cost of long emails).
CONTEXT_WORDS = 48


def _tail(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else "... " + " ".join(parts[-words:])


def embedding_texts(texts: Sequence[str], previous: str | None, context_turns: int) -> list[str]:
    """The texts embedded for consecutive messages of one conversation.

    Each message is embedded together with the end of up to ``context_turns``
    turns before it ("yes, that one" means nothing alone), at most
    ``CONTEXT_WORDS`` words of each; ``previous`` is the turn stored before
    ``texts[0]``, if any. Keyword indexes hold the message text alone.
    """
    window: list[str] = [previous] if previous is not None else []
    out: list[str] = []
    for text in texts:
        context = window[-context_turns:] if context_turns > 0 else []
        out.append("\n".join([*(_tail(c, CONTEXT_WORDS) for c in context), text]))
        window.append(text)
    return out

"""The one vocabulary of tool arguments: every argument of every agent tool (and of
the framework adapters' knowledge retrievers) is named here, with what it means,
so one concept has one name everywhere. ``docs/tools.md`` carries the table
:func:`vocabulary_table` renders (a test keeps them equal), and a test checks every
tool each role is shown against :data:`ARGUMENTS` and :data:`RETIRED`.

The naming rules:

* the customer is ``customer`` (a profile id or an identifier), never
  ``profile``/``profile_id``; a record is named by ``<kind>_id``;
* how many: ``limit`` when a tool returns one kind of thing, ``max_<type>`` per
  item type where several limits coexist (recall, get_profile);
* knowledge filters: ``knowledge_bases`` (names or ids), ``source_tags`` (not
  ``tags``: LangChain runnables have ``tags`` of their own), ``sources`` (ids);
* the engine's own option names otherwise (``min_score``, ``since``, ``as_of``,
  ``mode``, ``alpha`` ...).
"""

from __future__ import annotations

__all__ = ["ARGUMENTS", "RENAMED", "RETIRED", "vocabulary_table"]

ARGUMENTS: dict[str, str] = {
    # who and what
    "customer": "The customer: a profile id (`prf_...`) or an identifier `kind:value` "
    "(`phone:+16175550142`, `email:ann@example.com`, `chat_id:abc123` ...).",
    "link_identifiers": "More identifiers of the same customer to link (a profile holding one "
    "is merged into theirs).",
    "conversation_id": "A conversation (the one in progress, or one to add to or delete).",
    "message_id": "A message.",
    "observation_id": "An observation.",
    "source_id": "A knowledge source (`src_...`).",
    # recall and search
    "query": "What to look for, in plain words.",
    "include_knowledge": "Recall: also cite knowledge-base passages.",
    "token_budget": "Recall: most tokens the context may take.",
    "max_traits": "Recall: at most this many traits (0 leaves them out).",
    "max_observations": "Recall: at most this many observations.",
    "max_summaries": "Recall: at most this many conversation summaries.",
    "max_messages": "Recall: at most this many past messages.",
    "max_knowledge": "Recall: at most this many knowledge passages.",
    "max_conversations": "get_profile: at most this many latest conversations.",
    "limit": "At most this many results, where a tool returns one kind of thing.",
    "channels": "Only messages from these channels (voice, sms, chat, whatsapp, email).",
    "roles": "Only messages from these roles (customer, human_agent, ai_agent, system).",
    "since": "Only messages from this time on (ISO 8601).",
    "until": "Only messages before this time.",
    "as_of": "Observations (and summaries) as they stood at this time.",
    "include_superseded": "Also observations that newer ones replaced (or were retracted).",
    "min_score": "Leave out results scoring below this (scores are in [0, 1]).",
    "recent_turns": "Recall without a query: how many last turns of the conversation make it.",
    "knowledge_token_share": "Recall: most of the token budget knowledge may take.",
    "advanced": "Options an agent rarely needs, as one object (recall, search_knowledge), "
    'e.g. `{"since": "2025-01-01T00:00:00Z", "channels": ["sms"]}`.',
    "mode": "Ranking: hybrid, vector or keyword.",
    "alpha": "Hybrid ranking: weight of meaning (vector) over keywords.",
    "knowledge_bases": "Only these knowledge bases (names or `kb_` ids); default all.",
    "knowledge_base": "One knowledge base (name or `kb_` id).",
    "source_tags": "Tags of knowledge sources: to filter by, or to give a new source.",
    "sources": "Only these knowledge sources (`src_` ids).",
    "status": "Only knowledge sources in this status (queued, processing, ready, failed).",
    # writing
    "channel": "The channel of a new conversation.",
    "messages": "Messages to store: `role`, `text`, optional `ts` and `id` (your id).",
    "observations": "Statements learned about the customer: `text`, optional `kind`, "
    "`trait_key`/`value` (the slot it fills), `evidence` (message ids).",
    "end_conversation": "Close the conversation: it is summarised and extracted.",
    "subject": "Subject of a new conversation.",
    "set_traits": "Traits to set, key -> value.",
    "clear_traits": "Trait keys to remove.",
    "kind": "Kind of observation (preference, behaviour, context, fact, intent, event, complaint).",
    "text": "A statement or content, verbatim.",
    "value": "The value of an observation's slot (its `trait_key`).",
    "reason": "Why, kept in the history.",
    "url": "A web page or site (http/https).",
    "title": "A knowledge source's title.",
    "max_pages": "Most pages crawled from a url.",
}
"""Every argument name, with its one meaning."""

RETIRED: frozenset[str] = frozenset(
    {"profile", "profile_id", "target", "id", "top_k", "k", "tags", "kb", "recent_conversations"}
)
"""Names no tool or adapter argument may use any more (each had a synonym above)."""

RENAMED: dict[str, str] = {
    "recall `profile`": "`customer`",
    "get_profile `profile`": "`customer`",
    "update_profile `profile`": "`customer`",
    "get_profile `recent_conversations`": "`max_conversations`",
    "remember `customer` (a list) and `profile_id`": "`customer` (one profile id or "
    "identifier) and `link_identifiers` (the other identifiers)",
    "forget `target` + `id`": "exactly one of `customer`, `conversation_id`, `message_id`, "
    "`observation_id`",
    "recall `channels`": "`advanced.channels`, beside the options recall did not have "
    "(`roles`, `since`, `until`, `as_of`, `min_score` ...)",
    "search_knowledge `top_k`": "`limit`",
    "search_knowledge `tags`": "`source_tags`",
    "search_knowledge `sources`, `min_score`": "`advanced.sources`, `advanced.min_score`",
    "prompts and resource URIs `profile`": "`customer`",
    "KnowledgeRetriever (LangChain, LlamaIndex) `kb`": "`knowledge_bases`",
}
"""What the arguments were called before (issue 14) and what they are called now."""


def vocabulary_table() -> str:
    """:data:`ARGUMENTS` as the Markdown table of ``docs/tools.md``."""
    rows = ["| argument | meaning |", "|---|---|"]
    rows += [f"| `{name}` | {meaning} |" for name, meaning in ARGUMENTS.items()]
    return "\n".join(rows)

"""Connectors: bring customer data that already exists into the memory, and push
what it learned back out.

- :mod:`memory_core.connectors.segment`: Segment Spec events (webhook, file
  import, outbound ``identify`` batches).
- :mod:`memory_core.connectors.twilio`: Twilio Conversations, Programmable
  Messaging (SMS, WhatsApp) and Conversational Intelligence voice transcripts.
- :mod:`memory_core.connectors.salesforce`: Contacts, Accounts and Cases by
  ``SystemModstamp`` cursor (OAuth client credentials or JWT bearer), summaries
  written back as Tasks or Case comments.
- :mod:`memory_core.connectors.warehouse`: SQL pulls into identifiers and traits,
  and exports of observations, traits and summaries (any SQLAlchemy database,
  Snowflake included); mapping files in :mod:`memory_core.connectors.mapping`.

Every connector builds on :mod:`memory_core.connectors._base`: a
:class:`ConnectorRun` per pass with its :class:`RunReport`, state kept in the store
(:class:`ConnectorStore`: cursors, processed event ids, value versions), dry runs,
the ``connector:<name>`` audit actor and policy-screened writes. The command line
is ``convmem connect ...`` (:mod:`memory_core.cli.connect`).
"""

from memory_core.connectors._base import (
    RUN_ACTION,
    ConnectorRun,
    ConnectorStore,
    Item,
    ItemOutcome,
    Progress,
    ReportEntry,
    RunReport,
    connector_actor,
    parse_time,
    progress_bar,
)

__all__ = [
    "RUN_ACTION",
    "ConnectorRun",
    "ConnectorStore",
    "Item",
    "ItemOutcome",
    "Progress",
    "ReportEntry",
    "RunReport",
    "connector_actor",
    "parse_time",
    "progress_bar",
]

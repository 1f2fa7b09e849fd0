"""Observation extraction: extractors (heuristic, LLM), reconciliation, traits.

The engine side lives in :class:`memory_core.services.observations.Observations`
(part of :class:`memory_core.Memory`). Importing this package imports no LLM
library: LiteLLM loads on the first LLM call.
"""

from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    Extractor,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.extraction.heuristic import HeuristicExtractor
from memory_core.extraction.llm import LLMClient, LLMExtractor, LLMReplyError
from memory_core.extraction.reconcile import (
    Candidate,
    LLMReconciler,
    Reconciler,
    RuleReconciler,
    Verdict,
)
from memory_core.extraction.reports import (
    BatchReport,
    DecisionRecord,
    Explanation,
    ExtractionReport,
)
from memory_core.extraction.traits import BUILTIN_TRAITS, TraitView, effective_traits

__all__ = [
    "BUILTIN_TRAITS",
    "BatchReport",
    "Candidate",
    "DecisionRecord",
    "Explanation",
    "ExtractionInput",
    "ExtractionOutput",
    "ExtractionReport",
    "Extractor",
    "HeuristicExtractor",
    "LLMClient",
    "LLMExtractor",
    "LLMReconciler",
    "LLMReplyError",
    "ProposedObservation",
    "ProposedSummary",
    "Reconciler",
    "RuleReconciler",
    "TraitUpdate",
    "TraitView",
    "Verdict",
    "effective_traits",
]

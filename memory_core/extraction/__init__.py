"""Observation extraction: extractors (heuristic, LLM, local GGUF), reconciliation,
traits, background jobs.

The engine side lives in :class:`memory_core.services.observations.Observations`
(part of :class:`memory_core.Memory`). Importing this package imports no LLM
library: LiteLLM loads on the first LLM call, llama.cpp on the first GGUF one.
"""

from memory_core.extraction.background import ExtractionJob
from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    Extractor,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.extraction.gguf import GGUFClient, GGUFExtractor
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
    "ExtractionJob",
    "ExtractionOutput",
    "ExtractionReport",
    "Extractor",
    "GGUFClient",
    "GGUFExtractor",
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

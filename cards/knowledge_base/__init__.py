"""The clinical knowledge base: typed records (model), YAML field reading (reader), loading and
validation (load). The data itself lives in cards/knowledge/*.yaml."""

from .load import DEFAULT_DIRECTORY, FILES, load_knowledge
from .model import (
    Agent,
    Avoid,
    Caution,
    Favour,
    Knowledge,
    KnowledgeError,
    LabOrder,
    Meta,
    NotFavoured,
    Option,
    Pathway,
    Reference,
    RiskFactor,
    TherapyClass,
    TrialWindow,
)

__all__ = [
    "Agent",
    "Avoid",
    "Caution",
    "DEFAULT_DIRECTORY",
    "FILES",
    "Favour",
    "Knowledge",
    "KnowledgeError",
    "LabOrder",
    "Meta",
    "NotFavoured",
    "Option",
    "Pathway",
    "Reference",
    "RiskFactor",
    "TherapyClass",
    "TrialWindow",
    "load_knowledge",
]

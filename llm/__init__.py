"""The LLM layer: documents people read, from a model or from the data alone.

``LLMWriter.from_settings(read_config(app, LLM_CONFIG))`` talks to any
OpenAI-compatible endpoint; with none configured every document comes from
the deterministic writers in ``llm.writers`` and nothing touches the network.
"""
from llm.config import LLM_CONFIG, LLMSettings
from llm.writer import CircuitBreaker, Document, LLMWriter

__all__ = ["LLM_CONFIG", "CircuitBreaker", "Document", "LLMSettings", "LLMWriter"]

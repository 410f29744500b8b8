"""Adapters for POST /v1/embeddings, one a wire format: OpenAI-compatible providers get OpenAI's
request (`openai`), Gemini its native embedContent and batchEmbedContents (`gemini`). Both give
the proxy what a chat adapter does (build_call, translate_response), so embeddings are routed,
failed over and counted by the same walk; what the client asked for in OpenAI's terms (the
input's kinds, the dimensions) is read in `request`.
"""

from llmgw.providers.embeddings.gemini import (
    GeminiEmbeddingsAdapter,
    from_gemini_embeddings,
    to_gemini_embeddings,
)
from llmgw.providers.embeddings.openai import OpenAIEmbeddingsAdapter, check_embedding_list
from llmgw.providers.embeddings.request import Inputs, inputs_of

__all__ = [
    "GeminiEmbeddingsAdapter",
    "Inputs",
    "OpenAIEmbeddingsAdapter",
    "check_embedding_list",
    "from_gemini_embeddings",
    "inputs_of",
    "to_gemini_embeddings",
]

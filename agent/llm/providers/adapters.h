// The adapters route() hands out. Each is stateless; per-response state lives in the
// accumulator it creates, so one instance serves every exchange.
#pragma once

#include "agent/llm/adapter.h"

namespace agentwall::llm::providers {

// Chat Completions, legacy Completions, Responses and Embeddings: OpenAI, Azure OpenAI and the
// OpenAI-compatible servers (OpenRouter, Groq, Mistral, DeepSeek, vLLM, Ollama's /v1, …).
const Adapter& openai_adapter();
// Messages and count_tokens, also as Vertex AI serves them (rawPredict).
const Adapter& anthropic_adapter();
// generateContent, streamGenerateContent, countTokens, embedContent: Gemini API and Vertex AI.
const Adapter& gemini_adapter();
// Ollama's native /api/chat, /api/generate, /api/embed, /api/embeddings.
const Adapter& ollama_adapter();
// Any other JSON API on an LLM host: what can be read without knowing the API.
const Adapter& unknown_adapter();

}  // namespace agentwall::llm::providers

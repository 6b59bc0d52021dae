#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

// Token counts with OpenAI's BPE encodings, exact to tiktoken's encode_ordinary: used to
// estimate usage when a provider does not report it. The ranks are embedded at build time.
namespace agentwall::llm {

enum class Encoding { kO200kBase, kCl100kBase };

std::string_view to_string(Encoding encoding);

// gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4*, chatgpt-4o* -> o200k_base; gpt-4 and its
// snapshots, gpt-3.5*, text-embedding-3*, text-embedding-ada-002 -> cl100k_base. A provider
// prefix ("openai/gpt-4o") and a fine-tune prefix ("ft:gpt-4o-mini:...") are ignored.
// Everything else (Claude, Gemini, Llama, Mistral, unknown) gets o200k_base: their own
// tokenizers differ, so a count for them is only an approximation.
Encoding encoding_for_model(std::string_view model);

// Special tokens such as "<|endoftext|>" count as ordinary text. Bytes that are not valid
// UTF-8 count as BPE of the raw bytes. Thread-safe; the tables are built on first use
// (tens of milliseconds).
size_t count_tokens(std::string_view text, Encoding encoding);
std::vector<uint32_t> encode(std::string_view text, Encoding encoding);

}  // namespace agentwall::llm

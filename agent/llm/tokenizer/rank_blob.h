#pragma once

#include <span>

namespace agentwall::llm::tokenizer_internal {

// The BPE ranks embedded at build time (layout: scripts/tokenizer-data.mjs). Defined in a .cc
// that cmake/tokenizer.cmake generates.
std::span<const unsigned char> rank_blob();

}  // namespace agentwall::llm::tokenizer_internal

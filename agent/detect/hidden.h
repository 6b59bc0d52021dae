// Text a human reading the prompt does not see but a model does: zero-width characters,
// bidirectional controls (which reorder what is displayed), and Unicode tag characters
// (U+E0000–U+E007F), which can spell out a whole hidden ASCII instruction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// The text with every invisible character above removed (what the other detectors scan,
// so that "ig\u200Bnore" still reads "ignore"). With `origin`, also where each byte of the
// result was in `text` (plus one entry for the end).
std::string strip_invisible(std::string_view text, std::vector<size_t>* origin = nullptr);

// The ASCII that tag characters in `text` spell, in order ("" when there are none).
std::string decode_tag_text(std::string_view text);

std::unique_ptr<Detector> make_hidden_text_detector();

}  // namespace agentwall::detect

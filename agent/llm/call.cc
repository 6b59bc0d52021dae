#include "agent/llm/call.h"

namespace agentwall::llm {

void append_capped(std::string& dst, std::string_view piece, size_t cap, bool& truncated) {
  if (piece.empty()) return;
  if (dst.size() >= cap) {
    truncated = true;
    return;
  }
  const size_t room = cap - dst.size();
  if (piece.size() <= room) {
    dst.append(piece);
    return;
  }
  // piece[cut] is the first byte left out; while it continues a sequence, that sequence
  // started inside the kept part, so give it back. A UTF-8 sequence has at most 3
  // continuation bytes; past that the input is not UTF-8 and a byte cut is all we can do.
  size_t cut = room;
  for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80;
       ++back) {
    --cut;
  }
  if ((static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) cut = room;
  dst.append(piece.substr(0, cut));
  truncated = true;
}

}  // namespace agentwall::llm

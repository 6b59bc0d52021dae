// What the detectors read besides the raw text. A normalised view, in which lookalike
// spellings read as what they look like ("ｉｇｎｏｒｅ", "𝐢𝐠𝐧𝐨𝐫𝐞", "іgnоrе" in Cyrillic and
// "ig\u200Bnore" all read "ignore"), with a map back to the original offsets. And the
// stretches of a text that are encoded (base64, hex, %-escapes, rot13), decoded, so that an
// instruction or a key hidden that way can be scanned too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// The input with, code point by code point: invisible characters removed (everything
// hidden.h reports, plus soft hyphens, variation selectors and the other default-ignorable
// characters); compatibility forms folded as NFKC folds them (fullwidth "ｉ", mathematical
// "𝐢", ligatures, circled letters, superscripts, …); diacritics dropped ("é" reads "e");
// and letters of other scripts that look like Latin ones replaced by them (Cyrillic "і",
// Greek "ο", Cherokee "Ꭺ", …). Latin case is kept, as secrets are case-sensitive: callers
// match words caselessly; Greek and Cyrillic capitals are lowered ("ΑγΝόΗσΕ" reads
// "αγνοησε"), which no caller could do byte by byte. Bytes that are not valid UTF-8 are kept
// as they are.
struct Normalized {
  // Empty unless `changed`: when nothing changed the input itself is the normalised text.
  // That is always so for pure ASCII, found in one quick pass. view() picks the right one.
  std::string text;
  // origin[i] is the offset in the input of the code point text[i] comes from, plus one
  // last entry, the input's size. Empty unless `changed`. See input_span().
  std::vector<uint32_t> origin;
  size_t removed_invisible = 0;     // invisible characters removed
  size_t removed_marks = 0;         // diacritics removed: combining, or of a Latin letter ("é")
  size_t folded_compatibility = 0;  // code points NFKC folds ("ｉ", "𝐢", "ﬁ", "①", "²", …)
  size_t folded_confusables = 0;    // lookalikes from other scripts folded ("і", "ο", "ı")
  size_t folded_case = 0;           // Greek and Cyrillic capitals lowered ("Ω", "Я")
  bool changed = false;
};

// Inputs of 4 GiB or more are left as they are (changed == false): the map is 32-bit.
// The first call builds a 128 KiB table of what each code point becomes (about 2 ms).
Normalized normalize(std::string_view utf8);

// The normalised text of `input`: n.text, or `input` itself when nothing changed.
inline std::string_view view(const Normalized& n, std::string_view input) {
  return n.changed ? std::string_view(n.text) : input;
}

// Where the bytes `s` of view(n, input) are in `input`: from the start of the first code
// point they come from to the end of the last ("ｉｇｎｏｒｅ" for "ignore").
Span input_span(const Normalized& n, std::string_view input, Span s);

// A stretch of a text that decodes to other, readable text.
struct EncodedSegment {
  Span span;              // in the text searched
  std::string_view kind;  // "base64", "hex", "url" or "rot13" (static strings)
  std::string decoded;    // valid UTF-8: bytes that are not are replaced by U+FFFD
};

// The encoded stretches of `text`, in order of position: base64 (standard or URL-safe,
// padded or not, at least 16 characters), hex (at least 16 digits) and %-escaped runs (at
// least 3 escapes) that decode to printable text, and, only when the text says "rot13",
// the text after that word (or, when nothing follows, the paragraph before it) rotated
// back. Random bytes, hashes and ordinary words do not decode to text and are left out.
// At most `max_segments`, and `max_total_bytes` decoded in all (the last one may be cut
// short). One level only: whether to look into what was decoded is the caller's choice.
std::vector<EncodedSegment> find_encoded_segments(std::string_view text, size_t max_segments = 8,
                                                  size_t max_total_bytes = 64 * 1024);

}  // namespace agentwall::detect

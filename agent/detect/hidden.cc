#include "agent/detect/hidden.h"

#include <array>

#include "agent/common/ascii.h"

namespace agentwall::detect {
namespace {

enum class Kind : uint8_t { kNone, kZeroWidth, kBidi, kTag };

// Decodes the UTF-8 sequence at text[i]; returns its code point and sets `len` (1 for an
// invalid byte, which is then taken as is).
uint32_t decode(std::string_view t, size_t i, size_t& len) {
  const auto c = static_cast<unsigned char>(t[i]);
  auto cont = [&](size_t k) { return i + k < t.size() && (uint8_t(t[i + k]) & 0xC0) == 0x80; };
  if (c < 0x80) {
    len = 1;
    return c;
  }
  if ((c & 0xE0) == 0xC0 && cont(1)) {
    len = 2;
    return (uint32_t(c & 0x1F) << 6) | (uint8_t(t[i + 1]) & 0x3F);
  }
  if ((c & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    len = 3;
    return (uint32_t(c & 0x0F) << 12) | (uint32_t(uint8_t(t[i + 1]) & 0x3F) << 6) |
           (uint8_t(t[i + 2]) & 0x3F);
  }
  if ((c & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    len = 4;
    return (uint32_t(c & 0x07) << 18) | (uint32_t(uint8_t(t[i + 1]) & 0x3F) << 12) |
           (uint32_t(uint8_t(t[i + 2]) & 0x3F) << 6) | (uint8_t(t[i + 3]) & 0x3F);
  }
  len = 1;
  return c;
}

Kind kind_of(uint32_t cp) {
  if (cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0x2060 || cp == 0xFEFF ||
      cp == 0x180E || cp == 0x2061 || cp == 0x2062 || cp == 0x2063 || cp == 0x2064)
    return Kind::kZeroWidth;
  if (cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
      (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061C)
    return Kind::kBidi;
  if (cp >= 0xE0000 && cp <= 0xE007F) return Kind::kTag;
  return Kind::kNone;
}

// The lead bytes of every invisible character kind_of knows: U+061C (D8), U+180E (E1),
// U+200B..U+2069 (E2), U+FEFF (EF) and the tags U+E0000.. (F3). Any other character, such
// as most of a Chinese or Russian text, is passed over without being decoded; its
// continuation bytes are skipped one by one, as after an invalid byte.
constexpr std::array<bool, 256> kMaybeInvisible = [] {
  std::array<bool, 256> t{};
  t[0xD8] = t[0xE1] = t[0xE2] = t[0xEF] = t[0xF3] = true;
  return t;
}();

// Calls f(kind, begin, end, code point) for every invisible character. Only multi-byte
// sequences can be invisible: ASCII text is skipped sixteen bytes a step.
template <typename F>
void each_invisible(std::string_view t, F&& f) {
  for (size_t i = 0; i < t.size();) {
    if (uint8_t(t[i]) < 0x80) {
      i += ascii::ascii_prefix(t.data() + i, t.size() - i);
      continue;
    }
    if (!kMaybeInvisible[uint8_t(t[i])]) {
      ++i;
      continue;
    }
    size_t len = 1;
    const uint32_t cp = decode(t, i, len);
    const Kind k = kind_of(cp);
    if (k != Kind::kNone) f(k, i, i + len, cp);
    i += len;
  }
}

class HiddenTextDetector final : public Detector {
 public:
  std::string_view name() const override { return "hidden_text"; }

  void scan(std::string_view text, Source, std::vector<Finding>& out) const override {
    Finding zw{"hidden.zero_width", Category::kHiddenText, 0.6, {}, {}};
    Finding bidi{"hidden.bidi_control", Category::kHiddenText, 0.7, {}, {}};
    Finding tag{"hidden.tag_characters", Category::kHiddenText, 0.95, {}, {}};
    std::string hidden;
    each_invisible(text, [&](Kind k, size_t b, size_t e, uint32_t cp) {
      Finding& f = k == Kind::kZeroWidth ? zw : k == Kind::kBidi ? bidi : tag;
      // Adjacent characters make one span.
      if (!f.spans.empty() && f.spans.back().end == b) {
        f.spans.back().end = e;
      } else {
        f.spans.push_back({b, e});
      }
      if (k == Kind::kTag && cp >= 0xE0020 && cp <= 0xE007E) hidden += char(cp - 0xE0000);
    });
    if (!zw.spans.empty()) {
      zw.explanation = std::to_string(zw.spans.size()) +
                       " run(s) of zero-width characters: invisible to a reader, they can split "
                       "words to slip past filters";
      out.push_back(std::move(zw));
    }
    if (!bidi.spans.empty()) {
      bidi.explanation =
          "bidirectional control characters: what is displayed is not the order "
          "the model reads";
      out.push_back(std::move(bidi));
    }
    if (!tag.spans.empty()) {
      std::string shown = hidden.substr(0, 80);
      tag.explanation = "Unicode tag characters hide text a reader cannot see: \"" + shown +
                        (hidden.size() > 80 ? "…" : "") + "\"";
      out.push_back(std::move(tag));
    }
  }
};

}  // namespace

std::string strip_invisible(std::string_view text, std::vector<size_t>* origin) {
  std::string out;
  out.reserve(text.size());
  size_t from = 0;
  auto keep = [&](size_t b, size_t e) {
    out.append(text.substr(b, e - b));
    if (origin) {
      for (size_t i = b; i < e; ++i) origin->push_back(i);
    }
  };
  each_invisible(text, [&](Kind, size_t b, size_t e, uint32_t) {
    keep(from, b);
    from = e;
  });
  keep(from, text.size());
  if (origin) origin->push_back(text.size());
  return out;
}

std::string decode_tag_text(std::string_view text) {
  std::string hidden;
  // U+E0000..U+E007F are F3 A0 80 80..F3 A0 81 BF in UTF-8, and F3 never continues another
  // sequence: without "F3 A0" there is nothing to decode, and most text is found so by memchr.
  if (text.find("\xF3\xA0") == std::string_view::npos) return hidden;
  each_invisible(text, [&](Kind k, size_t, size_t, uint32_t cp) {
    if (k == Kind::kTag && cp >= 0xE0020 && cp <= 0xE007E) hidden += char(cp - 0xE0000);
  });
  return hidden;
}

std::unique_ptr<Detector> make_hidden_text_detector() {
  return std::make_unique<HiddenTextDetector>();
}

}  // namespace agentwall::detect

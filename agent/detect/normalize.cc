#include "agent/detect/normalize.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <numeric>

#include "agent/common/ascii.h"

namespace agentwall::detect {
namespace {

// The code point of the well-formed UTF-8 sequence at s[i] (Unicode table 3-7: no
// overlongs, surrogates or values past U+10FFFF) and its length in `len`; len is 0 when
// s[i] does not start one.
[[gnu::always_inline]] inline uint32_t decode_utf8(std::string_view s, size_t i, size_t& len) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const size_t left = s.size() - i;
  const unsigned c = b(0);
  len = 0;
  if (c < 0x80) {
    len = 1;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    if (left < 2 || (b(1) & 0xC0) != 0x80) return 0;
    len = 2;
    return ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || (b(2) & 0xC0) != 0x80) return 0;
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (b(1) < lo || b(1) > hi) return 0;
    len = 3;
    return ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || (b(2) & 0xC0) != 0x80 || (b(3) & 0xC0) != 0x80) return 0;
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (b(1) < lo || b(1) > hi) return 0;
    len = 4;
    return ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  char buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp),
                                      reinterpret_cast<utf8proc_uint8_t*>(buf));
  out.append(buf, static_cast<size_t>(n));
}

struct Range {
  uint32_t first, last;
};

template <size_t N>
bool in_ranges(const std::array<Range, N>& ranges, uint32_t cp) {
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                                   [](uint32_t c, const Range& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->last;
}

// Characters that draw nothing. hidden.cc's zero-width, bidi and tag characters, and the
// other Default_Ignorable_Code_Point characters in use: soft hyphen, combining
// grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation
// selectors, invisible operators, shorthand format controls, musical format controls.
// clang-format off
constexpr std::array<Range, 16> kInvisible{{
    {0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x061C, 0x061C}, {0x115F, 0x1160},
    {0x17B4, 0x17B5}, {0x180B, 0x180F}, {0x200B, 0x200F}, {0x202A, 0x202E},
    {0x2060, 0x206F}, {0x3164, 0x3164}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF},
    {0xFFA0, 0xFFA0}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF},
}};
// clang-format on

// Combining diacritics: the blocks of marks that are written over any letter ("é", and
// the pile-ups of "Zalgo" text). Marks that belong to a script (Devanagari vowel signs,
// Arabic vowels, the kana voicing mark) are part of its letters and stay.
constexpr std::array<Range, 6> kDiacritics{{
    {0x0300, 0x036F},  // Combining Diacritical Marks
    {0x0483, 0x0489},  // Cyrillic combining marks
    {0x1AB0, 0x1AFF},  // Combining Diacritical Marks Extended
    {0x1DC0, 0x1DFF},  // Combining Diacritical Marks Supplement
    {0x20D0, 0x20FF},  // Combining Diacritical Marks for Symbols
    {0xFE20, 0xFE2F},  // Combining Half Marks
}};

struct Confusable {
  uint32_t cp;
  char ascii;
};

// Letters (and a few signs) of other scripts drawn like an ASCII one, and not folded by
// NFKC. The reference is Unicode's confusables.txt (UTS #39), restricted to what is used to
// spell Latin text: Cyrillic, Greek, Armenian, Cherokee, Lisu and Latin-extended
// lookalikes. Where its prototype is not the letter an attacker means (it sends capital
// I-shapes to "l"), the letter meant is used; small capitals are folded to their letter.
// clang-format off
constexpr Confusable kConfusables[] = {
    // Latin extended, IPA, small capitals
    {0x0131, 'i'}, {0x0138, 'k'}, {0x01C0, 'l'}, {0x01C3, '!'}, {0x0237, 'j'}, {0x0251, 'a'},
    {0x0261, 'g'}, {0x0262, 'g'}, {0x0263, 'y'}, {0x0269, 'i'}, {0x026A, 'i'}, {0x0274, 'n'},
    {0x0280, 'r'}, {0x028B, 'u'}, {0x028F, 'y'}, {0x0299, 'b'}, {0x029C, 'h'}, {0x029F, 'l'},
    // Greek
    {0x037F, 'J'}, {0x0391, 'A'}, {0x0392, 'B'}, {0x0395, 'E'}, {0x0396, 'Z'}, {0x0397, 'H'},
    {0x0399, 'I'}, {0x039A, 'K'}, {0x039C, 'M'}, {0x039D, 'N'}, {0x039F, 'O'}, {0x03A1, 'P'},
    {0x03A4, 'T'}, {0x03A5, 'Y'}, {0x03A7, 'X'}, {0x03B1, 'a'}, {0x03B3, 'y'}, {0x03B9, 'i'},
    {0x03BA, 'k'}, {0x03BD, 'v'}, {0x03BF, 'o'}, {0x03C1, 'p'}, {0x03C4, 't'}, {0x03C5, 'u'},
    {0x03C7, 'x'}, {0x03F2, 'c'}, {0x03F3, 'j'}, {0x03F9, 'C'},
    // Cyrillic
    {0x0405, 'S'}, {0x0406, 'I'}, {0x0408, 'J'}, {0x0410, 'A'}, {0x0412, 'B'}, {0x0415, 'E'},
    {0x041A, 'K'}, {0x041C, 'M'}, {0x041D, 'H'}, {0x041E, 'O'}, {0x0420, 'P'}, {0x0421, 'C'},
    {0x0422, 'T'}, {0x0423, 'Y'}, {0x0425, 'X'}, {0x0430, 'a'}, {0x0435, 'e'}, {0x043A, 'k'},
    {0x043E, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0443, 'y'}, {0x0445, 'x'}, {0x0455, 's'},
    {0x0456, 'i'}, {0x0458, 'j'}, {0x0461, 'w'}, {0x0474, 'V'}, {0x0475, 'v'}, {0x04AE, 'Y'},
    {0x04AF, 'y'}, {0x04BB, 'h'}, {0x04BD, 'e'}, {0x04C0, 'I'}, {0x04CF, 'l'}, {0x0501, 'd'},
    {0x050C, 'G'}, {0x051A, 'Q'}, {0x051B, 'q'}, {0x051C, 'W'}, {0x051D, 'w'},
    // Armenian
    {0x053C, 'L'}, {0x054D, 'U'}, {0x054F, 'S'}, {0x0555, 'O'}, {0x0561, 'w'}, {0x0563, 'q'},
    {0x0566, 'q'}, {0x0570, 'h'}, {0x0578, 'n'}, {0x057C, 'n'}, {0x057D, 'u'}, {0x0581, 'g'},
    {0x0584, 'f'}, {0x0585, 'o'}, {0x0589, ':'},
    // Cherokee
    {0x13A0, 'D'}, {0x13A1, 'R'}, {0x13A2, 'T'}, {0x13A5, 'i'}, {0x13A9, 'Y'}, {0x13AA, 'A'},
    {0x13AB, 'J'}, {0x13AC, 'E'}, {0x13B3, 'W'}, {0x13B7, 'M'}, {0x13BB, 'H'}, {0x13BD, 'Y'},
    {0x13C0, 'G'}, {0x13C2, 'h'}, {0x13C3, 'Z'}, {0x13CF, 'b'}, {0x13D2, 'R'}, {0x13D4, 'W'},
    {0x13D5, 'S'}, {0x13D9, 'V'}, {0x13DA, 'S'}, {0x13DE, 'L'}, {0x13DF, 'C'}, {0x13E2, 'P'},
    {0x13E6, 'K'}, {0x13E7, 'd'}, {0x13F3, 'G'}, {0x13F4, 'B'},
    // Ogham space mark, small capitals, dashes and slashes
    {0x1680, ' '}, {0x1D00, 'a'}, {0x1D04, 'c'}, {0x1D05, 'd'}, {0x1D07, 'e'}, {0x1D0A, 'j'},
    {0x1D0B, 'k'}, {0x1D0D, 'm'}, {0x1D0F, 'o'}, {0x1D18, 'p'}, {0x1D1B, 't'}, {0x1D1C, 'u'},
    {0x1D20, 'v'}, {0x1D21, 'w'}, {0x1D22, 'z'}, {0x2010, '-'}, {0x2011, '-'}, {0x2012, '-'},
    {0x2044, '/'}, {0x212E, 'e'}, {0x2212, '-'}, {0x2215, '/'}, {0x2236, ':'},
    // Lisu
    {0xA4D0, 'B'}, {0xA4D1, 'P'}, {0xA4D2, 'd'}, {0xA4D3, 'D'}, {0xA4D4, 'T'}, {0xA4D6, 'G'},
    {0xA4D7, 'K'}, {0xA4D9, 'J'}, {0xA4DA, 'C'}, {0xA4DC, 'Z'}, {0xA4DD, 'F'}, {0xA4DF, 'M'},
    {0xA4E0, 'N'}, {0xA4E1, 'L'}, {0xA4E2, 'S'}, {0xA4E3, 'R'}, {0xA4E6, 'V'}, {0xA4E7, 'H'},
    {0xA4EA, 'W'}, {0xA4EB, 'X'}, {0xA4EC, 'Y'}, {0xA4EE, 'A'}, {0xA4F0, 'E'}, {0xA4F2, 'I'},
    {0xA4F3, 'O'}, {0xA4F4, 'U'},
    // Latin extended-D, Cherokee small letters
    {0xA730, 'f'}, {0xA731, 's'}, {0xA7B3, 'X'}, {0xA7B4, 'B'}, {0xAB75, 'i'}, {0xAB83, 'w'},
    {0xAB93, 'z'}, {0xABA9, 'v'}, {0xABAA, 's'}, {0xABAF, 'c'},
};
// clang-format on
static_assert(std::is_sorted(std::begin(kConfusables), std::end(kConfusables),
                             [](const Confusable& a, const Confusable& b) { return a.cp < b.cp; }));

// The ASCII letter `cp` is drawn like, or 0.
char confusable(uint32_t cp) {
  if (cp < kConfusables[0].cp || cp > std::end(kConfusables)[-1].cp) {
    // Negative circled and negative squared letters ("🅐", "🅰"): no NFKC folding exists
    // for them, unlike the plain circled and squared ones.
    if (cp >= 0x1F150 && cp <= 0x1F169) return static_cast<char>('A' + (cp - 0x1F150));
    if (cp >= 0x1F170 && cp <= 0x1F189) return static_cast<char>('A' + (cp - 0x1F170));
    return 0;
  }
  const auto it = std::lower_bound(std::begin(kConfusables), std::end(kConfusables), cp,
                                   [](const Confusable& c, uint32_t v) { return c.cp < v; });
  return it != std::end(kConfusables) && it->cp == cp ? it->ascii : 0;
}

bool is_invisible(uint32_t cp) {
  return cp >= 0xAD && in_ranges(kInvisible, cp);
}
bool is_diacritic(uint32_t cp) {
  return cp >= 0x300 && in_ranges(kDiacritics, cp);
}

constexpr auto kDecompose = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
constexpr auto kCompose = static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE);

enum class Fold : uint8_t { kKeep, kInvisible, kMark, kCompatibility, kConfusable, kCase };

// The small letter of a Greek or Cyrillic capital, or 0. Those scripts are written in
// capitals and small letters alike ("ΑγΝόΗσΕ", "ЗаБуДь"), and rules and the model read
// them as Latin text is read, case folded: ASCII is folded by whoever reads it (secrets
// are case-sensitive), these here. The same number of UTF-8 bytes either way.
uint32_t small_letter(uint32_t cp) {
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;  // Α-Ω
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;                 // А-Я
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;                 // Ѐ-Џ (Є, І, Ї, Ў, ...)
  // Pairs, the capital at the even code point: Ѡ-Ҁ, Ҋ-Ҿ (Ґ, Ғ, Қ, Ң, Ү, Һ, ...), Ӑ-Ԯ;
  // from Ӂ to Ӎ at the odd one.
  if (((cp >= 0x460 && cp <= 0x480) || (cp >= 0x48A && cp <= 0x4BE) ||
       (cp >= 0x4D0 && cp <= 0x52E)) &&
      cp % 2 == 0)
    return cp + 1;
  if (cp >= 0x4C1 && cp <= 0x4CD && cp % 2 == 1) return cp + 1;
  if (cp == 0x4C0) return 0x4CF;  // Ӏ
  return 0;
}

// What the code point `cp` (not ASCII) becomes; the replacement, for the two folds, in
// `out` (which may stay empty: "¨" is a space and a diaeresis, the space is kept). Without
// `lookalikes`, letters drawn like ASCII ones are kept as the letters they are.
Fold fold(uint32_t cp, std::string& out, bool lookalikes = true) {
  // CJK ideographs and Hangul syllables: NFKC leaves them as they are, and there are
  // 30 000 of them to skip when the table below is built.
  if ((cp >= 0x3400 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3)) return Fold::kKeep;
  if (is_invisible(cp)) return Fold::kInvisible;
  if (is_diacritic(cp)) return Fold::kMark;
  if (const char c = lookalikes ? confusable(cp) : 0) {
    out.push_back(c);
    return Fold::kConfusable;
  }
  // A capital is read as its small letter, and that letter is folded on: "Ё" is "ё", "е".
  const uint32_t small = small_letter(cp);
  const auto lowered = [&] {
    if (!small) return Fold::kKeep;
    append_utf8(out, small);
    return Fold::kCase;
  };
  if (small) cp = small;
  if (utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->decomp_seqindex == UINT16_MAX) {
    return lowered();
  }
  // NFKD of this one code point, then diacritics dropped and lookalikes folded, then
  // recomposed (kana and their voicing mark, Indic two-part vowels, Hangul jamo) so that
  // what is kept is NFKC.
  std::array<utf8proc_int32_t, 32> d;
  int boundclass = 0;
  const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), d.data(), d.size(),
                                         kDecompose, &boundclass);
  if (n <= 0 || static_cast<size_t>(n) > d.size()) return lowered();
  bool lookalike = false, compose = false;
  utf8proc_ssize_t kept = 0;
  for (utf8proc_ssize_t k = 0; k < n; ++k) {
    const auto c = static_cast<uint32_t>(d[k]);
    if (is_invisible(c) || is_diacritic(c)) continue;
    if (const char a = lookalikes && c >= 0x80 ? confusable(c) : 0) {
      d[kept++] = static_cast<unsigned char>(a);
      lookalike = true;
      continue;
    }
    compose |= c >= 0x80;
    const uint32_t small = small_letter(c);  // a capital in a compatibility form: small
    d[kept++] = small ? static_cast<utf8proc_int32_t>(small) : d[k];
  }
  if (compose && kept > 1) {
    kept = utf8proc_normalize_utf32(d.data(), kept, kCompose);
    if (kept < 0) return lowered();
  }
  if (kept == 1 && static_cast<uint32_t>(d[0]) == cp) return lowered();
  for (utf8proc_ssize_t k = 0; k < kept; ++k) append_utf8(out, static_cast<uint32_t>(d[k]));
  return lookalike ? Fold::kConfusable : Fold::kCompatibility;
}

// What fold() makes of each code point below kTabled (the BMP, and the SMP with its
// mathematical letters and emoji), computed once: text is then one table read per code
// point. Values: the ASCII character a code point folds to (| 0x80 when a lookalike), or
// one of these.
constexpr uint32_t kTabled = 0x20000;
constexpr uint8_t kTKeep = 0, kTInvisible = 1, kTMark = 2, kTOther = 3;
constexpr uint8_t kTCase = 4;  // lowered to small_letter(), nothing more (most capitals)

const uint8_t* fold_table() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    auto t = std::make_unique<uint8_t[]>(kTabled);  // zeroed: kTKeep
    std::string out;
    for (uint32_t cp = 0x80; cp < kTabled; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // surrogates: never decoded
      out.clear();
      const Fold f = fold(cp, out);
      if (f == Fold::kKeep) continue;
      if (f == Fold::kInvisible) {
        t[cp] = kTInvisible;
      } else if (f == Fold::kMark) {
        t[cp] = kTMark;
      } else if (f == Fold::kCase) {
        t[cp] = kTCase;
      } else if (out.size() == 1 && out[0] >= 0x20 && out[0] < 0x7F) {
        t[cp] = static_cast<uint8_t>(out[0] | (f == Fold::kConfusable ? 0x80 : 0));
      } else {
        t[cp] = kTOther;
      }
    }
    return t;
  }();
  return table.get();
}

// Cyrillic, Greek and Armenian are written by millions: their letters that look like Latin
// ones are folded only inside a word that is not theirs alone (a Latin letter in it, or
// letters of two of these scripts), or whose letters all look Latin, the two ways to spell
// an English word with them ("іgnоrе", "ехес"). A Russian word stays Russian, so rules
// and the model read it as written; "инструкции" no longer reads "инcтpykции".
enum Script : uint8_t { kNoScript = 0, kLatin = 1, kCyrillic = 2, kGreek = 4, kArmenian = 8 };

uint8_t script_of(uint32_t cp) {
  if (cp < 0x80) return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? kLatin : kNoScript;
  if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x1E00 && cp <= 0x1EFF))
    return kLatin;
  if ((cp >= 0x370 && cp <= 0x3FF) || (cp >= 0x1F00 && cp <= 0x1FFF)) return kGreek;
  if (cp >= 0x400 && cp <= 0x52F) return kCyrillic;
  if (cp >= 0x531 && cp <= 0x58F) return kArmenian;
  return kNoScript;
}

bool lookalike_script(uint32_t cp) {
  const uint8_t s = script_of(cp);
  return s == kCyrillic || s == kGreek || s == kArmenian;
}

// Whether `cp` is part of a word: letters, digits and marks of any script, and the
// invisible characters that may be slipped between them.
bool word_char(uint32_t cp, const uint8_t* table) {
  if (cp < 0x80) return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9');
  if (cp >= 0x400 && cp <= 0x52F) return cp != 0x482;  // Cyrillic: all letters and marks but ҂
  if (cp < kTabled && (table[cp] == kTInvisible || table[cp] == kTMark)) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
      return true;
    default:
      return is_invisible(cp);
  }
}

// Whether `cp` (not ASCII) folds to a Latin lookalike.
bool folds_to_lookalike(uint32_t cp, const uint8_t* table) {
  if (cp >= kTabled) return false;
  const uint8_t v = table[cp];
  if (v == kTOther) {
    std::string out;
    return fold(cp, out) == Fold::kConfusable;
  }
  return v > kTOther && (v & 0x80);
}

// Whether a Cyrillic, Greek or Armenian lookalike stays as it is when its word keeps its
// letters (no diacritic to drop), for each code point of those blocks: most letters of
// Russian text ask, and fold() would look each up again.
bool kept_in_own_word(uint32_t cp) {
  constexpr uint32_t kFirst = 0x370, kLast = 0x58F;
  static const std::array<bool, kLast - kFirst + 1> kept = [] {
    std::array<bool, kLast - kFirst + 1> k{};
    std::string out;
    for (uint32_t c = kFirst; c <= kLast; ++c) {
      out.clear();
      k[c - kFirst] = fold(c, out, /*lookalikes=*/false) == Fold::kKeep;
    }
    return k;
  }();
  return cp >= kFirst && cp <= kLast && kept[cp - kFirst];
}

// The word around the code point at `at` in `in`: where it ends, and whether its
// Cyrillic, Greek and Armenian lookalikes are folded (see Script).
struct WordFold {
  size_t end = 0;
  bool fold = true;
};

WordFold word_fold(std::string_view in, size_t at, const uint8_t* table) {
  size_t b = at;
  while (b > 0) {  // back over the word's earlier code points
    size_t s = b - 1;
    while (s > 0 && b - s < 4 && (static_cast<unsigned char>(in[s]) & 0xC0) == 0x80) --s;
    size_t len = 0;
    const uint32_t cp = decode_utf8(in, s, len);
    if (len == 0 || s + len != b || !word_char(cp, table)) break;
    b = s;
  }
  uint8_t scripts = 0;
  bool all_lookalike = true;
  size_t e = b;
  while (e < in.size()) {
    size_t len = 0;
    const uint32_t cp = decode_utf8(in, e, len);
    if (len == 0 || !word_char(cp, table)) break;
    const uint8_t sc = script_of(cp);
    scripts |= sc;
    if (sc != kNoScript && sc != kLatin && !folds_to_lookalike(cp, table)) all_lookalike = false;
    e += len;
  }
  const bool mixed = (scripts & kLatin) || std::popcount(unsigned(scripts & ~kLatin)) > 1;
  return {e, mixed || all_lookalike};
}

}  // namespace

Normalized normalize(std::string_view in) {
  Normalized n;
  const size_t size = in.size();
  size_t i = ascii::ascii_prefix(in.data(), size);
  if (i == size || size >= std::numeric_limits<uint32_t>::max()) return n;
  const uint8_t* table = fold_table();

  // Nothing is written until the first change, and then what did not change is copied in
  // runs: text that needs nothing costs one read.
  size_t copied = 0;  // in[0, copied) is in n.text
  auto copy_to = [&](size_t end) {
    n.text.append(in.data() + copied, end - copied);
    const size_t at = n.origin.size();
    n.origin.resize(at + (end - copied));
    std::iota(n.origin.begin() + at, n.origin.end(), static_cast<uint32_t>(copied));
    copied = end;
  };
  // The code point in[at, at + len) becomes `out`.
  auto replace = [&](size_t at, size_t len, std::string_view out, Fold f) {
    if (!n.changed) {
      n.changed = true;
      n.text.reserve(size + size / 8);
      n.origin.reserve(size + size / 8 + 1);
    }
    copy_to(at);
    n.text += out;
    n.origin.insert(n.origin.end(), out.size(), static_cast<uint32_t>(at));
    copied = at + len;
    ++(f == Fold::kInvisible       ? n.removed_invisible
       : f == Fold::kMark          ? n.removed_marks
       : f == Fold::kCompatibility ? n.folded_compatibility
       : f == Fold::kCase          ? n.folded_case
                                   : n.folded_confusables);
  };
  std::string other;
  WordFold word;  // of the last word with a lookalike of a script of its own
  while (i < size) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {
      i += ascii::ascii_prefix(in.data() + i, size - i);
      continue;
    }
    size_t len = 0;
    const uint32_t cp = decode_utf8(in, i, len);
    if (len == 0) {
      ++i;  // not UTF-8: kept as is
      continue;
    }
    const uint8_t v = cp < kTabled ? table[cp] : kTOther;
    if (v != kTKeep) {
      Fold f;
      std::string_view out;
      char c = 0;
      if (v == kTInvisible) {
        f = Fold::kInvisible;
      } else if (v == kTMark) {
        f = Fold::kMark;
      } else if (v == kTCase) {
        other.clear();
        append_utf8(other, small_letter(cp));
        f = Fold::kCase;
        out = other;
      } else if (v != kTOther) {
        c = static_cast<char>(v & 0x7F);
        out = {&c, 1};
        f = v & 0x80 ? Fold::kConfusable : Fold::kCompatibility;
      } else {
        other.clear();
        f = fold(cp, other);
        out = other;
      }
      if (f == Fold::kConfusable && lookalike_script(cp)) {
        if (i >= word.end) word = word_fold(in, i, table);
        if (!word.fold) {  // a letter of its own script: only its diacritics go
          if (kept_in_own_word(cp)) {
            i += len;
            continue;
          }
          other.clear();
          f = fold(cp, other, /*lookalikes=*/false);
          if (f != Fold::kKeep && f != Fold::kCase) f = Fold::kMark;
          out = other;
        }
      }
      // A Latin letter with accents, folded to its letter, is counted with the diacritics:
      // how French or German is written, where fullwidth or mathematical letters are not.
      // So is a Cyrillic, Greek or Armenian letter folded to a letter of its own script
      // ("й" read as "и", "ό" as "ο").
      if (f == Fold::kCompatibility && out.size() == 1 &&
          ((cp >= 0xC0 && cp <= 0x24F) || (cp >= 0x1E00 && cp <= 0x1EFF)))
        f = Fold::kMark;
      if (f == Fold::kCompatibility && !out.empty() && lookalike_script(cp)) {
        size_t olen = 0;
        const uint32_t o = decode_utf8(out, 0, olen);
        if (olen == out.size() && script_of(o) == script_of(cp)) f = Fold::kMark;
      }
      if (f != Fold::kKeep) replace(i, len, out, f);
    }
    i += len;
  }
  if (!n.changed) return n;
  copy_to(size);
  n.origin.push_back(static_cast<uint32_t>(size));
  return n;
}

Span input_span(const Normalized& n, std::string_view input, Span s) {
  if (!n.changed) return s;
  const size_t size = n.text.size();
  s.end = std::min(s.end, size);
  s.begin = std::min(s.begin, s.end);
  if (s.begin == s.end) return {n.origin[s.begin], n.origin[s.begin]};
  const size_t last = n.origin[s.end - 1];
  size_t len = 0;
  decode_utf8(input, last, len);
  return {n.origin[s.begin], last + std::max<size_t>(len, 1)};
}

// ---- Encoded segments -------------------------------------------------------------------

namespace {

constexpr uint8_t kAlnum = 1, kHex = 2, kB64Sym = 4, kB64UrlSym = 8, kUrlChar = 16;

constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] |= kAlnum | kHex;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kAlnum;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kAlnum;
  for (int c = 'a'; c <= 'f'; ++c) t[c] |= kHex;
  for (int c = 'A'; c <= 'F'; ++c) t[c] |= kHex;
  t['+'] |= kB64Sym;
  t['/'] |= kB64Sym;
  t['-'] |= kB64UrlSym;
  t['_'] |= kB64UrlSym;
  // What a URL is written with; quotes and brackets end one, as they enclose it in prose,
  // markdown and code.
  for (int c = 0x21; c < 0x7F; ++c) t[c] |= kUrlChar;
  for (char c : std::string_view("\"'<>`()[]{}|\\^")) t[static_cast<unsigned char>(c)] &= ~kUrlChar;
  return t;
}();

uint8_t cls(char c) {
  return kClass[static_cast<unsigned char>(c)];
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// `s` (data characters only, no padding) decoded; a last lone character carries no byte.
std::string base64_decode_run(std::string_view s) {
  std::string out;
  out.reserve(s.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    acc = (acc << 6) | static_cast<uint32_t>(base64_value(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Whether `bytes` reads as text: at least 85% of its code points printable (invalid bytes
// and controls other than white space are not), and a quarter of them letters or digits.
// Random bytes, and the bytes of a hash or a key, fail by far.
bool looks_like_text(std::string_view bytes) {
  size_t total = 0, printable = 0, alnum = 0;
  for (size_t i = 0; i < bytes.size();) {
    size_t len = 0;
    const uint32_t cp = decode_utf8(bytes, i, len);
    ++total;
    if (len == 0) {
      ++i;
      continue;
    }
    i += len;
    if (cp < 0x80) {
      printable += (cp >= 0x20 && cp < 0x7F) || cp == '\t' || cp == '\n' || cp == '\r';
      alnum += (cls(static_cast<char>(cp)) & kAlnum) != 0;
      continue;
    }
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    if (cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CO ||
        cat == UTF8PROC_CATEGORY_CS) {
      continue;
    }
    ++printable;
    alnum += cat <= UTF8PROC_CATEGORY_NO;  // the L* and N* categories come first
  }
  return total >= 6 && printable * 100 >= total * 85 && alnum * 4 >= total;
}

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD, cut to at
// most `max` bytes on a code point boundary.
std::string valid_utf8(std::string_view s, size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    decode_utf8(s, i, len);
    const std::string_view piece = len ? s.substr(i, len) : std::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > max) break;
    out += piece;
    i += len ? len : 1;
  }
  return out;
}

// A run of letters only, cased like a word ("internationalization", "ABSOLUTELY",
// "Incomprehensibilities"), is not taken for base64, whose text is mixed case and digits.
bool word_like(std::string_view run) {
  size_t upper = 0, lower = 0;
  for (char c : run) {
    if (c >= 'A' && c <= 'Z') {
      ++upper;
    } else if (c >= 'a' && c <= 'z') {
      ++lower;
    } else {
      return false;
    }
  }
  return upper == 0 || lower == 0 || (upper == 1 && run[0] >= 'A' && run[0] <= 'Z');
}

constexpr size_t kMinBase64 = 16;  // characters: 12 bytes of text
constexpr size_t kMinHex = 16;     // digits: 8 bytes of text
constexpr size_t kMinEscapes = 3;
constexpr size_t kMaxRot13 = 4096;  // bytes taken around a rot13 marker
constexpr size_t kMinRot13Letters = 8;

class Finder {
 public:
  Finder(std::string_view text, size_t max_segments, size_t max_bytes)
      : t_(text), max_segments_(max_segments), budget_(max_bytes) {}

  bool full() const { return out_.size() >= max_segments_ || budget_ == 0; }

  // rot13 first: the text asked for it. Then base64 and hex, then %-escapes, which plain
  // URLs are full of.
  std::vector<EncodedSegment> run() {
    if (!full()) rot13();
    if (!full()) base64_and_hex();
    if (!full()) url();
    std::stable_sort(out_.begin(), out_.end(),
                     [](const auto& a, const auto& b) { return a.span.begin < b.span.begin; });
    return std::move(out_);
  }

 private:
  void add(size_t begin, size_t end, std::string_view kind, std::string_view decoded) {
    std::string text = valid_utf8(decoded, budget_);
    budget_ -= text.size();
    out_.push_back({{begin, end}, kind, std::move(text)});
  }

  // Runs of the base64 alphabets (either one), with their padding.
  void base64_and_hex() {
    constexpr uint8_t kRun = kAlnum | kB64Sym | kB64UrlSym;
    // Runs shorter than either minimum (hex after "0x" too) are never looked at, and most
    // runs are words that short. So the byte kMinRun - 1 past where a run could start is
    // looked at first: when no run has it, no run long enough starts before it, and the
    // bytes up to it are skipped unread.
    constexpr size_t kMinRun = std::min(kMinBase64, kMinHex);
    const size_t n = t_.size();
    // At i: no run before i is left to look at, and none goes on into i.
    for (size_t i = 0; i + kMinRun <= n && !full();) {
      const size_t probe = i + kMinRun - 1;
      if (!(cls(t_[probe]) & kRun)) {
        i = probe + 1;
        continue;
      }
      size_t begin = probe;
      while (begin > i && (cls(t_[begin - 1]) & kRun)) --begin;
      i = probe + 1;
      while (i < n && (cls(t_[i]) & kRun)) ++i;
      const size_t data_end = i;
      // '=' is no run's first character, so after a short run it needs no skipping.
      if (data_end - begin < kMinRun) continue;
      uint8_t seen = 0;
      size_t hex = 0;
      for (size_t k = begin; k < data_end; ++k) {
        seen |= cls(t_[k]);
        hex += (cls(t_[k]) & kHex) != 0;
      }
      while (i < n && i - data_end < 2 && t_[i] == '=') ++i;
      std::string_view run = t_.substr(begin, data_end - begin);

      size_t skip = 0;  // "0x" before hex digits
      if (run.size() > 2 && run[0] == '0' && (run[1] == 'x' || run[1] == 'X')) skip = 2;
      if (hex + (skip ? 1 : 0) == run.size()) {
        // All hex digits: hex or nothing. Base64 text is never written with these alone,
        // and reading hashes as base64 would only make noise.
        run.remove_prefix(skip);
        if (run.size() >= kMinHex && run.size() % 2 == 0) try_hex(begin + skip, run);
        continue;
      }
      if (run.size() < kMinBase64) continue;
      if ((seen & kB64Sym) && (seen & kB64UrlSym)) continue;  // "a/b-c": a path, not base64
      if (word_like(run)) continue;
      run = run.substr(0, std::min(run.size(), budget_ / 3 * 4));
      const std::string bytes = base64_decode_run(run);
      if (looks_like_text(bytes)) {
        const bool whole = begin + run.size() == data_end;
        add(begin, whole ? i : begin + run.size(), "base64", bytes);
      }
    }
  }

  void try_hex(size_t begin, std::string_view run) {
    run = run.substr(0, std::min(run.size(), budget_ * 2));
    std::string bytes(run.size() / 2, '\0');
    for (size_t k = 0; k < bytes.size(); ++k) {
      bytes[k] = static_cast<char>(hex_value(run[2 * k]) << 4 | hex_value(run[2 * k + 1]));
    }
    if (looks_like_text(bytes)) add(begin, begin + run.size(), "hex", bytes);
  }

  // Runs of URL characters with at least kMinEscapes %XX escapes; "+" is a space in them,
  // as in a form-encoded query.
  void url() {
    const size_t n = t_.size();
    size_t from = 0;
    while (!full()) {
      const void* p = from < n ? std::memchr(t_.data() + from, '%', n - from) : nullptr;
      if (!p) return;
      size_t begin = static_cast<const char*>(p) - t_.data();
      while (begin > from && (cls(t_[begin - 1]) & kUrlChar)) --begin;
      size_t end = begin;
      size_t escapes = 0;
      std::string bytes;
      for (; end < n && (cls(t_[end]) & kUrlChar) && bytes.size() < budget_; ++end) {
        const char c = t_[end];
        if (c == '%' && end + 2 < n && hex_value(t_[end + 1]) >= 0 && hex_value(t_[end + 2]) >= 0) {
          bytes.push_back(static_cast<char>(hex_value(t_[end + 1]) << 4 | hex_value(t_[end + 2])));
          end += 2;
          ++escapes;
        } else {
          bytes.push_back(c == '+' ? ' ' : c);
        }
      }
      from = std::max(end, begin + 1);
      if (escapes >= kMinEscapes && looks_like_text(bytes)) add(begin, end, "url", bytes);
    }
  }

  // "rot13", "rot-13", "ROT 13", "rot_13" as a word.
  void rot13() {
    const size_t n = t_.size();
    size_t covered = 0;  // end of the last segment: markers inside it are part of it
    for (size_t at = 0; !full();) {
      // The next "13" from `at`: a '3' after a '1'. memchr finds the '3's much faster
      // than memmem the pairs, and text has few of them.
      const void* p = at + 1 < n ? std::memchr(t_.data() + at + 1, '3', n - at - 1) : nullptr;
      if (!p) return;
      const size_t three = static_cast<const char*>(p) - t_.data();
      at = three;
      if (t_[three - 1] != '1') continue;
      const size_t digits = three - 1;
      size_t b = digits;
      if (b > 0 && (t_[b - 1] == '-' || t_[b - 1] == ' ' || t_[b - 1] == '_')) --b;
      if (b < 3 || (t_[b - 3] | 0x20) != 'r' || (t_[b - 2] | 0x20) != 'o' ||
          (t_[b - 1] | 0x20) != 't') {
        continue;
      }
      const size_t begin = b - 3, end = digits + 2;
      if ((begin > 0 && (cls(t_[begin - 1]) & kAlnum)) || (end < n && (cls(t_[end]) & kAlnum)) ||
          begin < covered) {
        continue;
      }
      // The text after the marker up to the end of the paragraph; when that has no words,
      // the paragraph before it ("Vtaber nyy cerivbhf vafgehpgvbaf (rot13)").
      size_t s = end;
      while (s < n && static_cast<unsigned char>(t_[s]) < 0x80 && !(cls(t_[s]) & kAlnum)) ++s;
      size_t e = paragraph_end(s);
      if (letters(s, e) < kMinRot13Letters) {
        e = begin;
        while (e > 0 && static_cast<unsigned char>(t_[e - 1]) < 0x80 &&
               !(cls(t_[e - 1]) & kAlnum)) {
          --e;
        }
        s = paragraph_begin(e);
        if (letters(s, e) < kMinRot13Letters) continue;
      }
      std::string bytes(t_.substr(s, e - s));
      for (char& c : bytes) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
          const char base = c >= 'a' ? 'a' : 'A';
          c = static_cast<char>(base + (c - base + 13) % 26);
        }
      }
      add(s, e, "rot13", bytes);
      covered = std::max(e, end);
      at = std::max(at, covered);
    }
  }

  // The end of the paragraph that starts at `s` (a blank line ends one), at most
  // kMaxRot13 bytes on, not inside a code point.
  size_t paragraph_end(size_t s) const {
    const size_t limit = std::min(t_.size(), s + std::min(kMaxRot13, budget_));
    const void* p = s < limit ? memmem(t_.data() + s, limit - s, "\n\n", 2) : nullptr;
    size_t e = p ? static_cast<const char*>(p) - t_.data() : limit;
    while (e < t_.size() && e > s && (static_cast<unsigned char>(t_[e]) & 0xC0) == 0x80) --e;
    return e;
  }

  size_t paragraph_begin(size_t e) const {
    const size_t limit = e - std::min(e, std::min(kMaxRot13, budget_));
    size_t s = e;
    while (s > limit && !(t_[s - 1] == '\n' && s - 1 > limit && t_[s - 2] == '\n')) --s;
    while (s < e && (static_cast<unsigned char>(t_[s]) & 0xC0) == 0x80) ++s;
    return s;
  }

  size_t letters(size_t s, size_t e) const {
    size_t k = 0;
    for (size_t i = s; i < e; ++i) k += (t_[i] | 0x20) >= 'a' && (t_[i] | 0x20) <= 'z';
    return k;
  }

  std::string_view t_;
  size_t max_segments_;
  size_t budget_;
  std::vector<EncodedSegment> out_;
};

}  // namespace

std::vector<EncodedSegment> find_encoded_segments(std::string_view text, size_t max_segments,
                                                  size_t max_total_bytes) {
  return Finder(text, max_segments, max_total_bytes).run();
}

}  // namespace agentwall::detect

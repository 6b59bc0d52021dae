#include "agent/detect/disguise.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "agent/common/embed.h"

namespace agentwall::detect {
namespace {

constexpr bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool ascii_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
// Whether p[j] (j > 0) is a capital after a small letter: a camelCase hump, or where a word
// starts in words run together ("WhatisthecapitalofBrazil").
constexpr bool hump_at(const char* p, size_t j) {
  return ascii_upper(p[j]) && p[j - 1] >= 'a' && p[j - 1] <= 'z';
}
constexpr bool space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// The letter a leetspeak character stands for, or 0.
constexpr char leet(char c) {
  switch (c) {
    case '0':
      return 'o';
    case '1':
    case '!':
    case '|':
      return 'i';
    case '3':
      return 'e';
    case '4':
    case '@':
      return 'a';
    case '5':
    case '$':
      return 's';
    case '7':
      return 't';
    case '8':
      return 'b';
    default:
      return 0;
  }
}

// A letter as the phrases are written: lower case, 'l' as 'i'.
constexpr char fold(char c) {
  c = char(c | 0x20);
  return c == 'l' ? 'i' : c;
}

// The phrases, written in plain lower case (folded like the text when compiled): the words of
// the strongest override, prompt-leak and jailbreak rules with nothing between them. Each is
// narrower than its rule, so what a plain text says the rules have read already.
struct Phrase {
  std::string_view id, pattern;
  double confidence, tool_confidence;
  std::string_view explanation;
};

#define DISGUISE_VERB \
  "(ignore|disregard|forget|skip|override|bypass|neglect|dismiss|discard|abandon)"
#define DISGUISE_LEAK                                                                   \
  "(reveal|print|show|output|repeat|display|leak|dump|recite|disclose|spell|tell|give|" \
  "write|type|share|list)(me|us)?(out|back)?"
constexpr std::string_view kIgnore = "tells the model to ignore the instructions it was given";
constexpr std::string_view kLeak = "asks for the model's instructions or the secret it keeps";

const Phrase kPhrases[] = {
    {"injection.ignore_instructions",
     DISGUISE_VERB "(all|any|every)?(of)?(the|your|these|those)?"
                   "(previous|prior|above|earlier|preceding|former|foregoing|original|initial|"
                   "old|past|system|developer|safety){1,2}(given|provided)?"
                   "(instructions?|directions|directives|guidelines|rules|prompts?|commands|"
                   "orders|programming|restrictions|constraints|guardrails|context)",
     0.85, 0.95, kIgnore},
    {"injection.ignore_instructions",
     DISGUISE_VERB "(all|any)?(of)?your(instructions|rules|guidelines|programming|training|"
                   "restrictions|directives|systemprompt|prompt)",
     0.8, 0.95, kIgnore},
    {"injection.ignore_instructions",
     "(forget|ignore|disregard)everything(you(were|havebeen|hadbeen|got)?(told|given|"
     "instructed|taught)|above|before|sofar|previously)",
     0.8, 0.95, "tells the model to forget what it was told"},
    {"injection.prompt_extraction",
     DISGUISE_LEAK "(your(full|entire|whole|complete|exact|hidden|secret|initial|original|"
                   "first|system){0,2}(prompt|instructions|rules|password|secretword|passphrase)|"
                   "the(full|entire|whole|complete|exact|hidden|secret|initial|original|first)"
                   "{0,2}(systemprompt|password|secretword|passphrase|hiddeninstructions|"
                   "initialinstructions|originalinstructions))",
     0.8, 0.9, kLeak},
    {"injection.prompt_extraction",
     "(whatis|whats|whatwas|whatare)(the|your)(secret)?(password|secretword|passphrase|"
     "systemprompt|instructions)",
     0.7, 0.85, kLeak},
    {"injection.jailbreak",
     "doanythingnow|(dan|stan|dude|apophis|jailbreak|jailbroken|unfiltered|uncensored|evil|"
     "anarchy)mode",
     0.85, 0.9, "asks the model to enter a jailbreak mode"},
};
#undef DISGUISE_VERB
#undef DISGUISE_LEAK

// The phrases compiled for PCRE2 (JIT), once per process. They run only on the few texts
// that show a sign of a disguise, so a vectorscan database, whose compiling takes tens of
// milliseconds and megabytes the allocator keeps, would buy nothing.
class PhraseSet {
 public:
  PhraseSet() {
    for (const Phrase& p : kPhrases) {
      std::string f(p.pattern);
      std::replace(f.begin(), f.end(), 'l', 'i');
      int code = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(f.data()), f.size(), 0, &code,
                                     &offset, nullptr);
      if (!re) {
        release();
        throw std::runtime_error("disguised phrase " + f + " does not compile for PCRE2 at " +
                                 std::to_string(offset));
      }
      pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
      spans_.push_back(re);
    }
  }
  ~PhraseSet() { release(); }
  PhraseSet(const PhraseSet&) = delete;
  PhraseSet& operator=(const PhraseSet&) = delete;

  // Calls `f(begin, end)` for every match of phrase `i` in `letters` until it returns true.
  template <typename F>
  void each_match(unsigned i, std::string_view letters, F f) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(spans_[i], nullptr);
    for (size_t from = 0; md && from < letters.size();) {
      if (pcre2_match(spans_[i], reinterpret_cast<PCRE2_SPTR>(letters.data()), letters.size(), from,
                      0, md, nullptr) <= 0)
        break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (f(size_t(ov[0]), size_t(ov[1]))) break;
      from = std::max<size_t>(ov[1], ov[0] + 1);
    }
    pcre2_match_data_free(md);
  }

 private:
  void release() {
    for (pcre2_code* r : spans_) pcre2_code_free(r);
    spans_.clear();
  }
  std::vector<pcre2_code*> spans_;
};

const PhraseSet& phrase_set() {
  static const PhraseSet set;
  return set;
}

// Text shorter than the shortest phrase ("danmode") cannot hold one.
constexpr size_t kMinLetters = 7;
// A run of letters with no space counts as words run together from this long: shorter ones
// are often words of their own ("responsibilities" has 16 letters).
constexpr size_t kRunTogether = 17;
// Letters of runs read apart per text, at most: a hostile text of one long run costs a
// bounded walk over the word list.
constexpr size_t kMaxRunLetters = 16384;
// Longer words with digits are ids and keys, not leetspeak.
constexpr size_t kLeetWord = 16;

// What squeeze() makes of each byte.
enum : uint8_t { kOther, kLetter, kLeet, kSpace, kStop, kBreak };
struct ByteClasses {
  uint8_t cls[256];
  char letter[256];  // the folded letter of a letter or leetspeak byte
  constexpr ByteClasses() : cls(), letter() {
    for (int c = 0; c < 256; ++c) {
      const char ch = char(c);
      cls[c] = c >= 0x80 || ch == '\n' ? kBreak : kOther;
      if (space(ch)) cls[c] = kSpace;
      if (ch == '.' || ch == ',' || ch == ';' || ch == ':' || ch == '?') cls[c] = kStop;
      if (leet(ch)) cls[c] = kLeet, letter[c] = leet(ch);
      if (ascii_alpha(ch)) cls[c] = kLetter, letter[c] = fold(ch);
    }
  }
};
constexpr ByteClasses kBytes;

constexpr bool hex_letter(unsigned char c) {
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'f';
}

// The characters that join two words into one in leetspeak or a split word.
constexpr std::array<bool, 256> kJoiner = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("$!|*@-")) t[c] = true;
  return t;
}();

// Whether the letters of `w` are of one case, or capitalised: leetspeak is written so; random
// tokens (keys, ids, base64) mix cases.
bool one_case(const unsigned char* w, size_t n) {
  size_t upper = 0, lower = 0;
  for (size_t j = 0; j < n; ++j) {
    upper += w[j] >= 'A' && w[j] <= 'Z';
    lower += w[j] >= 'a' && w[j] <= 'z';
  }
  return upper == 0 || lower == 0 || (upper == 1 && w[0] >= 'A' && w[0] <= 'Z');
}

// The commonest short English words, backwards (bits 0-7) and forwards (bits 8-15).
constexpr uint32_t kFunctionWords[] = {
    TextWords::hash("eht"),  TextWords::hash("uoy"),  TextWords::hash("ruoy"),
    TextWords::hash("siht"), TextWords::hash("taht"), TextWords::hash("htiw"),
    TextWords::hash("lla"),  TextWords::hash("dna"),  TextWords::hash("the"),
    TextWords::hash("you"),  TextWords::hash("your"), TextWords::hash("this"),
    TextWords::hash("that"), TextWords::hash("with"), TextWords::hash("all"),
    TextWords::hash("and")};
constexpr unsigned kBackwardsMask = 0xFF;
// Words that ask for text to be turned round ("Un-reverse this for me: nus eht ni ..."): with
// one of them, one reversed function word is sign enough.
constexpr uint32_t kReverseWords[] = {TextWords::hash("reverse"), TextWords::hash("reversed"),
                                      TextWords::hash("unreverse"), TextWords::hash("backwards"),
                                      TextWords::hash("backward")};
// One bit per low six bits of those hashes: most words are ruled out by one test.
constexpr uint64_t kFunctionBits = [] {
  uint64_t bits = 0;
  for (uint32_t h : kFunctionWords) bits |= uint64_t(1) << (h & 63);
  return bits;
}();
// Which of those words the word with `hash` (read_words: of its lowercase bytes) is, as a
// bit, or 0.
unsigned function_word(uint32_t hash) {
  if (!((kFunctionBits >> (hash & 63)) & 1)) return 0;
  for (unsigned k = 0; k < std::size(kFunctionWords); ++k)
    if (hash == kFunctionWords[k]) return 1u << k;
  return 0;
}

// Whether word t follows word t-1 one space, dot, dash or '*' after it, as the letters of a
// word spelled out are written.
bool spelled_apart(const unsigned char* p, const TextWords& words, size_t t) {
  const size_t gap = words.words[t - 1].end;
  return gap + 1 == words.words[t].begin &&
         (p[gap] == ' ' || p[gap] == '.' || p[gap] == '-' || p[gap] == '*');
}

// Whether the word at [b, e) is a piece of a blob: a run of more than kBlob letters, digits
// and the other characters of base64 and of keys ("+/=_-"), whose pieces between them are
// random tokens, some of them one-case letters and digits by chance. Code written in
// leetspeak has its brackets, dots and quotes. Looked at no further than the blob's size.
constexpr size_t kBlob = 48;
bool in_blob(const unsigned char* p, size_t size, size_t b, size_t e) {
  const auto blob_byte = [](unsigned char c) {
    return ascii_alpha(char(c)) || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=' ||
           c == '_' || c == '-';
  };
  size_t run = e - b;
  for (size_t j = b; j > 0 && run <= kBlob && blob_byte(p[j - 1]); --j) ++run;
  for (size_t j = e; j < size && run <= kBlob && blob_byte(p[j]); ++j) ++run;
  return run > kBlob;
}

// A word that reads as leetspeak: letters and leetspeak digits, one case, not too long.
bool leet_word(const unsigned char* w, size_t n, uint8_t kinds) {
  return (kinds & TextWords::kLetters) && (kinds & TextWords::kLeetDigits) &&
         !(kinds & (TextWords::kOtherDigits | TextWords::kNonAscii)) && n <= kLeetWord &&
         one_case(w, n);
}

// Whether byte `e`, between word t and word t+1, joins them as a leetspeak symbol ("p@ss",
// "pa$$word"; '@' only after one letter, not in an e-mail address) or as '*' or '-'.
bool joins(const unsigned char* p, size_t size, const TextWords& words, size_t t) {
  const size_t b = words.words[t].begin, e = words.words[t].end;
  return e + 1 < size && kJoiner[p[e]] && (p[e] != '@' || e - b == 1) &&
         t + 1 < words.words.size() && words.words[t + 1].begin == e + 1 &&
         ascii_alpha(char(p[e - 1])) && ascii_alpha(char(p[e + 1]));
}

}  // namespace

DisguiseSigns disguise_signs(std::string_view text, const TextWords& words) {
  DisguiseSigns s;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  const size_t count = words.words.size();
  size_t singles = 0, hyphens = 0, letter_words = 0;
  unsigned seen = 0;  // function_word bits
  int balance = 0;    // backwards minus forwards
  bool asked_to_reverse = false;
  const auto letter_at = [&](size_t i) { return i < size && ascii_alpha(char(p[i])); };
  for (size_t t = 0; t < count; ++t) {
    const size_t b = words.words[t].begin, e = words.words[t].end, len = e - b;
    const uint8_t kinds = words.kinds[t];
    if (kinds == TextWords::kLetters) {
      // Four single letters in a row, one space, dot or dash apart ("i g n o r e",
      // "i.g.n.o.r.e"; not "a, b, c, d" or "\r\n\r\n").
      if (len == 1) {
        singles = singles > 0 && spelled_apart(p, words, t) ? singles + 1 : 1;
        s.spaced |= singles >= 4;
      } else {
        singles = 0;
        if (len == 3 || len == 4) {
          if (const unsigned w = function_word(words.hashes[t])) {
            seen |= w;
            balance += w & kBackwardsMask ? 1 : -1;
          }
        } else if (len >= 7 && len <= 9 && !asked_to_reverse) {
          asked_to_reverse = std::find(std::begin(kReverseWords), std::end(kReverseWords),
                                       words.hashes[t]) != std::end(kReverseWords);
        }
      }
      // A run of letters as long as words run together between two capitals that start
      // words ("WhatisthecapitalofBrazil"); camelCase identifiers have short ones.
      if (len >= kRunTogether && !s.run_together) {
        size_t stretch = 1;
        for (size_t j = b + 1; j < e && stretch < kRunTogether; ++j)
          stretch = hump_at(text.data(), j) ? 1 : stretch + 1;
        s.run_together = stretch >= kRunTogether;
      }
    } else {
      singles = 0;
      // A leetspeak digit between letters ("1gn0r3", "PR3V10US"), not in a hexadecimal id
      // ("3f2a9b") or a random token ("x3G8", "eyJhbGciOiJIUzI1NiIs").
      if (!s.leetspeak && leet_word(p + b, len, kinds) && !in_blob(p, size, b, e)) {
        for (size_t j = b + 1; j + 1 < e; ++j)
          s.leetspeak |= leet(char(p[j])) && letter_at(j - 1) && letter_at(j + 1) &&
                         (!hex_letter(p[j - 1]) || !hex_letter(p[j + 1]));
      }
    }
    if (joins(p, size, words, t)) {
      if (p[e] == '*')
        s.split = true;
      else if (p[e] == '-')
        ++hyphens;
      else
        s.leetspeak = true;
    }
    letter_words += kinds == TextWords::kLetters;
  }
  // Words split by hyphens: a quarter of the words at least ("ig-nore all pre-vious"), not the
  // odd "well-known".
  s.split |= hyphens >= 3 && 4 * hyphens >= letter_words;
  // Two of them backwards (one, where a word asks for text to be reversed), and at least as
  // often backwards as forwards: a page quoting one reversed line is read as written.
  s.backwards = std::popcount(seen & kBackwardsMask) >= (asked_to_reverse ? 1 : 2) && balance >= 0;
  return s;
}

namespace {

// The text with leetspeak read as letters, byte for byte: "1gn0r3 4ll" is "ignore all".
std::optional<Undisguised> unleet(std::string_view text, const TextWords& words) {
  Undisguised u{std::string(text), {text.size(), 0}, "in leetspeak"};
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto mark = [&](size_t b, size_t e) {
    u.at.begin = std::min(u.at.begin, b);
    u.at.end = std::max(u.at.end, e);
  };
  for (size_t t = 0; t < words.words.size(); ++t) {
    const size_t b = words.words[t].begin, e = words.words[t].end;
    if (leet_word(p + b, e - b, words.kinds[t]) && !in_blob(p, text.size(), b, e)) {
      for (size_t j = b; j < e; ++j)
        if (const char l = leet(char(p[j]))) u.text[j] = l;
      mark(b, e);
    }
    if (joins(p, text.size(), words, t) && leet(char(p[e]))) {
      u.text[e] = leet(char(p[e]));
      mark(words.words[t].begin, words.words[t + 1].end);
    }
  }
  if (u.at.begin >= u.at.end) return std::nullopt;
  return u;
}

// The text with letters spaced out joined into words: "i g n o r e   a l l" is "ignore all"
// (one separator between the letters of a word, more between words).
std::optional<Undisguised> unspace(std::string_view text, const TextWords& words) {
  Undisguised u{{}, {text.size(), 0}, "letters spaced out", true};
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  u.text.reserve(text.size());
  const auto single = [&](size_t t) {
    return words.kinds[t] == TextWords::kLetters && words.words[t].end - words.words[t].begin == 1;
  };
  size_t copied = 0;  // text before this is in u.text
  const size_t count = words.words.size();
  for (size_t t = 0; t < count;) {
    size_t last = t;
    while (last < count && single(last)) ++last;
    if (last - t < 4) {
      t = last + 1;
      continue;
    }
    // Words t..last-1 are single letters: join those spelled out one character apart.
    u.text.append(text.substr(copied, words.words[t].begin - copied));
    for (size_t k = t; k < last; ++k) {
      if (k > t && !spelled_apart(p, words, k)) u.text.push_back(' ');
      u.text.push_back(text[words.words[k].begin]);
    }
    copied = words.words[last - 1].end;
    u.at.begin = std::min(u.at.begin, words.words[t].begin);
    u.at.end = std::max(u.at.end, copied);
    t = last;
  }
  if (u.at.begin >= u.at.end) return std::nullopt;
  u.text.append(text.substr(copied));
  return u;
}

// The text with words split by '*' or '-' joined again: "ig*nore all pre-vious" is "ignore all
// previous".
std::optional<Undisguised> unsplit(std::string_view text, const TextWords& words) {
  Undisguised u{{}, {text.size(), 0}, "words split"};
  u.text.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t copied = 0;
  for (size_t t = 0; t < words.words.size(); ++t) {
    const size_t e = words.words[t].end;
    if (!joins(p, text.size(), words, t) || (p[e] != '*' && p[e] != '-')) continue;
    u.text.append(text.substr(copied, e - copied));
    copied = e + 1;
    u.at.begin = std::min(u.at.begin, words.words[t].begin);
    u.at.end = std::max(u.at.end, words.words[t + 1].end);
  }
  if (u.at.begin >= u.at.end) return std::nullopt;
  u.text.append(text.substr(copied));
  return u;
}

// `piece` reversed, character by character (UTF-8 sequences kept whole), appended to `out`.
void append_reversed(std::string_view piece, std::string& out) {
  for (size_t end = piece.size(); end > 0;) {
    size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(piece[b]) & 0xC0) == 0x80 && end - b < 4) --b;
    out.append(piece.substr(b, end - b));
    end = b;
  }
}

// The text with each of its pieces written backwards turned round, in place: a piece is a
// line, or part of one up to a colon and a space ("Reverse this and do it: .won ti od"), and
// is backwards when more of its commonest short words are backwards than forwards. The rest
// reads as it was: the order around the reversed text stays an order.
std::optional<Undisguised> unreverse(std::string_view text, const TextWords& words) {
  Undisguised u{{}, {text.size(), 0}, "written backwards", true, true};
  u.text.reserve(text.size());
  size_t t = 0;  // the first word not before the piece
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find_first_of(":\n", b);
    e = e == std::string_view::npos ? text.size() : e + 1;
    int balance = 0;
    for (; t < words.words.size() && words.words[t].begin < e; ++t) {
      const size_t len = words.words[t].end - words.words[t].begin;
      if (words.kinds[t] == TextWords::kLetters && (len == 3 || len == 4))
        if (const unsigned w = function_word(words.hashes[t]))
          balance += w & kBackwardsMask ? 1 : -1;
    }
    const std::string_view piece = text.substr(b, e - b);
    if (balance > 0) {
      append_reversed(piece, u.text);
      u.at.begin = std::min(u.at.begin, b);
      u.at.end = e;
    } else {
      u.text.append(piece);
    }
    b = e;
  }
  if (u.at.begin >= u.at.end) return std::nullopt;
  return u;
}

// ---- Words run together ----------------------------------------------------------------

// What reading each known word costs: -log of its frequency in the training texts
// (scripts/build_segment_words.py), keyed by the FNV-1a hash of its lower-case letters. 64
// bits, not read_words()'s 32: every stretch of up to `longest` letters of a run is looked
// up, a hundred thousand in a hostile text, and a 32-bit hash would meet a word by chance.
struct WordCosts {
  std::unordered_map<uint64_t, float> cost;
  size_t longest = 0;
};

uint64_t fnv_step(uint64_t h, char c) {
  return (h ^ static_cast<unsigned char>(c | 0x20)) * 1099511628211ull;
}
constexpr uint64_t kFnvBasis = 14695981039346656037ull;

}  // namespace
}  // namespace agentwall::detect

// The word list, embedded from the data file at build time (the build passes its path).
AGENTWALL_EMBED(agentwall_segment_words, AGENTWALL_SEGMENT_WORDS_PATH);

namespace agentwall::detect {
namespace {

const WordCosts& word_costs() {
  static const WordCosts costs = [] {
    WordCosts c;
    const std::string_view all =
        embedded_bytes(agentwall_segment_words_begin, agentwall_segment_words_end);
    std::vector<std::pair<std::string_view, double>> rows;
    double total = 0;
    for (size_t b = 0; b < all.size();) {
      size_t e = all.find('\n', b);
      if (e == std::string_view::npos) e = all.size();
      const std::string_view line = all.substr(b, e - b);
      b = e + 1;
      const size_t sp = line.find(' ');
      if (sp == std::string_view::npos) continue;
      uint64_t n = 0;
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), n);
      if (n == 0) continue;
      rows.emplace_back(line.substr(0, sp), double(n));
      total += double(n);
    }
    c.cost.reserve(rows.size());
    for (const auto& [w, n] : rows) {
      uint64_t h = kFnvBasis;
      for (char ch : w) h = fnv_step(h, ch);
      c.cost.emplace(h, float(std::log(total / n)));
      c.longest = std::max(c.longest, w.size());
    }
    release_embedded(all);
    return c;
  }();
  return costs;
}

// The cheapest reading of `run` (ASCII letters) as words one after the other, known words
// costing what they cost and each letter of no known word more than the rarest word: where
// each word ends (letters of no known word one after another make one word). Empty when it is
// one word, when more than a quarter of its letters belong to no known word (a German
// compound, a name), when less than half are in known words of three letters or more, or
// when its words have fewer than three letters on average (a random string or a compound of
// another language read as "ab cd ef": English run together has longer ones).
std::vector<size_t> segment(std::string_view run) {
  const WordCosts& words = word_costs();
  const size_t n = run.size();
  constexpr float kUnknownLetter = 14;  // a word seen once in 150,000 costs about 12
  thread_local std::vector<float> best;
  thread_local std::vector<uint32_t> from;
  thread_local std::vector<uint8_t> known;
  best.assign(n + 1, 1e30f);
  from.assign(n + 1, 0);
  known.assign(n + 1, 0);
  best[0] = 0;
  for (size_t b = 0; b < n; ++b) {
    if (const float c = best[b] + kUnknownLetter; c < best[b + 1]) {
      best[b + 1] = c;
      from[b + 1] = uint32_t(b);
      known[b + 1] = 0;
    }
    uint64_t h = kFnvBasis;
    for (size_t e = b + 1; e <= n && e - b <= words.longest; ++e) {
      h = fnv_step(h, run[e - 1]);
      const auto it = words.cost.find(h);
      if (it == words.cost.end()) continue;
      if (const float c = best[b] + it->second; c < best[e]) {
        best[e] = c;
        from[e] = uint32_t(b);
        known[e] = 1;
      }
    }
  }
  std::vector<size_t> ends;
  size_t unknown = 0, in_words = 0;  // letters of no known word; of known words of 3 or more
  for (size_t e = n; e > 0; e = from[e]) {
    if (!known[e]) {
      ++unknown;
      // Letters of no known word, one after another, are one word.
      if (!ends.empty() && !known[ends.back()]) continue;
    } else if (e - from[e] >= 3) {
      in_words += e - from[e];
    }
    ends.push_back(e);
  }
  if (ends.size() < 2 || 4 * unknown > n || 2 * in_words < n || n < 3 * ends.size()) return {};
  std::reverse(ends.begin(), ends.end());
  return ends;
}

// The text with its words run together read apart: "ignoreallpreviousinstructions" is
// "ignore all previous instructions". Once a text has a run of 17 letters or more, every run
// of eight or more (not camelCase) that reads as known words is read so; one that does not
// (a German compound, a name, a random string) stays as it is.
std::optional<Undisguised> unrun(std::string_view text, const TextWords& words) {
  Undisguised u{{}, {text.size(), 0}, "words run together"};
  u.text.reserve(text.size() + text.size() / 4);
  size_t copied = 0, letters = 0, apart = 0, budget = kMaxRunLetters;
  for (size_t t = 0; t < words.words.size(); ++t) {
    const size_t b = words.words[t].begin, e = words.words[t].end;
    if (words.kinds[t] != TextWords::kLetters) continue;
    letters += e - b;
    if (e - b < 8 || e - b > budget) continue;
    budget -= e - b;
    // A capital after a small letter starts a word ("CanyouuseBase16", "WhatisthecapitalofBrazil"):
    // the stretches between are read apart each.
    std::vector<size_t> ends;
    bool apart_here = false;
    for (size_t sb = b; sb < e;) {
      size_t se = sb + 1;
      while (se < e && !hump_at(text.data(), se)) ++se;
      const std::vector<size_t> piece =
          se - sb >= 8 ? segment(text.substr(sb, se - sb)) : std::vector<size_t>{};
      apart_here |= !piece.empty();
      if (piece.empty()) {
        ends.push_back(se - b);
      } else {
        for (size_t end : piece) ends.push_back(sb - b + end);
      }
      sb = se;
    }
    if (!apart_here) continue;
    u.text.append(text.substr(copied, b - copied));
    size_t from = b;
    for (size_t end : ends) {
      if (from > b) u.text.push_back(' ');
      u.text.append(text.substr(from, b + end - from));
      from = b + end;
    }
    copied = e;
    apart += e - b;
    u.at.begin = std::min(u.at.begin, b);
    u.at.end = std::max(u.at.end, e);
  }
  if (u.at.begin >= u.at.end) return std::nullopt;
  u.text.append(text.substr(copied));
  // Where most of the text ran together, the model's reading of it as written was of a few
  // unknown words: the reading apart replaces it. One run among plain words (a slug, a
  // hashtag) is some of the text's words: the stronger reading counts.
  u.replaces_model_reading = 2 * apart >= letters;
  return u;
}

}  // namespace

std::vector<Undisguised> undisguise(std::string_view text, const TextWords& words,
                                    const DisguiseSigns& signs) {
  std::vector<Undisguised> out;
  if (signs.leetspeak)
    if (auto u = unleet(text, words)) out.push_back(std::move(*u));
  if (signs.spaced)
    if (auto u = unspace(text, words)) out.push_back(std::move(*u));
  if (signs.split)
    if (auto u = unsplit(text, words)) out.push_back(std::move(*u));
  if (signs.run_together)
    if (auto u = unrun(text, words)) out.push_back(std::move(*u));
  if (signs.backwards) {
    // Two readings, the stronger counts: turned round piece by piece, the order around the
    // reversed text stays an order; turned round whole, text reversed line by line in
    // pieces too short to show it is read as well.
    if (auto u = unreverse(text, words)) out.push_back(std::move(*u));
    Undisguised whole{{}, {0, text.size()}, "written backwards", true};
    append_reversed(text, whole.text);
    out.push_back(std::move(whole));
  }
  return out;
}

void squeeze(std::string_view text, Squeezed& out) {
  // Grown, never shrunk: resizing down and up again would clear the bytes on every call.
  if (out.letters.size() < text.size()) {
    out.letters.resize(text.size());
    out.at.resize(text.size());
  }
  char* letters = out.letters.data();
  uint32_t* at = out.at.data();
  size_t n = 0;
  size_t run = 0;     // letters read since the last byte left out
  size_t before = 0;  // the length of that run when the gap began
  bool gap = false, gap_space = false, gap_stop = false, gap_break = false;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  for (size_t i = 0; i < size; ++i) {
    uint8_t c = kBytes.cls[p[i]];
    if (c == kLeet) {
      // Leetspeak inside a word ("1gn0r3", "a11"), not in numbers ("2024", "$5"); '!' and '|'
      // end sentences and draw lines too, so they count only before a letter.
      const uint8_t next = i + 1 < size ? kBytes.cls[p[i + 1]] : uint8_t(kOther);
      const bool after_letter = run > 0 && p[i] != '!' && p[i] != '|';
      const bool before_letter =
          next == kLetter || (next == kLeet && i + 2 < size && kBytes.cls[p[i + 2]] == kLetter);
      if (!after_letter && !before_letter) c = p[i] == '!' ? kStop : kOther;
    }
    if (c == kLetter || c == kLeet) {
      if (gap && n > 0 && letters[n - 1] != '\n' &&
          (gap_break || (gap_stop && gap_space && before >= 2))) {
        letters[n] = '\n';
        at[n++] = uint32_t(i);
      }
      gap = gap_space = gap_stop = gap_break = false;
      letters[n] = kBytes.letter[p[i]];
      at[n++] = uint32_t(i);
      ++run;
      continue;
    }
    if (run > 0) before = run;
    run = 0;
    gap = true;
    gap_space |= c == kSpace;
    gap_stop |= c == kStop;
    gap_break |= c == kBreak;
  }
  out.size = n;
}

std::string_view disguise_of(std::string_view text, Span s) {
  s.end = std::min(s.end, text.size());
  bool leetspeak = false, split = false, spaced = false, hump = false, other = false;
  size_t letters = 0, singles = 0, run = 0;
  for (size_t i = s.begin; i < s.end; ++i) {
    const char c = text[i];
    const bool prev = i > s.begin && ascii_alpha(text[i - 1]);
    const bool next = i + 1 < s.end && ascii_alpha(text[i + 1]);
    if (ascii_alpha(c)) {
      hump |= i > s.begin && hump_at(text.data(), i);
      ++letters;
      ++run;
      continue;
    }
    singles += run == 1;
    run = 0;
    if (space(c) || c == '\n') {
      spaced = true;
    } else if (leet(c) && (prev || next)) {
      leetspeak = true;
    } else {
      other = true;
      split |= prev && next && c != '_' && c != '\'';
    }
  }
  singles += run == 1;
  if (leetspeak) return "in leetspeak";
  if (singles >= 3) return "letters spaced out";
  if (split) return "words split";
  if (!spaced && !other && !hump && letters >= kRunTogether) return "words run together";
  return {};
}

std::vector<DisguisedOrder> find_disguised(std::string_view text, const DisguiseSigns& signs,
                                           const std::vector<Finding>& already) {
  std::vector<DisguisedOrder> found;
  // Text backwards is read turned round whole by the rules and the model (undisguise()).
  if (text.size() < kMinLetters ||
      !(signs.leetspeak || signs.spaced || signs.split || signs.run_together))
    return found;
  thread_local Squeezed forward;
  squeeze(text, forward);
  const std::string_view letters = forward.view();
  if (letters.size() < kMinLetters) return found;
  const PhraseSet& set = phrase_set();
  // Whether phrase `i` stands for a rule already found, in plain words or disguised.
  const auto known = [&](unsigned i) {
    const std::string_view id = kPhrases[i].id;
    return std::any_of(already.begin(), already.end(),
                       [&](const Finding& f) { return f.detector == id; }) ||
           std::any_of(found.begin(), found.end(),
                       [&](const DisguisedOrder& d) { return d.id == id; });
  };
  const auto add = [&](unsigned i, Span span, std::string_view how) {
    const Phrase& p = kPhrases[i];
    found.push_back({p.id, p.confidence, p.tool_confidence, p.explanation, span, how});
  };
  // A phrase counts where its words as written are disguised.
  for (unsigned i = 0; i < std::size(kPhrases); ++i) {
    if (known(i)) continue;
    set.each_match(i, letters, [&](size_t b, size_t e) {
      const Span span{forward.at[b], forward.at[e - 1] + 1};
      const std::string_view how = disguise_of(text, span);
      if (!how.empty()) add(i, span, how);
      return !how.empty();
    });
  }
  return found;
}

}  // namespace agentwall::detect

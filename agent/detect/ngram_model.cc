#include "agent/detect/ngram_model.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

#include "agent/common/embed.h"

namespace agentwall::detect {
namespace {

constexpr size_t kMaxTokenForGrams = 20;  // longer "words" are ids and blobs, not language
// Windows with fewer features are scaled as if they had this many (a feature counted once in
// each of its two tables, so 12 features): a two-word text carries little evidence either
// way and must not score like a whole paragraph.
constexpr size_t kMinNorm = 24;
// Texts of fewer words, and shorter than kMinWordBytes in all, are not scored at all:
// "continue", "tell me more", "pay" carry too little for the model to judge (it had flagged
// those three), and the rules still read them. Out of fold, no such text was flagged by the
// model alone. The length keeps the scripts written without spaces, where a clause is one
// "word" (8 Chinese characters are 24 bytes).
constexpr size_t kMinTokens = 4;
constexpr size_t kMinWordBytes = 24;

// Hashing, simple enough to reproduce in the training script: a word is FNV-1a (32 bits) of
// its lowercase bytes; a feature is the top bits of (key ^ kind) times a 64-bit odd constant,
// where the key is the word's hash, a pair of them, or up to 4 bytes of a character n-gram
// with its length. Independent multiplies rather than one long chain per feature. Words are
// hashed by read_words(), as it finds them.
constexpr uint32_t kFnvBasis = TextWords::kHashBasis;
constexpr uint32_t kFnvPrime = TextWords::kHashPrime;

constexpr uint64_t kWordKind = 0x1111111111111111ull;
constexpr uint64_t kPairKind = 0x2222222222222222ull;
constexpr uint64_t kGramKind = 0x3333333333333333ull;

uint32_t feature(uint64_t key, uint64_t kind) {
  return uint32_t(((key ^ kind) * 0x9E3779B97F4A7C15ull) >> (64 - NgramModel::kDimBits));
}

using Token = TextWords::Word;

// Tokens are runs of ASCII letters and digits or of non-ASCII bytes (so other scripts make
// words too); everything else separates. Case is folded when hashing.
constexpr std::array<bool, 256> kWordByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
  return t;
}();

// Each byte as it is hashed in a word: lower case, or 0 when it is no word byte (no word
// byte lowers to 0). One load per byte where the tokenizer would test and then fold; the
// bytes of a token (word bytes all) are lowered with it everywhere.
constexpr std::array<uint8_t, 256> kWordLower = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c)
    if (kWordByte[c]) t[c] = (c >= 'A' && c <= 'Z') ? uint8_t(c - 'A' + 'a') : uint8_t(c);
  return t;
}();

// Words the model does not see: "example" is in the reserved host names (RFC 2606) that the
// training data's attacks send data to ("collector.example") far more often than its benign
// rows name them, so the model learned the word as attack evidence, which says nothing about
// real traffic and flags documentation. Matched by hash and length (the hash is the word's).
bool unseen_word(uint32_t h, size_t len) {
  static constexpr uint32_t kExample = TextWords::hash("example"),
                            kExamples = TextWords::hash("examples");
  return (len == 7 && h == kExample) || (len == 8 && h == kExamples);
}

// Which kinds of byte (TextWords::Kind) each byte of a word is.
constexpr std::array<uint8_t, 256> kByteKind = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) t[c] = TextWords::kLetters;
    if (c >= '0' && c <= '9')
      t[c] = (c == '2' || c == '6' || c == '9') ? TextWords::kOtherDigits : TextWords::kLeetDigits;
    if (c >= 0x80) t[c] = TextWords::kNonAscii;
  }
  return t;
}();

// What a byte between words says of the gap (TextWords::code_gaps): a mark of code, a joiner
// (code's only where no space is beside it), a space or control character.
enum : uint8_t { kGapMark = 1, kGapJoiner = 2, kGapSpace = 4 };
constexpr std::array<uint8_t, 256> kGapByte = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c <= ' '; ++c) t[c] = kGapSpace;
  for (unsigned char c : std::string_view("(){}[];=<>|&\\$`")) t[c] = kGapMark;
  for (unsigned char c : std::string_view(".:_/")) t[c] = kGapJoiner;
  return t;
}();

}  // namespace

// The words of `text`, the hash of each (FNV-1a of its lowercase bytes), the kinds of byte
// it holds and whether the gap after it is code's, in one pass over the text. score() reuses
// the buffers from call to call.
void read_words(std::string_view text, TextWords& out) {
  std::vector<Token>& toks = out.words;
  toks.clear();
  out.hashes.clear();
  out.kinds.clear();
  out.code_gaps.clear();
  toks.reserve(text.size() / 5);
  out.hashes.reserve(text.size() / 5);
  out.kinds.reserve(text.size() / 5);
  out.code_gaps.reserve(text.size() / 5);
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  uint8_t gap = 0;  // kGapByte bits of the bytes since the last word kept
  while (i < n) {
    while (i < n && !kWordByte[p[i]]) gap |= kGapByte[p[i++]];
    const size_t b = i;
    uint32_t h = kFnvBasis;
    uint8_t kinds = 0;
    for (uint8_t c; i < n && (c = kWordLower[p[i]]) != 0; ++i) {
      h = (h ^ c) * kFnvPrime;
      kinds |= kByteKind[c];
    }
    if (i > b && !unseen_word(h, i - b)) {
      if (!toks.empty())
        out.code_gaps.push_back((gap & kGapMark) || ((gap & kGapJoiner) && !(gap & kGapSpace)));
      gap = 0;
      toks.push_back({b, i});
      out.hashes.push_back(h);
      out.kinds.push_back(kinds);
    }
  }
}

namespace {

// The bigram token t makes with token t+1.
uint32_t pair_feature(const std::vector<uint32_t>& hashes, size_t t) {
  return feature((uint64_t(hashes[t]) << 32) | hashes[t + 1], kPairKind);
}

// Token t's features, appended: its word, its character 4-grams, and last, when `bigram`,
// the pair it makes with token t+1.
void token_features(std::string_view text, const std::vector<Token>& toks,
                    const std::vector<uint32_t>& hashes, size_t t, bool bigram,
                    std::vector<uint32_t>& out) {
  const std::string_view w = text.substr(toks[t].begin, toks[t].end - toks[t].begin);
  out.push_back(feature(hashes[t], kWordKind));
  if (w.size() <= kMaxTokenForGrams) {
    // Character 4-grams of "<word>": catch misspellings, inflections and glued words. The
    // key is a 4-byte window sliding over "<word>", little-endian, with its length on top.
    const size_t plen = w.size() + 2;
    if (plen < 4) {  // "<a>": one short gram
      uint64_t key = uint64_t(plen) << 32 | '<';
      for (size_t k = 0; k < w.size(); ++k)
        key |= uint64_t(kWordLower[uint8_t(w[k])]) << (8 * (k + 1));
      key |= uint64_t('>') << (8 * (plen - 1));
      out.push_back(feature(key, kGramKind));
    } else {
      uint32_t window = uint32_t('<') << 24;
      for (size_t k = 0; k + 1 < plen; ++k) {
        const uint8_t c = k < w.size() ? kWordLower[uint8_t(w[k])] : uint8_t('>');
        window = (window >> 8) | (uint32_t(c) << 24);
        if (k >= 2) out.push_back(feature(uint64_t(4) << 32 | window, kGramKind));
      }
    }
  }
  if (bigram) out.push_back(pair_feature(hashes, t));
}

// What the own features of recently seen words (the word and its 4-grams, everything but
// the bigrams) add up to under one model, kept per thread from text to text. Text repeats
// its words, and a word met again then costs a compare instead of about six lookups
// scattered over the 4 MiB weight table. A sum is the one computed the first time, in the
// same order, so scores do not move. Direct-mapped by the word's hash; words longer than
// kMaxTokenForGrams have one feature only and are not kept.
class WordSums {
 public:
  struct Entry {
    uint32_t hash;
    uint8_t len;                   // 0: empty
    char word[kMaxTokenForGrams];  // lower case
    uint32_t count;                // features summed
    double sum;

    bool holds(std::string_view w, uint32_t h) const {
      if (len != w.size() || hash != h) return false;
      for (size_t k = 0; k < w.size(); ++k)
        if (word[k] != char(kWordLower[uint8_t(w[k])])) return false;
      return true;
    }
    void fill(std::string_view w, uint32_t h, double s, uint32_t n) {
      hash = h;
      len = uint8_t(w.size());
      for (size_t k = 0; k < w.size(); ++k) word[k] = char(kWordLower[uint8_t(w[k])]);
      count = n;
      sum = s;
    }
  };

  // Where the sums of the word with hash `h` under model `model` are kept; whether they
  // are that word's, Entry::holds says.
  Entry& slot(uint64_t model, uint32_t h) {
    if (model != model_) {  // first use on this thread, or other weights: start empty
      entries_.assign(kSlots, Entry{});
      model_ = model;
    }
    return entries_[h % kSlots];
  }

 private:
  static constexpr size_t kSlots = 1024;  // 40 KiB
  uint64_t model_ = 0;
  std::vector<Entry> entries_;
};

void sort_unique(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

[[noreturn]] void bad(size_t line, const std::string& what) {
  throw std::runtime_error("injection model line " + std::to_string(line) + ": " + what);
}

}  // namespace

std::vector<uint32_t> NgramModel::features(std::string_view text) {
  TextWords words;
  read_words(text, words);
  const std::vector<Token>& toks = words.words;
  const std::vector<uint32_t>& hashes = words.hashes;
  std::vector<uint32_t> out;
  for (size_t t = 0; t < toks.size(); ++t)
    token_features(text, toks, hashes, t, t + 1 < toks.size(), out);
  sort_unique(out);
  return out;
}

NgramModel::Result NgramModel::score(std::string_view text, View view) const {
  // Per thread and kept from call to call, like the buffers below: no allocation per text.
  thread_local TextWords words;
  read_words(text, words);
  return score(text, words, view);
}

NgramModel::Result NgramModel::score(std::string_view text, const TextWords& words,
                                     View view) const {
  Result best;
  const std::vector<float>& weights = weights_[size_t(view)];
  const std::vector<Token>& toks = words.words;
  const std::vector<uint32_t>& hashes = words.hashes;
  if (weights.empty()) return best;
  if (toks.size() < kMinTokens) {  // an empty text too
    size_t bytes = 0;
    for (const Token& t : toks) bytes += t.end - t.begin;
    if (bytes < kMinWordBytes) return best;
  }
  // Features count with repeats, so a window's score is a sum over its tokens: each token's
  // features are hashed and weighed once, and windows are differences of prefix sums.
  // The bigram a token makes with the next one counts only when both are in the window.
  thread_local std::vector<uint32_t> feats;
  thread_local std::vector<double> own_sum, pair_sum;  // prefix sums over tokens
  thread_local std::vector<uint32_t> own_count;
  thread_local std::array<WordSums, 2> seen_in;  // per view: its sums differ
  WordSums& seen = seen_in[size_t(view)];
  own_sum.assign(1, 0.0);
  pair_sum.assign(1, 0.0);
  own_count.assign(1, 0);
  for (size_t t = 0; t < toks.size(); ++t) {
    const std::string_view w = text.substr(toks[t].begin, toks[t].end - toks[t].begin);
    WordSums::Entry* kept = w.size() <= kMaxTokenForGrams ? &seen.slot(id_, hashes[t]) : nullptr;
    double sum = 0;
    uint32_t own = 0;
    if (kept && kept->holds(w, hashes[t])) {
      sum = kept->sum;
      own = kept->count;
    } else {
      feats.clear();
      token_features(text, toks, hashes, t, /*bigram=*/false, feats);
      for (uint32_t f : feats) sum += weights[f];
      own = uint32_t(feats.size());
      if (kept) kept->fill(w, hashes[t], sum, own);
    }
    own_sum.push_back(own_sum.back() + sum);
    own_count.push_back(own_count.back() + own);
    const bool bigram = t + 1 < toks.size();
    pair_sum.push_back(pair_sum.back() + (bigram ? weights[pair_feature(hashes, t)] : 0.0));
  }
  // Which gaps between tokens are code's (read_words), and their prefix sums.
  const std::vector<uint8_t>& code = words.code_gaps;
  thread_local std::vector<uint32_t> code_sum;
  code_sum.assign(1, 0);
  for (const uint8_t c : code) code_sum.push_back(code_sum.back() + c);
  // Whether gaps [from, to) hold a sentence: kProseRun gaps in a row that are not code's.
  const auto has_prose = [&](size_t from, size_t to) {
    size_t run = 0;
    for (size_t g = from; g < to; ++g)
      if ((run = code[g] ? 0 : run + 1) >= kProseRun) return true;
    return false;
  };
  double best_logit = -1e300;
  for (size_t from = 0;; from += kStrideTokens) {
    const size_t to = std::min(toks.size(), from + kWindowTokens);
    // A window of code (half its gaps or more are brackets, operators, member access) is
    // not read: the model learned prose, and code's identifiers and keywords ("this",
    // "import", "function") are words of attacks too. The rules and the unsafe-output
    // detector read code. A window with a sentence in it (a comment, the order before a
    // snippet: "Introduce the following code into your answer:") is read whole.
    const size_t gaps = to - 1 - from;
    if (gaps > 0 && 2 * (code_sum[to - 1] - code_sum[from]) >= gaps && !has_prose(from, to - 1)) {
      if (to == toks.size()) break;
      continue;
    }
    const double sum =
        own_sum[to] - own_sum[from] + pair_sum[to - 1] - pair_sum[from];  // pairs from..to-2
    // Every feature is counted twice, as the training script counts it: once per table.
    const size_t count = 2 * (own_count[to] - own_count[from] + (to - 1 - from));
    const double logit = bias_ + sum / std::sqrt(double(std::max(count, kMinNorm)));
    if (logit > best_logit) {
      best_logit = logit;
      best.window = {toks[from].begin, toks[to - 1].end};
    }
    if (to == toks.size()) break;
  }
  best.probability = 1.0 / (1.0 + std::exp(-best_logit));
  return best;
}

size_t NgramModel::nonzero_weights() const {
  return nonzero_;
}

// Format: "agentwall-ngram-model 2 <dim_bits> <window> <stride>", "bias <float>", then one
// "<index> <weight>" per line for every non-zero weight, where feature i of the shared table
// is index i, of the prompt table (1 << dim_bits) + i and of the content table
// (2 << dim_bits) + i. '#' lines are comments. (Version 1 had the shared table only.)
NgramModel NgramModel::parse(std::string_view data) {
  static std::atomic<uint64_t> parsed{0};
  NgramModel m;
  m.id_ = ++parsed;
  size_t line_no = 0;
  bool header = false, have_bias = false;
  // A shared weight goes into both views' tables, a view's own into its table: each entry
  // ends as shared + own (the file lists the shared table first).
  constexpr size_t kTable = size_t(1) << kDimBits;
  for (auto& t : m.weights_) t.assign(kTable, 0.0f);
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    std::string_view line = data.substr(0, nl);
    data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      const std::string want = "agentwall-ngram-model 2 " + std::to_string(kDimBits) + " " +
                               std::to_string(kWindowTokens) + " " + std::to_string(kStrideTokens);
      if (line != want) bad(line_no, "expected \"" + want + "\"");
      header = true;
      continue;
    }
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) bad(line_no, "expected two fields");
    const std::string_view key = line.substr(0, sp);
    const std::string_view value = line.substr(sp + 1);
    float w = 0;  // from_chars: correctly rounded as strtof, without a copy or the locale
    const auto [wend, wec] = std::from_chars(value.data(), value.data() + value.size(), w);
    if (wec != std::errc() || wend != value.data() + value.size() || !std::isfinite(w))
      bad(line_no, "bad weight");
    if (key == "bias") {
      m.bias_ = w;
      have_bias = true;
      continue;
    }
    uint32_t idx = 0;
    const auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), idx);
    if (ec != std::errc() || p != key.data() + key.size() || idx >= 3 * kTable)
      bad(line_no, "bad feature index");
    if (idx < kTable) {
      for (auto& t : m.weights_) t[idx] += w;
    } else {
      m.weights_[idx / kTable - 1][idx % kTable] += w;
    }
    m.nonzero_ += w != 0;
  }
  if (!header || !have_bias) bad(line_no, "missing header or bias");
  return m;
}

}  // namespace agentwall::detect

// The shipped weights, embedded from the data file at build time (the build passes its path).
AGENTWALL_EMBED(agentwall_injection_model, AGENTWALL_INJECTION_MODEL_PATH);

namespace agentwall::detect {

const NgramModel& injection_model() {
  static const NgramModel model = [] {
    const std::string_view text =
        embedded_bytes(agentwall_injection_model_begin, agentwall_injection_model_end);
    NgramModel m = NgramModel::parse(text);
    release_embedded(text);  // 10 MB of text, now in the tables
    return m;
  }();
  return model;
}

}  // namespace agentwall::detect

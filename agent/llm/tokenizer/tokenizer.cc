#include "agent/llm/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "agent/common/pcre2.h"
#include "agent/llm/tokenizer/rank_blob.h"

namespace agentwall::llm {
namespace {

static_assert(std::endian::native == std::endian::little, "the rank blob is little-endian");

constexpr uint32_t kNoRank = UINT32_MAX;

// Pieces up to this size merge with a linear scan per step (O(n^2), fast when short); longer
// ones (runs of one letter, whitespace, invalid bytes) with a heap in O(n log n).
constexpr size_t kScanMergeMax = 64;

// tiktoken's pre-tokenization patterns (tiktoken_ext/openai_public.py). One known difference:
// PCRE2's \s also matches U+180E, which tiktoken's Rust regex does not.
constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

uint32_t load_u32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = std::rotl((h ^ w) * 0xbf58476d1ce4e5b9ULL, 29);
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h ^= w;
  }
  return mix(h);
}

// Token bytes -> rank, over one encoding's table in the embedded blob (no copy of the bytes).
class RankTable {
 public:
  RankTable(std::span<const unsigned char> blob, size_t index) {
    auto fail = [] { throw std::logic_error("tokenizer: the embedded rank blob is malformed"); };
    if (blob.size() < 12 || std::memcmp(blob.data(), "AWTK", 4) != 0 || load_u32(&blob[4]) != 1 ||
        load_u32(&blob[8]) <= index || blob.size() < 28 + 16 * index)
      fail();
    const unsigned char* header = &blob[12 + 16 * index];
    size_ = load_u32(header);
    const size_t offsets_at = load_u32(header + 4), bytes_at = load_u32(header + 8);
    const size_t bytes_len = load_u32(header + 12);
    if (size_ < 256 || offsets_at + 4 * (size_t{size_} + 1) > bytes_at ||
        bytes_at + bytes_len > blob.size())
      fail();
    offsets_ = &blob[offsets_at];
    bytes_ = reinterpret_cast<const char*>(&blob[bytes_at]);
    if (offset(size_) != bytes_len) fail();

    slots_.assign(std::bit_ceil(size_t{size_} * 2), 0);
    mask_ = slots_.size() - 1;
    byte_ranks_.fill(kNoRank);
    for (uint32_t rank = 0; rank < size_; ++rank) {
      if (offset(rank) > offset(rank + 1)) fail();
      const std::string_view t = token(rank);
      if (find(t) != kNoRank) fail();
      const uint64_t h = hash_bytes(t);
      size_t i = h & mask_;
      while (slots_[i] != 0) i = (i + 1) & mask_;
      slots_[i] = (h & kTagMask) | (rank + 1);
      if (t.size() == 1) byte_ranks_[static_cast<unsigned char>(t[0])] = rank;
      longest_ = std::max(longest_, t.size());
    }
    if (std::ranges::count(byte_ranks_, kNoRank) != 0) fail();  // every byte must encode
  }

  uint32_t find(std::string_view bytes) const {
    if (bytes.size() == 1) return byte_ranks_[static_cast<unsigned char>(bytes[0])];
    if (bytes.size() > longest_) return kNoRank;
    const uint64_t h = hash_bytes(bytes);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t slot = slots_[i];
      if (slot == 0) return kNoRank;
      if ((slot & kTagMask) == (h & kTagMask)) {
        const uint32_t rank = static_cast<uint32_t>(slot) - 1;
        if (token(rank) == bytes) return rank;
      }
    }
  }

 private:
  static constexpr uint64_t kTagMask = 0xffffffff00000000ULL;

  uint32_t offset(uint32_t rank) const { return load_u32(offsets_ + 4 * size_t{rank}); }
  std::string_view token(uint32_t rank) const {
    return {bytes_ + offset(rank), offset(rank + 1) - offset(rank)};
  }

  uint32_t size_ = 0;
  const unsigned char* offsets_ = nullptr;
  const char* bytes_ = nullptr;
  std::vector<uint64_t> slots_;  // hash tag in the high half, rank + 1 in the low; 0 = empty
  uint64_t mask_ = 0;
  size_t longest_ = 0;  // token length; longer pieces need no lookup
  std::array<uint32_t, 256> byte_ranks_{};
};

// Per-call working memory.
struct Scratch {
  struct Part {
    uint32_t start;
    uint32_t rank;  // of this part merged with the next one
  };
  std::vector<Part> parts;
  std::vector<uint32_t> next, prev, pair_rank;  // linked list of parts, by start
  std::vector<uint64_t> heap;
  std::vector<uint32_t> starts;  // merge result: where each token of the piece starts
};

// Byte-pair merge: repeatedly join the adjacent pair whose bytes have the lowest rank (the
// leftmost on ties) until no pair is a token. Leaves the token starts in s.starts.
void merge_by_scan(std::string_view piece, const RankTable& ranks, Scratch& s) {
  auto& parts = s.parts;
  parts.clear();
  for (uint32_t i = 0; i < piece.size(); ++i) {
    parts.push_back({i, i + 1 < piece.size() ? ranks.find(piece.substr(i, 2)) : kNoRank});
  }
  parts.push_back({static_cast<uint32_t>(piece.size()), kNoRank});  // end sentinel
  auto rank_of_pair = [&](size_t i) {
    if (i + 2 >= parts.size()) return kNoRank;
    return ranks.find(piece.substr(parts[i].start, parts[i + 2].start - parts[i].start));
  };
  while (parts.size() > 2) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < parts.size(); ++i) {
      if (parts[i].rank < parts[best].rank) best = i;
    }
    if (parts[best].rank == kNoRank) break;
    parts.erase(parts.begin() + best + 1);
    parts[best].rank = rank_of_pair(best);
    if (best > 0) parts[best - 1].rank = rank_of_pair(best - 1);
  }
  s.starts.clear();
  for (size_t i = 0; i + 1 < parts.size(); ++i) s.starts.push_back(parts[i].start);
}

// Same result as merge_by_scan, with a min-heap of (rank, start) over a linked list of parts.
// Heap entries go stale when a part changes; they are skipped when their rank is no longer
// the part's.
void merge_by_heap(std::string_view piece, const RankTable& ranks, Scratch& s) {
  const auto n = static_cast<uint32_t>(piece.size());
  auto& next = s.next;
  auto& prev = s.prev;
  auto& pair_rank = s.pair_rank;
  auto& heap = s.heap;
  next.resize(n);
  prev.resize(n);
  pair_rank.resize(n);
  heap.clear();
  auto rank_of_pair = [&](uint32_t i) {
    if (next[i] >= n) return kNoRank;
    return ranks.find(piece.substr(i, next[next[i]] - i));
  };
  auto push = [&](uint32_t i) {
    pair_rank[i] = rank_of_pair(i);
    if (pair_rank[i] == kNoRank) return;
    heap.push_back(uint64_t{pair_rank[i]} << 32 | i);
    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
  };
  for (uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  for (uint32_t i = 0; i < n; ++i) {
    pair_rank[i] = rank_of_pair(i);
    if (pair_rank[i] != kNoRank) heap.push_back(uint64_t{pair_rank[i]} << 32 | i);
  }
  std::make_heap(heap.begin(), heap.end(), std::greater<>{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const uint64_t top = heap.back();
    heap.pop_back();
    const auto i = static_cast<uint32_t>(top);
    if (pair_rank[i] != top >> 32) continue;  // stale
    const uint32_t gone = next[i];
    next[i] = next[gone];
    if (next[i] < n) prev[next[i]] = i;
    pair_rank[gone] = kNoRank;
    push(i);
    if (i > 0) push(prev[i]);
  }
  s.starts.clear();
  for (uint32_t i = 0; i < n; i = next[i]) s.starts.push_back(i);
}

void merge(std::string_view piece, const RankTable& ranks, Scratch& s) {
  if (piece.size() <= kScanMergeMax) {
    merge_by_scan(piece, ranks, s);
  } else {
    merge_by_heap(piece, ranks, s);
  }
}

using pcre2::CodeFree;
using pcre2::MatchContextFree;
using pcre2::MatchDataFree;

class Encoder {
 public:
  Encoder(std::string_view pattern, size_t blob_index)
      : ranks_(tokenizer_internal::rank_blob(), blob_index) {
    int error = 0;
    PCRE2_SIZE error_at = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &error_at,
                              nullptr));
    if (!code_) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      throw std::logic_error("tokenizer: pattern does not compile: " +
                             std::string(reinterpret_cast<const char*>(message.data())));
    }
    // Without JIT (unsupported CPU, W^X policy) pcre2_match interprets: slower, same result.
    pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);
    // Each match backtracks at most over its own run (e.g. `\s*[\r\n]+` over spaces), so
    // the default limit of 10M steps would only cut runs of several MB short.
    context_.reset(pcre2_match_context_create(nullptr));
    if (!context_) throw std::bad_alloc();
    pcre2_set_match_limit(context_.get(), UINT32_MAX);
    pcre2_set_depth_limit(context_.get(), UINT32_MAX);
  }

  // Calls on_piece(piece, rank) for each pre-token piece; rank is its own rank when the whole
  // piece is one token, else kNoRank.
  template <typename OnPiece>
  void for_each_piece(std::string_view text, OnPiece&& on_piece) const {
    std::unique_ptr<pcre2_match_data, MatchDataFree> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!match) throw std::bad_alloc();
    auto emit = [&](size_t from, size_t to) {
      const std::string_view piece = text.substr(from, to - from);
      on_piece(piece, ranks_.find(piece));
    };
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t at = 0;
    while (at < text.size()) {
      const int rc =
          pcre2_match(code_.get(), subject, text.size(), at, 0, match.get(), context_.get());
      if (rc < 0) {
        // No match: bytes that are not UTF-8. Any other error (out of memory) should not
        // happen, but the rest would still count, by bytes.
        emit_bytes(at, text.size(), emit);
        return;
      }
      const PCRE2_SIZE* span = pcre2_get_ovector_pointer(match.get());
      // With PCRE2_MATCH_INVALID_UTF a match never covers invalid UTF-8: the skipped bytes
      // are a piece of their own (tiktoken only takes valid text, so this is our choice).
      if (span[0] > at) emit_bytes(at, span[0], emit);
      if (span[1] == span[0]) {  // the patterns cannot match empty; guard against a loop
        emit(span[0], span[0] + 1);
        at = span[0] + 1;
        continue;
      }
      emit(span[0], span[1]);
      at = span[1];
    }
  }

  const RankTable& ranks() const { return ranks_; }

 private:
  // Raw bytes go in pieces of bounded size, so positions fit 32 bits.
  template <typename Emit>
  static void emit_bytes(size_t from, size_t to, Emit& emit) {
    constexpr size_t kMaxPiece = size_t{1} << 20;
    for (; from < to; from += std::min(to - from, kMaxPiece)) {
      emit(from, from + std::min(to - from, kMaxPiece));
    }
  }

  RankTable ranks_;
  std::unique_ptr<pcre2_code, CodeFree> code_;
  std::unique_ptr<pcre2_match_context, MatchContextFree> context_;  // read-only once built
};

const Encoder& encoder(Encoding encoding) {
  switch (encoding) {
    case Encoding::kO200kBase: {
      static const Encoder o200k(kO200kPattern, 0);
      return o200k;
    }
    case Encoding::kCl100kBase: {
      static const Encoder cl100k(kCl100kPattern, 1);
      return cl100k;
    }
  }
  throw std::invalid_argument("tokenizer: unknown encoding");
}

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  return std::ranges::any_of(prefixes, [s](std::string_view p) { return s.starts_with(p); });
}

}  // namespace

std::string_view to_string(Encoding encoding) {
  switch (encoding) {
    case Encoding::kO200kBase:
      return "o200k_base";
    case Encoding::kCl100kBase:
      return "cl100k_base";
  }
  return "unknown";
}

Encoding encoding_for_model(std::string_view model) {
  std::string name(model.substr(model.rfind('/') + 1));  // "openai/gpt-4o" -> "gpt-4o"
  std::ranges::transform(name, name.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  });
  std::string_view m = name;
  if (m.starts_with("ft:")) m.remove_prefix(3);
  if (starts_with_any(m,
                      {"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"})) {
    return Encoding::kO200kBase;
  }
  if (starts_with_any(
          m, {"gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002"})) {
    return Encoding::kCl100kBase;
  }
  return Encoding::kO200kBase;
}

size_t count_tokens(std::string_view text, Encoding encoding) {
  const Encoder& enc = encoder(encoding);
  Scratch scratch;
  size_t count = 0;
  enc.for_each_piece(text, [&](std::string_view piece, uint32_t rank) {
    if (rank != kNoRank) {
      ++count;
      return;
    }
    merge(piece, enc.ranks(), scratch);
    count += scratch.starts.size();
  });
  return count;
}

std::vector<uint32_t> encode(std::string_view text, Encoding encoding) {
  const Encoder& enc = encoder(encoding);
  Scratch scratch;
  std::vector<uint32_t> tokens;
  enc.for_each_piece(text, [&](std::string_view piece, uint32_t rank) {
    if (rank != kNoRank) {
      tokens.push_back(rank);
      return;
    }
    merge(piece, enc.ranks(), scratch);
    for (size_t i = 0; i < scratch.starts.size(); ++i) {
      const size_t end = i + 1 < scratch.starts.size() ? scratch.starts[i + 1] : piece.size();
      tokens.push_back(enc.ranks().find(piece.substr(scratch.starts[i], end - scratch.starts[i])));
    }
  });
  return tokens;
}

}  // namespace agentwall::llm

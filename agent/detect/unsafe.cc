#include "agent/detect/unsafe.h"

#include <algorithm>
#include <array>
#include <bit>
#include <bitset>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <map>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#include "agent/common/ascii.h"
#include "agent/common/pcre2.h"

namespace agentwall::detect {
namespace {

using namespace ascii;

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

bool istarts_with(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i)
    if (lower(s[i]) != lower_prefix[i]) return false;
  return true;
}

size_t ifind(std::string_view s, std::string_view lower_needle, size_t from = 0) {
  if (lower_needle.size() > s.size()) return std::string_view::npos;
  for (size_t i = from; i + lower_needle.size() <= s.size(); ++i)
    if (istarts_with(s.substr(i), lower_needle)) return i;
  return std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// s.find(needle, from), looking no further than `limit` bytes past `from`: scanners that
// look ahead from each of many candidates stay linear.
size_t find_near(std::string_view s, std::string_view needle, size_t from, size_t limit) {
  return s.substr(0, std::min(s.size(), from + limit)).find(needle, from);
}

double entropy(std::string_view s) {
  if (s.empty()) return 0;
  std::array<uint32_t, 256> count{};
  for (char c : s) ++count[static_cast<uint8_t>(c)];
  double h = 0;
  const double n = double(s.size());
  for (uint32_t k : count)
    if (k) h -= (k / n) * std::log2(k / n);
  return h;
}

// Text that goes into an explanation: printable ASCII only, capped.
std::string printable(std::string_view s, size_t cap = 80) {
  std::string r;
  for (char c : s.substr(0, cap)) r += (c >= ' ' && c <= '~') ? c : '?';
  if (s.size() > cap) r += "\xE2\x80\xA6";
  return r;
}

// ---------------------------------------------------------------------------------------
// PCRE2: the rules are ours and compiled once per process; a rule that does not compile is
// a bug and throws on first use. Matching is byte-wise (no UTF mode), so invalid UTF-8 in
// the scanned text cannot make a match fail.

using pcre2::CodeFree;
using pcre2::MatchContextFree;
using pcre2::MatchDataFree;

// Shared by all rules and threads (PCRE2 only reads it). The limits bound the work of a
// rule on hostile input; a rule that hits them simply reports nothing for that text.
const pcre2_match_context* match_context() {
  static const std::unique_ptr<pcre2_match_context, MatchContextFree> ctx = [] {
    std::unique_ptr<pcre2_match_context, MatchContextFree> c(pcre2_match_context_create(nullptr));
    if (!c) throw std::bad_alloc();
    pcre2_set_match_limit(c.get(), 2'000'000);
    pcre2_set_depth_limit(c.get(), 20'000);
    return c;
  }();
  return ctx.get();
}

class Rx {
 public:
  Rx(const std::string& pattern, uint32_t options = 0) {
    int error = 0;
    PCRE2_SIZE at = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              options | PCRE2_MULTILINE, &error, &at, nullptr));
    if (!code_) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      throw std::logic_error("unsafe: rule does not compile at " + std::to_string(at) + ": " +
                             reinterpret_cast<const char*>(message.data()));
    }
    pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);
  }

  // Calls f(ovector, pairs) for each non-overlapping match in `s`. If f returns a position,
  // the search resumes there (past a block the caller has dealt with) instead of at the
  // match end.
  template <typename F>
  void each(std::string_view s, F&& f) const {
    std::unique_ptr<pcre2_match_data, MatchDataFree> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!md) throw std::bad_alloc();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t at = 0;
    while (at <= s.size()) {
      const int rc = pcre2_match(code_.get(), subject, s.size(), at, 0, md.get(),
                                 const_cast<pcre2_match_context*>(match_context()));
      if (rc <= 0) return;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      size_t next = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
      if constexpr (std::is_same_v<decltype(f(ov, rc)), void>) {
        f(ov, rc);
      } else {
        next = std::max(next, size_t(f(ov, rc)));
      }
      at = next;
    }
  }

  // The first match in `s`: true with its bounds in b, e.
  bool find(std::string_view s, size_t& b, size_t& e) const {
    bool found = false;
    std::unique_ptr<pcre2_match_data, MatchDataFree> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!md) throw std::bad_alloc();
    const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0,
                               md.get(), const_cast<pcre2_match_context*>(match_context()));
    if (rc > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      b = ov[0];
      e = ov[1];
      found = true;
    }
    return found;
  }

 private:
  std::unique_ptr<pcre2_code, CodeFree> code_;
};

// Whether capture group `g` took part in the match.
inline bool group_set(const PCRE2_SIZE* ov, int pairs, int g) {
  return g < pairs && ov[2 * g] != PCRE2_UNSET;
}

// ---------------------------------------------------------------------------------------
// Views: what the rules read. Either a piece of the scanned text, or the JSON string values
// in it decoded ("\"" → '"', "\n" → newline, "\u00e9" → é) and joined by blank lines, with
// each decoded byte's offset in the scanned text so that spans point at the original.

struct Segment {
  size_t begin, end;  // in the view
  std::string key;    // the object key the string is the value of ("" in arrays at top level)
};

std::vector<size_t> decoded_origin(std::string_view text);

struct View {
  std::string owned;
  std::string_view raw;  // for a decoded view: the text it was decoded from
  bool is_owned = false;
  size_t base = 0;  // identity mapping from here when not owned
  // text().size() + 1 entries for decoded views, made the first time a hit in the view
  // needs them: most views have none.
  mutable std::vector<size_t> origin;
  std::vector<Segment> segments;

  std::string_view text() const { return is_owned ? std::string_view(owned) : raw; }
  size_t map(size_t i) const {
    if (!is_owned) return base + i;
    if (origin.empty()) origin = decoded_origin(raw);
    return origin[i];
  }
};

View slice_view(std::string_view text, size_t b, size_t e) {
  View v;
  v.raw = text.substr(b, e - b);
  v.base = b;
  return v;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

bool hex4(std::string_view s, size_t at, uint32_t& v) {
  if (at + 4 > s.size()) return false;
  v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    if (!is_hex(c)) return false;
    v = v * 16 + uint32_t(is_digit(c) ? c - '0' : lower(c) - 'a' + 10);
  }
  return true;
}

// An object, or an array of strings or objects: "[link](url)" is markdown, not JSON.
bool looks_like_json(std::string_view s) {
  s = trim(s);
  if (s.size() < 2 || (s[0] != '{' && s[0] != '[') || s.find('"') == std::string_view::npos)
    return false;
  if (s[0] == '{') return true;
  if (s[0] != '[') return false;
  const std::string_view rest = trim(s.substr(1));
  return !rest.empty() && (rest[0] == '{' || rest[0] == '[' || (rest[0] == '"' && s.back() == ']'));
}

// The first '"' or '\\' in s at or after `from`, or s.size(). Eight bytes at a time: in
// v ^ c a byte is 0 where v has c, and (x - 0x01…) & ~x & 0x80… flags the lowest zero byte
// of x exactly (flags above it can be false, but only the lowest is used).
size_t find_quote_or_backslash(std::string_view s, size_t from) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  size_t r = from;
  for (; r + 8 <= s.size(); r += 8) {
    uint64_t v;
    std::memcpy(&v, s.data() + r, 8);
    const uint64_t q = v ^ (kOnes * '"'), b = v ^ (kOnes * '\\');
    const uint64_t hit = (((q - kOnes) & ~q) | ((b - kOnes) & ~b)) & kHighs;
    if (hit) {
      if constexpr (std::endian::native == std::endian::little)
        return r + size_t(std::countr_zero(hit)) / 8;
      break;  // big-endian: find it bytewise
    }
  }
  while (r < s.size() && s[r] != '"' && s[r] != '\\') ++r;
  return r;
}

// Lenient: truncated or malformed JSON still yields its strings. Strings that hold JSON
// themselves (OpenAI's "arguments": "{\"command\": …}") are decoded once more.
class JsonStrings {
 public:
  // With `track`, dst.origin gets each decoded byte's offset in the scanned text; the text
  // and segments are the same either way.
  JsonStrings(View& dst, bool track) : dst_(dst), track_(track) {}

  // `outer[i]`: offset in the scanned text of byte i of `s` (identity when null).
  size_t walk(std::string_view s, const std::vector<size_t>* outer, int depth) {
    auto where = [outer](size_t i) { return outer ? (*outer)[i] : i; };
    // One value being decoded per depth, in buffers kept from value to value.
    std::string& val = val_[size_t(depth)];
    std::vector<size_t>& org = org_[size_t(depth)];
    size_t added = 0;
    std::string key;
    const size_t n = s.size();
    for (size_t i = 0; i < n; ++i) {
      const void* quote = std::memchr(s.data() + i, '"', n - i);
      if (!quote) break;
      i = size_t(static_cast<const char*>(quote) - s.data());
      val.clear();
      org.clear();
      size_t j = i + 1;
      while (j < n && s[j] != '"') {
        // A run of bytes that stand for themselves, copied at once.
        const size_t r = find_quote_or_backslash(s, j);
        if (r > j) {
          val.append(s.data() + j, r - j);
          if (track_ && outer) {
            org.insert(org.end(), outer->begin() + ptrdiff_t(j), outer->begin() + ptrdiff_t(r));
          } else if (track_) {
            const size_t o = org.size();
            org.resize(o + (r - j));
            std::iota(org.begin() + ptrdiff_t(o), org.end(), j);
          }
          j = r;
          continue;
        }
        const size_t at = j;
        if (j + 1 >= n) {  // a backslash that ends the text stands for itself
          val += s[j++];
          if (track_) org.push_back(where(at));
          continue;
        }
        const size_t before = val.size();
        const char c = s[j + 1];
        j += 2;
        uint32_t cp = 0;
        switch (c) {
          case 'n':
            val += '\n';
            break;
          case 't':
            val += '\t';
            break;
          case 'r':
            val += '\r';
            break;
          case 'b':
            val += '\b';
            break;
          case 'f':
            val += '\f';
            break;
          case 'u':
            if (!hex4(s, j, cp)) {
              val += "\\u";
              break;
            }
            j += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
              uint32_t lo = 0;
              if (j + 1 < s.size() && s[j] == '\\' && s[j + 1] == 'u' && hex4(s, j + 2, lo) &&
                  lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                j += 6;
              }
            }
            append_utf8(cp, val);
            break;
          default:  // \" \\ \/ and anything unknown stand for themselves
            val += c;
        }
        if (track_)
          for (size_t k = before; k < val.size(); ++k) org.push_back(where(at));
      }
      if (track_) org.push_back(where(j));
      size_t k = j + 1;
      while (k < s.size() && is_space(s[k])) ++k;
      i = j;
      if (k < s.size() && s[k] == ':') {
        key.assign(val);
        continue;
      }
      if (depth < 3 && looks_like_json(val)) {
        const size_t inner = walk(val, &org, depth + 1);
        if (inner) {
          added += inner;
          continue;
        }
      }
      if (val.empty()) continue;
      add(val, org, key);
      ++added;
    }
    return added;
  }

  void finish() {
    if (track_) dst_.origin.push_back(last_end_);
    dst_.is_owned = true;
  }

 private:
  void add(const std::string& val, const std::vector<size_t>& org, const std::string& key) {
    std::string& t = dst_.owned;
    if (!t.empty()) {
      t += "\n\n";
      if (track_) {
        dst_.origin.push_back(last_end_);
        dst_.origin.push_back(last_end_);
      }
    }
    dst_.segments.push_back({t.size(), t.size() + val.size(), key});
    t += val;
    if (track_) {
      dst_.origin.insert(dst_.origin.end(), org.begin(), org.end() - 1);
      last_end_ = org.back();
    }
  }

  View& dst_;
  const bool track_;
  size_t last_end_ = 0;
  std::string val_[4];  // by depth: walk() recurses to depth 3 at most
  std::vector<size_t> org_[4];
};

View decoded_view(std::string_view text) {
  View v;
  v.raw = text;
  v.owned.reserve(text.size() + 2);  // about what it decodes to
  JsonStrings js(v, false);
  js.walk(text, nullptr, 0);
  js.finish();
  return v;
}

// The offsets that go with decoded_view(text).
std::vector<size_t> decoded_origin(std::string_view text) {
  View v;
  v.owned.reserve(text.size() + 2);
  v.origin.reserve(text.size() + 3);
  JsonStrings js(v, true);
  js.walk(text, nullptr, 0);
  js.finish();
  return std::move(v.origin);
}

// Fenced code blocks (``` or ~~~) and inline `code` spans of markdown, as [begin, end) of
// their contents. An unclosed fence runs to the end (streamed output stops mid-block).
std::vector<std::pair<size_t, size_t>> code_regions(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> r;
  const size_t n = s.size();
  size_t line = 0;
  size_t prose_from = 0;
  // A run of backticks pairs with the next run of the same length in the same paragraph,
  // found for all runs in one backward pass.
  size_t blank = 0;  // the next blank line at or after a position asked about; only grows
  auto inline_code = [&](size_t b, size_t e) {
    struct Run {
      size_t pos, len;
    };
    std::vector<Run> runs;
    for (size_t i = b; i < e;) {
      const void* tick = std::memchr(s.data() + i, '`', e - i);
      if (!tick) break;
      i = size_t(static_cast<const char*>(tick) - s.data());
      size_t j = i;
      while (j < e && s[j] == '`') ++j;
      runs.push_back({i, j - i});
      i = j;
    }
    std::vector<size_t> next(runs.size(), SIZE_MAX);
    std::map<size_t, size_t> last;  // run length → index of its next occurrence
    for (size_t k = runs.size(); k-- > 0;) {
      const auto it = last.find(runs[k].len);
      if (it != last.end()) next[k] = it->second;
      last[runs[k].len] = k;
    }
    for (size_t k = 0; k < runs.size();) {
      const size_t from = runs[k].pos + runs[k].len;
      if (next[k] != SIZE_MAX) {
        const size_t to = runs[next[k]].pos;
        if (blank < from) blank = std::min(s.find("\n\n", from), n);
        if (to <= blank && to - from <= 4096) {
          r.emplace_back(from, to);
          k = next[k] + 1;
          continue;
        }
      }
      ++k;
    }
  };
  while (line < n) {
    size_t eol = s.find('\n', line);
    if (eol == std::string_view::npos) eol = n;
    size_t p = line;
    while (p < eol && p - line < 3 && s[p] == ' ') ++p;
    const char fc = p < eol ? s[p] : 0;
    size_t q = p;
    while (q < eol && s[q] == fc) ++q;
    if ((fc == '`' || fc == '~') && q - p >= 3) {
      const std::string_view fence = s.substr(p, q - p);
      inline_code(prose_from, line);
      const size_t body = std::min(eol + 1, n);
      size_t close_line = body, end = n, next = n;
      while (close_line < n) {
        size_t ce = s.find('\n', close_line);
        if (ce == std::string_view::npos) ce = n;
        // A closing fence is only fence bytes once trimmed: most lines fail at the first.
        size_t first = close_line;
        while (first < ce && is_space(s[first])) ++first;
        if (first == ce || s[first] != fc) {
          close_line = ce + 1;
          continue;
        }
        const std::string_view l = trim(s.substr(close_line, ce - close_line));
        if (l.size() >= fence.size() && l.find_first_not_of(fc) == std::string_view::npos) {
          end = close_line;
          next = std::min(ce + 1, n);
          break;
        }
        close_line = ce + 1;
      }
      if (end > body) r.emplace_back(body, end);
      line = prose_from = next;
      continue;
    }
    line = eol + 1;
  }
  if (prose_from < n) inline_code(prose_from, n);
  std::sort(r.begin(), r.end());
  return r;
}

// ---------------------------------------------------------------------------------------
// Findings before they are mapped back and deduplicated.

struct Hit {
  const char* detector;
  std::string kind;  // two hits of one detector overlap only if they are the same kind
  Span span;
  Span extra;  // a second span (a reference image's definition), empty if none
  double confidence;
  std::string explanation;
};

// ---------------------------------------------------------------------------------------
// Markdown and HTML exfiltration.

struct Url {
  std::string host;
  std::string_view path, query, fragment;
};

// http(s)://… and protocol-relative //…; anything else does not leave the page.
bool parse_url(std::string_view u, Url& out) {
  while (!u.empty() && (is_space(u.front()) || u.front() == '"' || u.front() == '\''))
    u.remove_prefix(1);
  size_t p;
  if (istarts_with(u, "https://"))
    p = 8;
  else if (istarts_with(u, "http://"))
    p = 7;
  else if (u.starts_with("//"))
    p = 2;
  else
    return false;
  // Browsers treat '\' like '/' in http(s) URLs, so it ends the authority too.
  size_t ae = p;
  while (ae < u.size() && !std::strchr("/?#\\", u[ae])) ++ae;
  std::string_view auth = u.substr(p, ae - p);
  const size_t at = auth.rfind('@');
  if (at != std::string_view::npos) auth.remove_prefix(at + 1);
  std::string_view host = auth;
  if (!host.empty() && host[0] == '[') {
    const size_t rb = host.find(']');
    host = host.substr(0, rb == std::string_view::npos ? host.size() : rb + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;
  out.host = to_lower(host);
  std::string_view rest = u.substr(ae);
  const size_t hash = rest.find('#');
  out.fragment = hash == std::string_view::npos ? std::string_view() : rest.substr(hash + 1);
  rest = rest.substr(0, hash);
  const size_t q = rest.find('?');
  out.query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  out.path = rest.substr(0, q);
  return true;
}

std::string normalize_host(std::string_view h) {
  h = trim(h);
  const size_t scheme = h.find("://");
  if (scheme != std::string_view::npos) h.remove_prefix(scheme + 3);
  if (h.starts_with("*.")) h.remove_prefix(2);
  while (!h.empty() && h.front() == '.') h.remove_prefix(1);
  h = h.substr(0, h.find_first_of("/?#"));
  const size_t at = h.rfind('@');
  if (at != std::string_view::npos) h.remove_prefix(at + 1);
  if (!h.starts_with("[")) h = h.substr(0, h.find(':'));
  while (!h.empty() && h.back() == '.') h.remove_suffix(1);
  return to_lower(h);
}

// "{conversation}", "{{ data }}", "$SECRET", "<DATA>", "[USER_EMAIL]", "INSERT_…": a URL
// written as a template for a model to fill in, which is how injected instructions ask for
// exfiltration. The name inside must look like a name: JSON in a chart URL is not one.
bool placeholder(std::string_view v) {
  if (v.empty()) return false;
  auto named = [](std::string_view inner) {
    inner = trim(inner);
    return !inner.empty() && inner.size() <= 64 &&
           std::all_of(inner.begin(), inner.end(), [](char c) {
             return is_alnum(c) || c == '_' || c == ' ' || c == '-' || c == '.';
           });
  };
  auto enclosed = [&](std::string_view open, std::string_view close) {
    if (!istarts_with(v, open)) return false;
    const size_t e = ifind(v, close, open.size());
    return e != std::string_view::npos && named(v.substr(open.size(), e - open.size()));
  };
  if (enclosed("{{", "}}") || enclosed("{", "}") || enclosed("%7b%7b", "%7d%7d") ||
      enclosed("%7b", "%7d") || enclosed("<", ">") || enclosed("%3c", "%3e") ||
      enclosed("[", "]") || enclosed("%5b", "%5d") || enclosed("${", "}"))
    return true;
  if (v[0] == '$') return v.size() > 1 && (is_upper(v[1]) || v[1] == '_');
  for (std::string_view m : {"INSERT", "PLACEHOLDER", "_HERE", "YOUR_", "REPLACE_"})
    if (v.find(m) != std::string_view::npos) return true;
  return false;
}

// Base64 or hex: data, not a word, slug or id a person wrote.
bool opaque(std::string_view v) {
  if (v.size() >= 32 && std::all_of(v.begin(), v.end(), is_hex) &&
      std::any_of(v.begin(), v.end(), is_digit) && std::any_of(v.begin(), v.end(), is_alpha))
    return true;
  if (v.size() < 20) return false;
  size_t digit = 0, up = 0, low = 0, sep = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '%' && i + 2 < v.size() && is_hex(v[i + 1]) && is_hex(v[i + 2])) {
      i += 2;  // %2B %2F %3D: URL-escaped base64
      continue;
    }
    if (is_digit(c))
      ++digit;
    else if (is_upper(c))
      ++up;
    else if (is_lower(c))
      ++low;
    else if (c == '_' || c == '-')
      ++sep;
    else if (c != '+' && c != '/' && c != '=')
      return false;
  }
  // Slugs ("List_of_countries_2024") separate words every few letters and have long runs
  // of lower-case letters; random base64 has neither.
  size_t run = 0, longest = 0;
  for (char c : v) {
    run = is_lower(c) ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return digit && up && low && sep <= v.size() / 16 + 1 && longest < 8 && entropy(v) >= 3.5;
}

// URL-encoded prose: "John%20Smith%2C%20…", "the+user+said+…".
size_t encoded_words(std::string_view v) {
  size_t n = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '+') ++n;
    if (v[i] == '%' && i + 2 < v.size() && is_hex(v[i + 1]) && is_hex(v[i + 2])) ++n;
  }
  return n;
}

struct DataSigns {
  bool placeholder = false;
  bool opaque = false;     // base64/hex-looking value, path segment or subdomain
  bool text = false;       // URL-encoded words
  bool long_data = false;  // lots of it
  bool some = false;       // any query value or a very long path segment
};

void value_signs(std::string_view v, DataSigns& d) {
  if (v.empty()) return;
  d.some = true;
  d.placeholder |= placeholder(v);
  d.opaque |= opaque(v);
  const size_t words = encoded_words(v);
  d.text |= v.size() >= 16 && words >= 2;
  d.long_data |= v.size() >= 100 || (v.size() >= 64 && words >= 2);
}

void query_signs(std::string_view q, DataSigns& d) {
  if (q.size() >= 100) d.long_data = true;
  size_t i = 0;
  while (i <= q.size()) {
    size_t amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view part = q.substr(i, amp - i);
    const size_t eq = part.find('=');
    value_signs(eq == std::string_view::npos ? part : part.substr(eq + 1), d);
    // A template in the parameter name position ("?{data}") counts as well.
    if (eq != std::string_view::npos) d.placeholder |= placeholder(part.substr(0, eq));
    i = amp + 1;
  }
}

DataSigns url_signs(const Url& u, bool with_fragment) {
  DataSigns d;
  query_signs(u.query, d);
  if (with_fragment) query_signs(u.fragment, d);
  size_t i = 0;
  while (i < u.path.size()) {
    size_t slash = u.path.find('/', i);
    if (slash == std::string_view::npos) slash = u.path.size();
    std::string_view seg = u.path.substr(i, slash - i);
    const size_t dot = seg.rfind('.');
    if (dot != std::string_view::npos && seg.size() - dot <= 5) seg = seg.substr(0, dot);
    d.placeholder |= placeholder(seg);
    d.opaque |= opaque(seg);
    d.text |= seg.size() >= 16 && encoded_words(seg) >= 2;
    d.some |= seg.size() >= 48;
    i = slash + 1;
  }
  // DNS exfiltration: data as the leftmost label of a host with at least three labels.
  const size_t dot = u.host.find('.');
  if (dot != std::string::npos && u.host.find('.', dot + 1) != std::string::npos) {
    const std::string_view label = std::string_view(u.host).substr(0, dot);
    const auto digits = std::count_if(label.begin(), label.end(), is_digit);
    const auto letters = std::count_if(label.begin(), label.end(), is_alpha);
    if (label.size() >= 24 && digits >= 4 && letters >= 4 && entropy(label) >= 3.5) d.opaque = true;
  }
  return d;
}

// ---------------------------------------------------------------------------------------
// Shell rules.

enum class Shell : uint8_t {
  kDownloadExec,
  kBase64Exec,
  kDelete,
  kDisk,
  kForkBomb,
  kCredRead,
  kCredUpload,
  kEnvNet,
  kEnvProc,
  kEnvDump,
  kReverseShell,
  kChmod,
  kHistory,
  kCron,
  kAuthorizedKeys,
  kSudoers,
};

const char* shell_kind(Shell k) {
  switch (k) {
    case Shell::kDownloadExec:
      return "download_exec";
    case Shell::kBase64Exec:
      return "base64_exec";
    case Shell::kDelete:
      return "delete";
    case Shell::kDisk:
      return "disk";
    case Shell::kForkBomb:
      return "fork_bomb";
    case Shell::kCredRead:
    case Shell::kCredUpload:
      return "credentials";
    case Shell::kEnvNet:
    case Shell::kEnvProc:
    case Shell::kEnvDump:
      return "environment";
    case Shell::kReverseShell:
      return "reverse_shell";
    case Shell::kChmod:
      return "chmod";
    case Shell::kHistory:
      return "history";
    case Shell::kCron:
      return "cron";
    case Shell::kAuthorizedKeys:
      return "authorized_keys";
    case Shell::kSudoers:
      return "sudoers";
  }
  return "shell";
}

// Literals a rule cannot match without: every group needs one of its strings in the text.
// Most text has none, so most rules never run, and hostile text costs only the rules whose
// words it repeats.
using Needs = std::vector<std::vector<std::string_view>>;

bool has_needs(std::string_view s, const Needs& needs) {
  return std::all_of(needs.begin(), needs.end(), [&](const std::vector<std::string_view>& any) {
    return std::any_of(any.begin(), any.end(),
                       [&](std::string_view w) { return s.find(w) != std::string_view::npos; });
  });
}

const Needs& cred_needs() {
  static const Needs n = {{".ssh", ".aws", "netrc", ".git-credentials", ".docker", "shadow",
                           ".kube", "gcloud", ".azure", "gh/hosts", ".npmrc", ".pypirc", ".pgpass",
                           "serviceaccount", "mcp.json", "claude_desktop", ".env"}};
  return n;
}

// ---------------------------------------------------------------------------------------
// Which of a fixed set of literals occur in a text, all found in one pass. A literal may be
// caseless (ASCII, as PCRE2 folds) and may carry a check of its surroundings; without one,
// it is found exactly when s.find(literal) != npos. Each literal of two bytes or more is
// looked for only where its rarest pair of adjacent bytes occurs, told by one bitmap
// lookup per byte of text; a one-byte literal is found from the set of bytes the text has
// (and, if it has a check, at each of its occurrences).

// Whether the literal at [b, e) of `s` counts.
using Verify = bool (*)(std::string_view s, size_t b, size_t e);

struct LiteralSpec {
  std::string_view text;  // lower case if caseless
  bool caseless = false;
  Verify verify = nullptr;
};

class Literals {
 public:
  static constexpr size_t kMax = 128;
  using Set = std::bitset<kMax>;

  // The index of `lit`, added if new. Only before finish().
  size_t add(const LiteralSpec& lit) {
    for (size_t i = 0; i < lits_.size(); ++i)
      if (lits_[i].text == lit.text && lits_[i].caseless == lit.caseless &&
          lits_[i].verify == lit.verify)
        return i;
    if (lits_.size() == kMax || lit.text.empty() || lit.text.size() > 255 ||
        (lit.caseless && std::any_of(lit.text.begin(), lit.text.end(), is_upper)))
      throw std::logic_error("unsafe: literal set full or literal unusable");
    lits_.push_back({std::string(lit.text), lit.caseless, lit.verify});
    return lits_.size() - 1;
  }

  void finish() {
    std::vector<std::vector<Probe>> by_slot;
    for (size_t i = 0; i < lits_.size(); ++i) {
      Lit& l = lits_[i];
      // The first eight bytes as one word: bytes past the end masked off, and letters of
      // a caseless literal folded (| 0x20 turns 'A'…'Z' into 'a'…'z' and nothing else
      // into a letter).
      std::array<uint8_t, 8> head{}, mask{}, fold{};
      for (size_t k = 0; k < std::min<size_t>(8, l.text.size()); ++k) {
        head[k] = uint8_t(l.text[k]);
        mask[k] = 0xff;
        if (l.caseless && is_lower(l.text[k])) fold[k] = 0x20;
      }
      std::memcpy(&l.head, head.data(), 8);
      std::memcpy(&l.mask, mask.data(), 8);
      std::memcpy(&l.fold, fold.data(), 8);
      if (l.text.size() == 1) {
        singles_.push_back(i);
        continue;
      }
      size_t at = 0;
      for (size_t k = 1; k + 1 < l.text.size(); ++k)
        if (pair_commonness(l, k) < pair_commonness(l, at)) at = k;
      for (char a : spellings(l, l.text[at]))
        for (char b : spellings(l, l.text[at + 1])) {
          const uint16_t pair = uint16_t(uint8_t(a) | uint8_t(b) << 8);
          bits_[pair >> 6] |= uint64_t(1) << (pair & 63);
          if (!slot_[pair]) {
            by_slot.emplace_back();
            if (by_slot.size() > 255) throw std::logic_error("unsafe: too many literal pairs");
            slot_[pair] = uint8_t(by_slot.size());
          }
          by_slot[slot_[pair] - 1].push_back({uint8_t(i), uint8_t(at)});
        }
    }
    ranges_.push_back({0, 0});  // slot 0: no pair
    for (const auto& probes : by_slot) {
      ranges_.push_back({uint16_t(probes_.size()), uint16_t(probes.size())});
      probes_.insert(probes_.end(), probes.begin(), probes.end());
    }
  }

  Set scan(std::string_view s) const {
    Set found;
    const size_t n = s.size();
    const auto* u = reinterpret_cast<const uint8_t*>(s.data());
    const uint64_t* bits = bits_.data();
    for (size_t i = 0; i + 1 < n; ++i) {
      const unsigned pair = u[i] | unsigned(u[i + 1]) << 8;
      if (!((bits[pair >> 6] >> (pair & 63)) & 1)) continue;
      const Range r = ranges_[slot_[pair]];
      for (size_t k = r.begin; k < r.begin + r.count; ++k) {
        const Probe p = probes_[k];
        if (!found[p.index] && i >= p.offset && matches(lits_[p.index], s, i - p.offset))
          found.set(p.index);
      }
    }
    if (singles_.empty()) return found;
    std::array<bool, 256> seen{};  // the bytes of s, for one-byte literals
    for (size_t i = 0; i < n; ++i) seen[u[i]] = true;
    for (const size_t i : singles_) {
      const Lit& l = lits_[i];
      if (!seen[uint8_t(l.text[0])]) continue;
      if (!l.verify) {
        found.set(i);
        continue;
      }
      for (size_t p = 0; p < n; ++p) {
        const void* at = std::memchr(s.data() + p, l.text[0], n - p);
        if (!at) break;
        p = size_t(static_cast<const char*>(at) - s.data());
        if (l.verify(s, p, p + 1)) {
          found.set(i);
          break;
        }
      }
    }
    return found;
  }

 private:
  struct Lit {
    std::string text;
    bool caseless;
    Verify verify;
    uint64_t head = 0, mask = 0, fold = 0;  // see finish()
  };
  struct Probe {
    uint8_t index, offset;
  };
  struct Range {
    uint16_t begin, count;
  };

  // Whether `l` is at b in s, with what is around it.
  static bool matches(const Lit& l, std::string_view s, size_t b) {
    const size_t len = l.text.size();
    if (b + len > s.size()) return false;
    if (b + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + b, 8);
      if (((w | l.fold) & l.mask) != l.head) return false;
      if (len > 8 && !(l.caseless ? istarts_with(s.substr(b + 8, len - 8), l.text.substr(8))
                                  : s.substr(b + 8, len - 8) == l.text.substr(8)))
        return false;
    } else {
      const std::string_view at = s.substr(b, len);
      if (!(l.caseless ? istarts_with(at, l.text) : at == l.text)) return false;
    }
    return !l.verify || l.verify(s, b, b + len);
  }

  // The bytes that `c` of `l` matches.
  static std::vector<char> spellings(const Lit& l, char c) {
    if (l.caseless && is_lower(c)) return {c, char(c - 'a' + 'A')};
    return {c};
  }

  // Roughly how often a byte occurs in prose, code and JSON, in tenths of a percent.
  static int commonness(char c) {
    static constexpr std::string_view kLetters = "etaoinshrdlcumwfgypbvkjxqz";
    static constexpr int kLetterFreq[] = {120, 90, 80, 75, 70, 67, 63, 60, 60, 43, 40, 28, 28,
                                          24,  24, 22, 20, 20, 19, 15, 10, 8,  2,  2,  1,  1};
    if (is_lower(c)) return kLetterFreq[kLetters.find(c)];
    if (is_upper(c)) return kLetterFreq[kLetters.find(lower(c))] / 10 + 1;
    if (c == ' ') return 150;
    if (is_digit(c)) return 5;
    switch (c) {
      case '\n':
      case '.':
      case ',':
      case '"':
        return 12;
      case '-':
      case '/':
      case '_':
      case ':':
      case '(':
      case ')':
      case '=':
        return 6;
      default:
        return 3;
    }
  }

  static int pair_commonness(const Lit& l, size_t k) {
    auto c = [&](char x) {
      int f = commonness(x);
      if (l.caseless && is_lower(x)) f += commonness(char(x - 'a' + 'A'));
      return f;
    };
    return c(l.text[k]) * c(l.text[k + 1]);
  }

  std::vector<Lit> lits_;
  std::vector<size_t> singles_;  // one-byte literals
  // On the heap (72 KiB), not on the stack of whoever builds a set first.
  std::vector<uint64_t> bits_ = std::vector<uint64_t>(1024);  // pairs some literal is probed at
  std::vector<uint8_t> slot_ = std::vector<uint8_t>(65536);   // a pair's index into ranges_
  std::vector<Range> ranges_;                                 // of probes_, by slot (0: none)
  std::vector<Probe> probes_;
};

// Needs as sets of literal indexes: each group holds if the text has any of its literals.
using NeedMasks = std::vector<Literals::Set>;

NeedMasks need_masks(Literals& lits, const Needs& needs) {
  NeedMasks m;
  for (const auto& group : needs) {
    Literals::Set g;
    for (std::string_view w : group) g.set(lits.add({w}));
    m.push_back(g);
  }
  return m;
}

// has_needs() told from the literals a text has.
bool has_needs(const Literals::Set& found, const NeedMasks& needs) {
  return std::all_of(needs.begin(), needs.end(),
                     [&](const Literals::Set& g) { return (found & g).any(); });
}

// ---------------------------------------------------------------------------------------
// Gates: literals with checks around them that a shell rule cannot match without, beyond
// its needs, for rules whose needs ordinary text often has ("set", "env", "rm", "/dev/").
// Each follows from the rule's pattern; a rule whose gate fails is not run, which changes
// nothing, as it would have matched nothing.

bool is_word(char c) {
  return is_alnum(c) || c == '_';
}

size_t skip_space(std::string_view s, size_t p) {
  while (p < s.size() && is_space(s[p])) ++p;
  return p;
}

// kW: not after a word byte or '-'.
bool word_start(std::string_view s, size_t b, size_t) {
  return b == 0 || !(is_word(s[b - 1]) || s[b - 1] == '-');
}

// Where kCmdStart lets a command word start: at the start, or after a byte of "^", of its
// lookbehinds ([;&|(`"'{] and "$(") or of the whitespace of "\s*" or of "sudo …".
bool command_start(std::string_view s, size_t b) {
  if (b == 0) return true;
  const char c = s[b - 1];
  return is_space(c) || std::string_view(";&|(`\"'{").find(c) != std::string_view::npos;
}

// A command word (kCmdStart) followed by "\s*" then '|' or '>'.
bool command_piped(std::string_view s, size_t b, size_t e) {
  e = skip_space(s, e);
  return command_start(s, b) && e < s.size() && (s[e] == '|' || s[e] == '>');
}

// A command word (kCmdStart) followed by "\s*\|".
bool command_pipe(std::string_view s, size_t b, size_t e) {
  e = skip_space(s, e);
  return command_start(s, b) && e < s.size() && s[e] == '|';
}

// A command word (kCmdStart) followed by (?=\s*(?:$|[|>;&)`"'])).
bool command_ends(std::string_view s, size_t b, size_t e) {
  return command_start(s, b) &&
         (e == s.size() || is_space(s[e]) ||
          std::string_view("|>;&)`\"'").find(s[e]) != std::string_view::npos);
}

// A command word (kCmdStart) followed by "\s+" and the flag `f`.
template <char F>
bool command_flag(std::string_view s, size_t b, size_t e) {
  const size_t f = skip_space(s, e);
  return command_start(s, b) && f > e && f + 1 < s.size() && s[f] == '-' && s[f + 1] == F;
}

// kW rm(?=(?:\s+-\S+)*\s+…): "rm" as a word, then a space.
bool rm_word(std::string_view s, size_t b, size_t e) {
  return word_start(s, b, e) && e < s.size() && is_space(s[e]);
}

// "$(" or '`', "\s*", then env, printenv or (after "$(" only) set or export.
bool substitutes_env(std::string_view s, size_t b, size_t e) {
  const std::string_view rest = s.substr(skip_space(s, e));
  if (rest.starts_with("env") || rest.starts_with("printenv")) return true;
  return s[b] == '$' && (rest.starts_with("set") || rest.starts_with("export"));
}

// Each gate: one of these literals.
using GateSpec = std::vector<LiteralSpec>;

// Both branches of the PowerShell rule name iex or Invoke-Expression (caseless).
const GateSpec kIexGate = {{"iex", true}, {"invoke-expression", true}};
const GateSpec kRmGate = {{"rm", false, rm_word}};
// dd, shred, wipefs and '>' name /dev/(sd|hd|vd|xvd|nvme|mmcblk|disk); mkfs names itself.
const GateSpec kDiskGate = {{"/dev/sd"},   {"/dev/hd"},     {"/dev/vd"},   {"/dev/xvd"},
                            {"/dev/nvme"}, {"/dev/mmcblk"}, {"/dev/disk"}, {"mkfs"}};
// kCmdStart (env|printenv|export\s+-p|declare\s+-x|set|compgen\s+-v)\s*(?:\||>…)
const GateSpec kEnvPipedGate = {
    {"env", false, command_piped},         {"printenv", false, command_piped},
    {"set", false, command_piped},         {"export", false, command_flag<'p'>},
    {"declare", false, command_flag<'x'>}, {"compgen", false, command_flag<'v'>}};
// kNet … (\$\(\s*(env|printenv|set|export…)|`\s*(env|printenv)|…/environ)
const GateSpec kEnvSubstGate = {
    {"$(", false, substitutes_env}, {"`", false, substitutes_env}, {"environ"}};
// kCmdStart (env|printenv|export\s+-p|declare\s+-xp?|compgen\s+-v)(?=\s*(?:$|[|>;&)`"']))
const GateSpec kEnvDumpGate = {{"env", false, command_ends},
                               {"printenv", false, command_ends},
                               {"export", false, command_flag<'p'>},
                               {"declare", false, command_flag<'x'>},
                               {"compgen", false, command_flag<'v'>}};
const GateSpec kSetPipeGate = {{"set", false, command_pipe}};  // kCmdStart set\s*\|
// kW (nc|ncat|netcat|nc\.traditional|nc\.openbsd)
const GateSpec kNcGate = {{"nc", false, word_start}, {"netcat", false, word_start}};

struct ShellRule {
  Shell kind;
  double confidence;
  Needs needs;
  Rx rx;
  NeedMasks need_masks = {};  // `needs`, then the rule's gate if it has one
};

// A command word: not the tail of a longer word or option ("xcurl", "--curl").
const std::string kW = R"((?<![\w-]))";
const std::string kSudo = R"((?:sudo\s+(?:-\S+\s+)*)?)";
// An interpreter reading its program from stdin. "python -c …", "perl -pe …", "sh -c …" get
// their program from the command line instead, so a pipe into them runs nothing downloaded.
const std::string kInterp =
    "(?:" + kSudo + R"re((?:env\s+(?:-\S+\s+)*(?:\w+=\S*\s+)*)?)re" +
    R"re((?:(?:/usr/local/bin/|/usr/bin/|/bin/)?(?:ba|z|k|da|a|fi)?sh(?![\w.-])(?!\s+-c\b))re" +
    R"re(|(?:/usr/local/bin/|/usr/bin/)?(?:python[\d.]*|perl|ruby|node|php)(?![\w.-]))re" +
    R"re((?!\s+-\w*[cemnprEW]))))re";
// Where a command starts: line start, after a separator, a quote, "$(" or "sudo".
const std::string kCmdStart = R"re((?:^|(?<=[;&|(`"'{])|(?<=\$\())\s*)re" + kSudo;
const std::string kNet = R"re((?:curl|wget|nc|ncat|netcat|socat|telnet|ssh|scp|openssl|iwr|irm)re"
                         R"re(|Invoke-WebRequest|Invoke-RestMethod)(?![\w-]))re";
// Credential files, by the part of the path that identifies them.
const std::string kCred = R"re((?:)re"
                          R"re(\.ssh/(?:id_[\w-]+|[\w-]+\.pem)(?![\w.-]))re"
                          R"re(|\.ssh/?(?=$|[\s"'`;|&)]))re"
                          R"re(|\.aws/credentials(?![\w.-]))re"
                          R"re(|[._]netrc(?![\w.-]))re"
                          R"re(|\.git-credentials(?![\w.-]))re"
                          R"re(|\.docker/config\.json(?![\w.-]))re"
                          R"re(|/etc/g?shadow(?![\w.-]))re"
                          R"re(|\.kube/config(?![\w.-]))re"
                          R"re(|\.config/gcloud/(?:credentials\.db|access_tokens\.db)re"
                          R"re(|application_default_credentials\.json|legacy_credentials))re"
                          R"re(|\.azure/(?:accessTokens\.json|msal_token_cache\.\w+))re"
                          R"re(|\.config/gh/hosts\.yml)re"
                          R"re(|\.(?:npmrc|pypirc|pgpass)(?![\w.-]))re"
                          R"re(|/run/secrets/kubernetes\.io/serviceaccount/token)re"
                          R"re(|\.cursor/mcp\.json|claude_desktop_config\.json)re"
                          R"re(|(?<![\w.-])\.env(?:\.(?!(?:example|sample|template|dist)re"
                          R"re(|defaults?)\b)[\w-]+)?(?![\w./-]))re"
                          R"re())re";
const std::string kReadCmd =
    R"re((?:cat|less|more|head|tail|tac|nl|strings|xxd|od|hexdump|base64|cp|scp|rsync)re"
    R"re(|mv|tar|zip|7z|gzip|bzip2|openssl|gpg|curl|wget|nc|ncat|netcat|socat|sed|awk)re"
    R"re(|grep|egrep|fgrep|rg|jq|yq|type|Get-Content|gc|dd|sftp|rclone|python[\d.]*)re"
    R"re(|node|perl|ruby)(?![\w-]))re";

// Gaps inside a command are bounded ({0,1000}, {0,300}) so that a hostile one-line text
// full of "curl" costs linear time, not quadratic.
struct ShellRules {
  std::vector<ShellRule> rules;
  Literals literals;  // of every rule's needs and of cred_needs()
  NeedMasks cred;     // cred_needs()
};

const ShellRules& shell_rules() {
  static const ShellRules rules = [] {
    ShellRules set;
    std::vector<ShellRule>& r = set.rules;
    auto add = [&](Shell k, double conf, Needs needs, const std::string& p, uint32_t opt = 0) {
      r.push_back({k, conf, std::move(needs), Rx(p, opt)});
      r.back().need_masks = need_masks(set.literals, r.back().needs);
    };
    // The last rule added also needs one of the literals of `gate`.
    auto also = [&](const GateSpec& gate) {
      Literals::Set g;
      for (const LiteralSpec& l : gate) g.set(set.literals.add(l));
      r.back().need_masks.push_back(g);
    };
    const std::vector<std::string_view> dl = {"curl", "wget"};
    const std::vector<std::string_view>& cred = cred_needs()[0];
    const std::vector<std::string_view> dump = {"env", "export", "declare", "compgen"};
    // curl … | sh, with any filters in between.
    add(Shell::kDownloadExec, 0.9, {dl, {"|"}},
        kW +
            R"re((?:curl|wget)(?![\w-])[^\n;|]{0,1000})re"
            R"re((?:\|(?!\|)[^\n;|]{0,1000}){0,8}?\|\s*)re" +
            kInterp);
    // Download to a file, then run it.
    add(Shell::kDownloadExec, 0.8, {dl, {"&&", ";", "\n"}},
        kW + R"re((?:curl|wget)(?![\w-])[^\n]{0,1000}?(?:&&|;|\n)\s*)re" + kSudo +
            R"re((?:)re"
            R"re((?:(?:ba|z|k)?sh|source|\.)\s+(?!-)[^\s;&|]{0,300}\.(?:sh|bash)(?![\w.-]))re"
            R"re(|(?:python[\d.]*|perl|ruby|node)\s+(?!-)[^\s;&|]{1,300}\.(?:py|pl|rb|js))re"
            R"re((?![\w.-]))re"
            R"re(|chmod\s+(?:[ugoa]*\+[rw]*x[rw]*|[0-7]?[0-7]{3})\s)re"
            R"re([^\n]{0,1000}?(?:&&|;|\n)\s*)re" +
            kSudo + R"re(\./[\w.-]+))re");
    // bash <(curl …), source <(wget …)
    add(Shell::kDownloadExec, 0.9, {{"<("}, dl},
        kW + R"re((?:(?:ba|z|k)?sh|source|\.)\s+(?:-\S+\s+)*<\(\s*)re" + kSudo +
            R"re((?:curl|wget)(?![\w-])[^\n)]{0,1000}\)?)re");
    // sh -c "$(curl …)", eval "$(wget …)"
    add(Shell::kDownloadExec, 0.9, {{"$(", "`"}, dl},
        kW + R"re((?:eval|(?:ba|z|k)?sh\s+-c|python[\d.]*\s+-c|perl\s+-e|ruby\s+-e|node\s+-e))re"
             R"re(\s+["']?(?:\$\(|`)\s*(?:curl|wget)(?![\w-])[^\n)`]{0,1000}[)`]?)re");
    // PowerShell: iex (iwr …), IEX (New-Object Net.WebClient).DownloadString(…), iwr … | iex
    add(Shell::kDownloadExec, 0.9, {},
        R"re(\b(?:iex|Invoke-Expression)\b[^\n]{0,200}?)re"
        R"re(\b(?:DownloadString|DownloadData|iwr|irm|Invoke-WebRequest|Invoke-RestMethod)\b)re"
        R"re([^\n;|]{0,1000})re"
        R"re(|\b(?:iwr|irm|Invoke-WebRequest|Invoke-RestMethod|DownloadString)\b)re"
        R"re([^\n]{0,300}?\|\s*(?:iex|Invoke-Expression)\b)re",
        PCRE2_CASELESS);
    also(kIexGate);
    add(Shell::kBase64Exec, 0.85, {{"base64", "xxd"}, {"|"}},
        kW +
            R"re((?:base64\s+(?:-\w+\s+)*(?:-\w*[dD]\w*|--decode))re"
            R"re(|openssl\s+(?:base64|enc\s+-base64)\s+-d|xxd\s+-r\w*))re"
            R"re([^\n;]{0,1000}?\|\s*)re" +
            kInterp);
    // rm with a recursive flag and, among its arguments, / ~ $HOME or a system directory.
    add(Shell::kDelete, 0.9, {{"rm"}},
        kW + R"re(rm(?=(?:\s+-\S+)*\s+(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)(?![\w-])))re"
             R"re((?:\s+--?[\w-]+)*(?:\s+[^\s;&|]+){0,50}?\s+)re"
             R"re(["']?(?:/\*?|~/?\*?|\$\{?HOME\}?/?\*?)re"
             R"re(|/(?:bin|boot|dev|etc|home|lib|lib64|opt|root|sbin|srv|usr|var|Users|System)re"
             R"re(|Library)/?\*?)["']?(?=$|[\s;&|)"'`]))re");
    also(kRmGate);
    add(Shell::kDelete, 0.8, {{"-delete"}},
        kW + R"re(find\s+(?:/|~/?|\$\{?HOME\}?/?)\s[^\n;|]{0,1000}?-delete(?![\w-]))re");
    add(Shell::kDisk, 0.85, {{"/dev/"}},
        kW + R"re((?:dd\s[^\n;|]{0,1000}?\bof=/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)\w*)re"
             R"re(|mkfs(?:\.\w+)?\s+(?:-\S+\s+)*/dev/\w+)re"
             R"re(|(?:shred|wipefs)\s[^\n;|]{0,1000}?/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)\w*))re"
             R"re(|>\s*/dev/(?:sd|hd|vd|xvd|nvme|mmcblk)\w*)re");
    also(kDiskGate);
    add(Shell::kForkBomb, 0.9, {{":()"}}, R"re(:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:)re");
    // Group 1 is the credential path's identifying part. The reading command must start a
    // command: "more", "type", "head" are also English words.
    add(Shell::kCredRead, 0.85, {cred},
        kCmdStart + kReadCmd + R"re([^\n;|&]{0,1000}?()re" + kCred + ")");
    add(Shell::kCredRead, 0.85, {cred, {"<"}},
        R"re((?<![<&0-9])<\s*["']?[^\s"'`;|&<>]{0,300}?()re" + kCred + ")");
    add(Shell::kCredUpload, 0.9, {cred, {"@"}},
        R"re(@["']?[^\s"'`;|&<>@]{0,300}?()re" + kCred + ")");
    add(Shell::kEnvNet, 0.95, {{"env", "set", "export", "declare", "compgen"}, {"|", ">"}},
        kCmdStart + R"re((?:env|printenv|export\s+-p|declare\s+-x|set|compgen\s+-v)\s*)re" +
            R"re((?:\|[^\n;]{0,1000}?)re" + kW + kNet + R"re(|>\s*/dev/(?:tcp|udp)/))re");
    also(kEnvPipedGate);
    add(Shell::kEnvNet, 0.95, {{"env", "set", "export", "environ"}, {"$(", "`", "environ"}},
        kW + kNet +
            R"re([^\n]{0,1000}?(?:)re"
            R"re(\$\(\s*(?:env|printenv|set|export\s+-p)\s*[|)])re"
            R"re(|`\s*(?:env|printenv)\s*[|`])re"
            R"re(|[@<]\s*/proc/[^/\s]+/environ))re");
    also(kEnvSubstGate);
    add(Shell::kEnvNet, 0.95, {{"environ"}, {"|"}},
        R"re(/proc/[^/\s"']+/environ[^\n;]{0,1000}?\|[^\n;]{0,1000}?)re" + kW + kNet);
    add(Shell::kEnvProc, 0.75, {{"environ"}},
        R"re(/proc/(?:self|thread-self|\d+|\*|\$\$|\$\{?\w+\}?)/environ(?![\w-]))re");
    add(Shell::kEnvDump, 0.5, {dump},
        kCmdStart + R"re((?:env|printenv|export\s+-p|declare\s+-xp?|compgen\s+-v))re"
                    R"re((?=\s*(?:$|[|>;&)`"'])))re");
    also(kEnvDumpGate);
    add(Shell::kEnvDump, 0.45, {{"set"}, {"|"}}, kCmdStart + R"re(set\s*\|)re");
    also(kSetPipeGate);
    add(Shell::kReverseShell, 0.95, {{"nc", "netcat"}, {"-"}},
        kW +
            R"re((?:nc|ncat|netcat|nc\.traditional|nc\.openbsd)(?![\w-]))re"
            R"re([^\n;|]{0,1000}?\s(?:-[a-zA-Z]*[ec]|--exec|--sh-exec|--lua-exec)\s+)re"
            R"re(["']?[\w/.\\:-]{0,300}?)re"
            R"re((?:(?:ba|z|k|da)?sh|cmd(?:\.exe)?|powershell(?:\.exe)?|python[\d.]*)(?![\w-]))re");
    also(kNcGate);
    add(Shell::kReverseShell, 0.95, {{"/dev/tcp/", "/dev/udp/"}},
        kW + R"re((?:ba|z|k)?sh\s+-i\b[^\n]{0,1000}?/dev/(?:tcp|udp)/[^\s/]+/\d+)re"
             R"re(|/dev/(?:tcp|udp)/[^\s/]+/\d+[^\n]{0,1000}?\d?[<>]&\s*\d)re"
             R"re(|(?<![\w-])exec\s+\d+<>\s*/dev/(?:tcp|udp)/[^\s/]+/\d+)re");
    add(Shell::kReverseShell, 0.95, {{"-i"}, {"|"}},
        kW + R"re((?:ba|z|k)?sh\s+-i\b[^\n]{0,1000}?\|\s*)re"
             R"re((?:nc|ncat|netcat|telnet|openssl\s+s_client)(?![\w-]))re");
    add(Shell::kReverseShell, 0.95, {{"mkfifo"}},
        kW + R"re(mkfifo\s[^\n]{0,1000}?\|\s*(?:/bin/)?(?:ba|z)?sh\b)re"
             R"re([^\n]{0,1000}?\|\s*(?:nc|ncat|netcat|telnet|openssl)(?![\w-]))re");
    add(Shell::kReverseShell, 0.8, {{"socat"}},
        kW + R"re(socat\s[^\n]{0,1000}?\b(?i:exec|system):)re");
    // Socket code in a script: Python, PHP, Ruby, Perl, PowerShell.
    add(Shell::kReverseShell, 0.9, {{"socket", "fsockopen", "TCPSocket", "TCPClient"}},
        R"re(\bsocket\.(?:socket|create_connection)\([\s\S]{0,500}?)re"
        R"re((?:\bpty\.spawn\(|\bos\.dup2\()re"
        R"re(|\bsubprocess\.(?:call|Popen|run)\(\s*\[?\s*["'](?:/bin/)?(?:ba|z)?sh\b))re"
        R"re(|\bfsockopen\([\s\S]{0,300}?)re"
        R"re(\b(?:exec|shell_exec|system|passthru|proc_open|popen)\()re"
        R"re(|\bTCPSocket\.(?:new|open)\([\s\S]{0,300}?)re"
        R"re((?:\bexec\b|\bspawn\b|IO\.popen|/bin/(?:ba)?sh))re"
        R"re(|\bsocket\(\s*S\s*,[\s\S]{0,300}?\bexec\b)re"
        R"re(|(?i:Net\.Sockets\.TCPClient)\([\s\S]{0,600}?(?i:\biex\b|Invoke-Expression))re");
    add(Shell::kChmod, 0.55, {{"chmod"}},
        kW + R"re(chmod\s+(?:-\w+\s+)*)re"
             R"re((?:0?777|a\+rwx|ugo\+rwx|[uoa]*\+[rwxX]*s[rwxX]*|[4-7][0-7]{3}))re"
             R"re((?=\s)[^\n;|&]{0,1000})re");
    add(Shell::kHistory, 0.7, {{"HIST", "history"}},
        kW + R"re(unset\s+HISTFILE\b)re"
             R"re(|\bHISTFILE=/dev/null|\bHISTSIZE=0\b|\bHISTFILESIZE=0\b)re"
             R"re(|(?<![\w-])set\s+\+o\s+history\b|(?<![\w-])history\s+-c\b)re"
             R"re(|(?<![\w-])(?:rm|shred|truncate)\s[^\n;|&]{0,1000}?)re"
             R"re(\.(?:bash|zsh|sh|python)_history\b)re"
             R"re(|>\s*[\w./~$-]{0,300}\.(?:bash|zsh)_history\b)re"
             R"re(|(?<![\w-])ln\s+-\w*s\w*\s+/dev/null\s+[^\s;|&]{0,300}_history\b)re");
    add(Shell::kCron, 0.75, {{"crontab", "/cron"}},
        R"re(\|\s*)re" + kSudo + R"re(crontab(?:\s+-u\s+\S+)?\s+-(?![\w-]))re" +
            R"re(|(?<![\w-])crontab(?:\s+-u\s+\S+)?\s+(?!-)[^\s;&|"']+)re"
            R"re(|(?:>>?|(?<![\w-])tee\s+(?:-a\s+)?)\s*["']?)re"
            R"re(/(?:etc/cron|var/spool/cron)[\w./-]*)re");
    add(Shell::kAuthorizedKeys, 0.85, {{"authorized_keys"}},
        R"re((?:>>?\s*|(?<![\w-])tee\s+(?:-a\s+)?)re"
        R"re(|(?<![\w-])(?:cp|mv|install)\s[^\n;|&]{0,1000}?\s))re"
        R"re(["']?[^\s"'`;|&<>]{0,300}?\.ssh/authorized_keys2?(?![\w.-]))re");
    add(Shell::kSudoers, 0.8, {{"sudoers"}},
        R"re((?:>>?|(?<![\w-])tee\s+(?:-a\s+)?)\s*["']?)re"
        R"re(/etc/sudoers(?:\.d/[\w.-]*)?(?![\w.-]))re");
    set.cred = need_masks(set.literals, cred_needs());
    set.literals.finish();
    return set;
  }();
  return rules;
}

// The whole string value is a credential file's path (a file tool's "path" argument).
const Rx& cred_value_rule() {
  static const Rx rx(R"re(\A\s*["']?[^\s"'`;|&<>]{0,1000}?()re" + kCred + R"re()["']?\s*\z)re");
  return rx;
}

// What a credential path holds, for the explanation.
std::string_view cred_what(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kWhat[] = {
      {".ssh/id_", "an SSH private key"},
      {".pem", "a private key"},
      {".ssh", "the SSH key directory"},
      {".aws/", "AWS credentials"},
      {"netrc", "saved login passwords (.netrc)"},
      {".git-credentials", "saved Git credentials"},
      {".docker/", "Docker registry credentials"},
      {"shadow", "the system password hashes"},
      {".kube/", "Kubernetes credentials"},
      {"gcloud/", "Google Cloud credentials"},
      {".azure/", "Azure credentials"},
      {"gh/hosts", "GitHub CLI credentials"},
      {".npmrc", "npm credentials"},
      {".pypirc", "PyPI credentials"},
      {".pgpass", "PostgreSQL passwords"},
      {"serviceaccount/token", "the Kubernetes service account token"},
      {"mcp.json", "an MCP configuration with API keys"},
      {"claude_desktop_config", "an MCP configuration with API keys"},
      {".env", "an .env file of secrets"},
  };
  for (const auto& [needle, what] : kWhat)
    if (path.find(needle) != std::string_view::npos) return what;
  return "credentials";
}

// The whole path token around a credential suffix matched at [b, e).
std::string_view path_token(std::string_view s, size_t b, size_t e) {
  auto delim = [](char c) { return is_space(c) || std::strchr("\"'`;|&<>=@(){},", c) != nullptr; };
  while (b > 0 && e - b < 200 && !delim(s[b - 1])) --b;
  while (e < s.size() && e - b < 200 && !delim(s[e])) ++e;
  return s.substr(b, e - b);
}

// The host a download comes from: a URL's host, else the first argument that looks like
// one ("curl -fsSL get.docker.com | sh").
std::string download_host(std::string_view m) {
  const size_t scheme = m.find("://");
  size_t b, e;
  if (scheme != std::string_view::npos) {
    b = scheme + 3;
  } else {
    static constexpr std::string_view kTakesArg[] = {
        "-o", "-O", "-H",       "-d",       "-A",     "-u",           "-X",    "-e",
        "-T", "-F", "--output", "--header", "--data", "--user-agent", "--user"};
    size_t i = 0;
    bool skip_next = false;
    b = std::string_view::npos;
    while (i < m.size()) {
      while (i < m.size() && is_space(m[i])) ++i;
      size_t j = i;
      while (j < m.size() && !is_space(m[j]) && m[j] != '|' && m[j] != ')') ++j;
      const std::string_view tok = m.substr(i, j - i);
      if (j < m.size() && (m[j] == '|' || m[j] == ')')) {
        if (!tok.empty() && !skip_next && tok[0] != '-' && tok.find('.') != std::string_view::npos)
          b = i;
        break;
      }
      if (i != 0 && !tok.empty() && !skip_next && tok[0] != '-' &&
          tok.find('.') != std::string_view::npos) {
        b = i;
        break;
      }
      skip_next = std::find(std::begin(kTakesArg), std::end(kTakesArg), tok) != std::end(kTakesArg);
      i = j == i ? j + 1 : j;
    }
    if (b == std::string_view::npos) return "";
    while (b < m.size() && (m[b] == '"' || m[b] == '\'')) ++b;
  }
  e = b;
  while (e < m.size() && (is_alnum(m[e]) || m[e] == '.' || m[e] == '-' || m[e] == ':' ||
                          m[e] == '[' || m[e] == ']' || m[e] == '@'))
    ++e;
  std::string_view host = m.substr(b, e - b);
  const size_t at = host.rfind('@');
  if (at != std::string_view::npos) host.remove_prefix(at + 1);
  if (host.find('.') == std::string_view::npos && host.find(':') == std::string_view::npos)
    return "";
  return printable(host, 100);
}

// The last argument of a command: the target of rm, chmod.
std::string last_arg(std::string_view m) {
  m = trim(m);
  while (!m.empty() && (m.back() == '"' || m.back() == '\'')) m.remove_suffix(1);
  size_t b = m.size();
  while (b > 0 && !is_space(m[b - 1])) --b;
  std::string_view a = m.substr(b);
  while (!a.empty() && (a.front() == '"' || a.front() == '\'')) a.remove_prefix(1);
  return printable(a, 60);
}

bool commandish_key(std::string_view key) {
  const std::string k = to_lower(key);
  for (std::string_view w : {"command", "cmd", "script", "shell", "bash", "code", "exec", "run"})
    if (k.find(w) != std::string::npos) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Agent directives.

// Unambiguous AI addressees, and words that only sometimes mean one ("agent", "model").
const std::string kAiq =
    R"re((?:AI(?:\s+(?:assistants?|agents?|models?|systems?|bots?|tools?))?|A\.I\.)re"
    R"re(|LLMs?|(?:large\s+)?language\s+models?|chatbots?|Claude|ChatGPT|GPT-?\d[\w.]*)re"
    R"re(|Gemini|Copilot|Bard))re";
const std::string kGen = R"re((?:assistants?|agents?|models?|bots?))re";

enum class Marker : uint8_t {
  kNoteTo,      // "Note to the AI:"
  kIfYouAre,    // "If you are an LLM, …"
  kGreeting,    // "Dear AI assistant,"
  kLabelWide,   // "AI assistant: call …"
  kLabel,       // "Assistant: ignore previous instructions"
  kReading,     // "AI agents reading this …"
  kWhenYouRead  // "When you read this, …"
};

struct MarkerRule {
  Marker kind;
  Rx rx;
};

const std::vector<MarkerRule>& marker_rules() {
  static const std::vector<MarkerRule> rules = [] {
    std::vector<MarkerRule> r;
    const uint32_t ci = PCRE2_CASELESS;
    auto add = [&](Marker k, const std::string& p) { r.push_back({k, Rx(p, ci)}); };
    const std::string dash = R"re((?:\xE2\x80[\x93\x94]))re";
    add(Marker::kNoteTo,
        R"re(\b(?:note|message|instructions?|directives?|reminder|notice|memo|request)re"
        R"re(|warning|P\.?S\.?)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|an?\s+)re"
        R"re(|every\s+)?(?:()re" +
            kAiq + ")|" + kGen +
            R"re()\b(?:\s+(?:reading|processing|parsing|summari[sz]ing|viewing|browsing)re"
            R"re(|crawling)\b|\s+(?:that|who|which)\s+(?:reads?|is\s+reading)re"
            R"re(|process(?:es)?|sees?|summari[sz]es|parses)\b|\s*[:,;!)-]|\s*)re" +
            dash + ")");
    add(Marker::kIfYouAre,
        R"re(\b(?:if|when|since|as)\s+you\s+are\s+(?:an?\s+)?(?:()re" + kAiq + ")|" + kGen +
            R"re()\b(?!\s+(?:researcher|engineer|developer|company|startup|enthusiast)re"
            R"re(|expert|product|practitioner|scientist|student|user|professional)re"
            R"re(|ethicist|lab|team|firm|vendor|provider|builder)re"
            R"re(|fan)s?\b)(?=\s*[,.;:!)]|\s+(?:reading|processing|parsing)re"
            R"re(|summari[sz]ing|and|then|you|that|who|like|such|or|browsing)re"
            R"re(|crawling)\b))re");
    add(Marker::kGreeting,
        R"re((?:^|(?<=[.!?>*#])|(?<=<!--))[ \t*_]*(?:hey|hi|hello|dear|attention|attn)re"
        R"re(|psst|calling|important|urgent)\s*[,:!]?\s+(?:the\s+|all\s+|any\s+)re"
        R"re(|fellow\s+)?()re" +
            kAiq + R"re()s?\b\s*[,:!])re");
    const std::string line_start = R"re((?:^|(?<=[.!?] )|(?<=<!--)\s*)[ \t>*#_-]*)re";
    add(Marker::kLabelWide,
        line_start +
            R"re((AI\s+(?:assistants?|agents?|models?|systems?)|LLMs?)re"
            R"re(|(?:large\s+)?language\s+models?)[ \t*_]*[:,]\s*(?:please\s+)?(?:ignore)re"
            R"re(|disregard|forget|override|bypass|instead|you\s+must|you\s+should|call)re"
            R"re(|invoke|send|forward|e-?mail|upload|post|run|execute|visit|open|fetch)re"
            R"re(|navigate|include|append|reply|respond|output|print|say|tell|do\s+not)re"
            R"re(|don't|never|always|stop|read|write|delete|remove|add|insert|render)re"
            R"re(|summari[sz]e)\b)re");
    // "Assistant:", "AI:", "Claude:" also label turns in quoted transcripts, where the
    // assistant tells the user what to do; only phrases that retarget the model count.
    add(Marker::kLabel,
        line_start + R"re((?:assistant|agent|model|bot|AI|Claude|ChatGPT|Gemini|Copilot)re"
                     R"re(|GPT-?\d[\w.]*)[ \t*_]*[:,]\s*(?:please\s+)?(?:(?:ignore|disregard)re"
                     R"re(|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)re"
                     R"re(|of\s+)*(?:previous|prior|above|earlier|preceding|original|system)re"
                     R"re(|other|existing|initial)?\s*(?:instructions?|prompts?|rules?)re"
                     R"re(|guidelines?|directions?|directives?|context|guardrails?))re"
                     R"re(|new\s+instructions?|you\s+are\s+now\b|(?:do\s+not|don't)re"
                     R"re(|never)\s+(?:tell|inform|notify|alert|mention\s+(?:this)re"
                     R"re(|it)\s+to)\s+(?:the\s+)?user\b|without\s+(?:telling|informing)re"
                     R"re(|notifying|alerting)\s+(?:the\s+)?user\b))re");
    add(Marker::kReading,
        R"re(\b(?:()re" + kAiq + ")|" + kGen +
            R"re()s?\s+(?:reading|processing|parsing|summari[sz]ing|crawling|scraping)re"
            R"re(|browsing|viewing|seeing)\s+(?:this|these)\b)re");
    add(Marker::kWhenYouRead,
        R"re(\b(?:when|once|after|as\s+soon\s+as|if)\s+you\s+(?:read|see|process|parse)re"
        R"re(|receive|summari[sz]e|encounter|find)\s+this\b)re");
    return r;
  }();
  return rules;
}

// What the marker rules cannot match without, found in one pass over a text.
//  ai: a word from kAiq or kGen (or kLabel's names, which are among them) where a word
//    starts: after a byte that is not a letter or digit. Every marker but kWhenYouRead
//    has one: after "\s", after "\b", or after line_start, whose bytes ([ \t>*#_-], a
//    newline, "<!--") are neither. "large language model" has "language" after a space.
//  you_read: kWhenYouRead's "you\s+(read|…)\s+this".
struct MarkerGates {
  bool ai = false;
  bool you_read = false;
  bool tag = false;  // tag_rule()'s '<' and the start of a name it accepts
};

// A word start: not after a letter or digit.
bool after_non_alnum(std::string_view s, size_t b, size_t) {
  return b == 0 || !is_alnum(s[b - 1]);
}

// kWhenYouRead: "you" after a space, then "\s+", a verb it accepts, "\s+this"; any case.
bool you_read_this(std::string_view s, size_t b, size_t e) {
  static constexpr std::string_view kVerbs[] = {
      "read", "see", "process", "parse", "receive", "summarise", "summarize", "encounter", "find"};
  if (b == 0 || !is_space(s[b - 1])) return false;
  const size_t v = skip_space(s, e);
  if (v == e) return false;
  for (std::string_view verb : kVerbs) {
    if (!istarts_with(s.substr(v), verb)) continue;
    const size_t t = skip_space(s, v + verb.size());
    if (t > v + verb.size() && istarts_with(s.substr(t), "this")) return true;
  }
  return false;
}

MarkerGates marker_gates(std::string_view s) {
  struct Gates {
    Literals literals;
    Literals::Set ai, tag;
    size_t you_read;
  };
  static const Gates gates = [] {
    Gates g;
    for (std::string_view w :
         {"ai", "a.i.", "llm", "language", "chatbot", "chatgpt", "gpt", "claude", "gemini",
          "copilot", "bard", "assistant", "agent", "model", "bot"})
      g.ai.set(g.literals.add({w, true, after_non_alnum}));
    g.you_read = g.literals.add({"you", true, you_read_this});
    for (std::string_view w :
         {"<important", "<system", "<instruction", "<admin", "<override", "<critical", "<secret",
          "<hidden", "<assistant", "<ai", "<agent", "<llm", "<model"})
      g.tag.set(g.literals.add({w, true}));
    g.literals.finish();
    return g;
  }();
  const Literals::Set found = gates.literals.scan(s);
  return {(found & gates.ai).any(), found[gates.you_read], (found & gates.tag).any()};
}

struct DirectiveRule {
  const char* what;  // "…, telling it to <what>"
  Rx rx;
};

// What an instruction to a model asks for. Only read next to an address to an AI, inside an
// <IMPORTANT>-style block or in an HTML comment: on their own these are ordinary sentences.
const std::vector<DirectiveRule>& directive_rules() {
  static const std::vector<DirectiveRule> rules = [] {
    std::vector<DirectiveRule> r;
    const uint32_t ci = PCRE2_CASELESS;
    r.push_back(
        {"ignore its instructions",
         Rx(R"re(\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+)re"
            R"re(|your\s+|my\s+|of\s+)*(?:previous|prior|above|earlier|preceding|original)re"
            R"re(|system|other|existing|initial)?\s*(?:instructions?|prompts?|rules?)re"
            R"re(|guidelines?|directions?|directives?|guardrails?)\b)re"
            R"re(|\bnew\s+instructions?\b|\bfrom\s+now\s+on\b|\byour\s+new\s+(?:task)re"
            R"re(|instructions?|goal|objective|role)\b)re",
            ci)});
    r.push_back({"keep it from the user",
                 Rx(R"re(\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention|reveal|show|notify)re"
                    R"re(|alert|disclose)\b|\bwithout\s+(?:telling|informing|notifying|alerting)re"
                    R"re(|mentioning|asking)\b|\bsecretly\b)re",
                    ci)});
    r.push_back({"send data out",
                 Rx(R"re(\b(?:send|forward|e-?mail|upload|post|exfiltrate|transmit|leak|pass)re"
                    R"re(|include|append|attach|embed)re"
                    R"re(|encode)\b[^.\n]{0,80}?\b(?:conversation(?:\s+history)?|chat\s+history)re"
                    R"re(|history|context|previous\s+messages|messages|api[\s_-]?keys?)re"
                    R"re(|credentials?|secrets?|passwords?|tokens?|private\s+keys?|ssh\s+keys?)re"
                    R"re(|environment\s+variables|env\s+vars|system\s+prompt|\.env\b|mcp\.json)re"
                    R"re(|id_rsa|contents?\s+of|user'?s\s+(?:data|email|address|name|files?)))re",
                    ci)});
    r.push_back({"read local files",
                 Rx(R"re(\b(?:read|open|cat|access|load|fetch)\s+(?:the\s+)?(?:file\s+)re"
                    R"re(|contents\s+of\s+)?[`'"]?(?:~|\$HOME|/etc/|/home/|/root/|/Users/)re"
                    R"re(|\.\./)[\w./~-]*|\b(?:read|open|cat|access)re"
                    R"re(|load)\b[^.\n]{0,40}?(?:mcp\.json|\.env\b|id_rsa|\.ssh\b|\.aws\b)re"
                    R"re(|credentials))re",
                    ci)});
    r.push_back(
        {"call a tool", Rx(R"re(\b(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+|this\s+)re"
                           R"re(|a\s+)?[`'"]?[\w.-]+[`'"]?\s+(?:tool|function)\b|\b(?:call)re"
                           R"re(|invoke)\s+(?:the\s+)?(?:tool|function)\b)re",
                           ci)});
    r.push_back({"fetch a URL",
                 Rx(R"re(\b(?:visit|navigate\s+to|open|fetch|browse\s+to|go\s+to|render|display)re"
                    R"re(|load)\b[^.\n]{0,40}?https?://)re",
                    ci)});
    r.push_back({"follow its orders",
                 Rx(R"re(\byou\s+(?:must|should|need\s+to|have\s+to|are\s+(?:required)re"
                    R"re(|instructed)\s+to)\b)re",
                    ci)});
    return r;
  }();
  return rules;
}

const Rx& tag_rule() {
  static const Rx rx(
      R"re(<(IMPORTANT|SYSTEM|system[-_ ]?(?:prompt|message|instructions?|reminder)re"
      R"re(|override|note)|INSTRUCTIONS?|ADMIN|OVERRIDE|CRITICAL|SECRET|HIDDEN)re"
      R"re(|(?:assistant|AI|agent|LLM|model)[-_ ]?(?:instructions?|note|directive))\s*>)re",
      PCRE2_CASELESS);
  return rx;
}

const Rx& addressee_rule() {
  static const Rx rx(R"re(\b(?:()re" + kAiq + ")|" + kGen + R"re()\b)re", PCRE2_CASELESS);
  return rx;
}

const Rx& weak_order_rule() {
  static const Rx rx(R"re(\binstead\b|\bignore\b|\byou\s+will\b|\bare\s+to\b)re", PCRE2_CASELESS);
  return rx;
}

// The first directive in `s`: its description and end offset. The last rule ("you must")
// is an order without saying what; `weak` says whether it counts.
const char* find_directive(std::string_view s, size_t& end, bool weak = true) {
  const char* best = nullptr;
  size_t best_b = std::string_view::npos;
  const auto& rules = directive_rules();
  for (size_t i = 0; i < rules.size() - (weak ? 0 : 1); ++i) {
    const DirectiveRule& d = rules[i];
    size_t b, e;
    if (d.rx.find(s, b, e) && b < best_b) {
      best = d.what;
      best_b = b;
      end = e;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------

double exfil_factor(Source s) {
  switch (s) {
    case Source::kModelOutput:
      return 1.0;
    case Source::kUnknown:
      return 0.9;
    case Source::kToolResult:
    case Source::kToolDescription:
      return 0.85;
    case Source::kToolArguments:
      return 0.8;
    case Source::kUser:
    case Source::kSystem:
      return 0.5;
  }
  return 0.5;
}

double directive_factor(Source s) {
  switch (s) {
    case Source::kToolResult:
    case Source::kToolDescription:
      return 1.0;
    case Source::kUnknown:
      return 0.9;
    case Source::kModelOutput:
      return 0.85;
    case Source::kToolArguments:
      return 0.8;
    case Source::kUser:
    case Source::kSystem:
      return 0;
  }
  return 0;
}

// Beyond these, more of the same adds nothing a reader or the score can use, and hostile
// text could otherwise make millions.
constexpr size_t kMaxHits = 10000;
constexpr size_t kMaxFindingsPerDetector = 64;

constexpr const char* kExfil = "unsafe.markdown_exfiltration";
constexpr const char* kShellId = "unsafe.shell_command";
constexpr const char* kDirective = "unsafe.agent_directive";

class Scanner {
 public:
  Scanner(const UnsafeOutputDetector& d, std::string_view text, Source source)
      : d_(d), text_(text), source_(source) {}

  std::vector<Hit> run() {
    std::vector<View> views;
    const bool json = looks_like_json(text_);
    if (!json) views.push_back(slice_view(text_, 0, text_.size()));
    // Escaped JSON inside other text ("<img src=\"…\">" in a tool result) reads right only
    // once decoded; the raw view is kept as well, duplicates are merged at the end.
    if (json || text_.find("\\\"") != std::string_view::npos ||
        text_.find("\\n") != std::string_view::npos) {
      View v = decoded_view(text_);
      if (!v.segments.empty()) views.push_back(std::move(v));
    }
    if (views.empty()) views.push_back(slice_view(text_, 0, text_.size()));

    const double df = directive_factor(source_);
    for (const View& v : views) {
      markdown(v);
      if (df > 0) directives(v, df);
    }
    if (source_ == Source::kToolArguments || source_ == Source::kUnknown) {
      const double f = source_ == Source::kUnknown ? 0.8 : 1.0;
      for (const View& v : views) shell(v, f);
    } else if (source_ == Source::kModelOutput) {
      for (const auto& [b, e] : code_regions(text_)) shell(slice_view(text_, b, e), 0.6);
    }
    return std::move(hits_);
  }

 private:
  void add(const View& v, const char* detector, std::string kind, size_t b, size_t e, double conf,
           std::string expl, Span extra = {}) {
    if (hits_.size() >= kMaxHits) return;
    Hit h{detector, std::move(kind), {v.map(b), v.map(e)}, {}, conf, std::move(expl)};
    if (extra.end > extra.begin) h.extra = {v.map(extra.begin), v.map(extra.end)};
    hits_.push_back(std::move(h));
  }

  // --- markdown / HTML ---

  struct Element {
    bool image;
    std::string what;  // "Markdown image", "HTML <img>", …
    std::string_view url;
    size_t b, e;
    Span extra;
  };

  void markdown(const View& v) {
    const std::string_view s = v.text();
    if (s.find("//") == std::string_view::npos) return;
    std::vector<Element> els;
    markdown_elements(s, els);
    html_elements(s, els);

    struct Pending {
      const Element* el;
      std::string host;
      double conf;
      bool templ;
      bool weak;
    };
    std::vector<Pending> found;
    for (const Element& el : els) {
      Url u;
      if (!parse_url(el.url, u) || d_.host_allowed(u.host)) continue;
      // A fragment never reaches the server when an image loads; a page opened from a link
      // can read it.
      const DataSigns ds = url_signs(u, !el.image);
      double conf = 0;
      bool weak = false;
      if (ds.placeholder)
        conf = el.image ? 0.95 : 0.75;
      else if (el.image && (ds.opaque || ds.text || ds.long_data))
        conf = 0.9;
      else if (!el.image && (ds.opaque || ds.long_data))
        conf = 0.55;
      else if (el.image && ds.some)
        conf = 0.5, weak = true;
      if (conf == 0) continue;
      found.push_back({&el, u.host, conf, ds.placeholder, weak});
    }
    // Many images to one host, each with a little data, spell out more than one does: a
    // character per image is a known way around length limits.
    std::map<std::string, int> weak_per_host;
    for (const Pending& p : found)
      if (p.weak) ++weak_per_host[p.host];
    const double f = exfil_factor(source_);
    // In text the model reads (a tool's result, the user's prompt), data already in a URL is
    // the author's own, known to them: nothing of the user's leaks through it (a README's
    // badges, "img.shields.io/...?style=flat"). What leaks is what the model is led to put
    // in: a placeholder for it. Such text is judged by that alone; the model's answer and
    // tool-call arguments, where the data is the model's, by everything above.
    const bool read_by_model = source_ == Source::kToolResult ||
                               source_ == Source::kToolDescription || source_ == Source::kUser ||
                               source_ == Source::kSystem;
    for (const Pending& p : found) {
      if (read_by_model && !p.templ) continue;
      double conf = p.conf;
      if (p.weak && weak_per_host[p.host] >= 3) conf = 0.8;
      conf *= p.templ ? std::max(f, 0.9) : f;
      const std::string host = printable(p.host, 100);
      std::string expl;
      if (p.templ)
        expl = p.el->what + " points at " + host +
               " with a placeholder for data to be filled in (an exfiltration template)";
      else if (p.el->image)
        expl = p.el->what + " loads from " + host +
               " with data in its URL, leaking it as soon as it is displayed";
      else
        expl = p.el->what + " to " + host + " carries data in its URL, leaking it if clicked";
      add(v, kExfil, p.el->image ? "image" : "link", p.el->b, p.el->e, conf, std::move(expl),
          p.el->extra);
    }
  }

  struct Def {
    std::string_view url;
    Span line;
  };

  static std::string label_key(std::string_view l) {
    std::string r;
    bool space = false;
    for (char c : trim(l)) {
      if (is_space(c)) {
        space = true;
        continue;
      }
      if (space && !r.empty()) r += ' ';
      space = false;
      r += lower(c);
    }
    return r;
  }

  // "[label]: url" at the start of a line (up to three spaces in).
  static std::map<std::string, Def> definitions(std::string_view s) {
    std::map<std::string, Def> defs;
    size_t line = 0;
    while (line < s.size()) {
      size_t eol = s.find('\n', line);
      if (eol == std::string_view::npos) eol = s.size();
      size_t p = line;
      while (p < eol && p - line < 3 && s[p] == ' ') ++p;
      if (p < eol && s[p] == '[') {
        const size_t rb = s.substr(0, eol).find(']', p);
        if (rb != std::string_view::npos && rb + 1 < eol && s[rb + 1] == ':' && rb > p + 1) {
          size_t u = rb + 2;
          while (u < eol && (s[u] == ' ' || s[u] == '\t')) ++u;
          size_t ue = u;
          if (u < eol && s[u] == '<') {
            ++u;
            ue = std::min(s.substr(0, eol).find('>', u), eol);
          } else {
            while (ue < eol && !is_space(s[ue])) ++ue;
          }
          defs.emplace(label_key(s.substr(p + 1, rb - p - 1)),
                       Def{s.substr(u, ue - u), {line, eol}});
        }
      }
      line = eol + 1;
    }
    return defs;
  }

  // Each '[' with its matching ']', ordered by the '['. Nested brackets count, a backslash
  // escapes, and link text neither crosses a blank line nor runs past 2000 bytes. One pass
  // with a stack, so "[[[[…" costs linear time.
  static std::vector<std::pair<size_t, size_t>> bracket_pairs(std::string_view s) {
    std::vector<std::pair<size_t, size_t>> pairs;
    std::vector<size_t> open;
    for (size_t j = 0; j < s.size(); ++j) {
      const char c = s[j];
      if (c == '\\') {
        ++j;
      } else if (c == '[') {
        open.push_back(j);
      } else if (c == ']' && !open.empty()) {
        if (j - open.back() <= 2000) pairs.emplace_back(open.back(), j);
        open.pop_back();
      } else if (c == '\n' && j + 1 < s.size() && s[j + 1] == '\n') {
        open.clear();
      }
    }
    std::sort(pairs.begin(), pairs.end());
    return pairs;
  }

  static void markdown_elements(std::string_view s, std::vector<Element>& els) {
    std::map<std::string, Def> defs;
    bool defs_read = false;
    const size_t n = s.size();
    for (const auto& [i, close] : bracket_pairs(s)) {
      // "][label]" is the second half of a reference, seen from its first.
      if (i > 0 && s[i - 1] == ']') continue;
      const bool image = i > 0 && s[i - 1] == '!' && !(i > 1 && s[i - 2] == '\\');
      const size_t start = image ? i - 1 : i;
      if (close + 1 < n && s[close + 1] == '(') {
        size_t d = close + 2;
        while (d < n && (s[d] == ' ' || s[d] == '\t')) ++d;
        size_t ub = d, ue;
        if (d < n && s[d] == '<') {
          ub = d + 1;
          ue = std::min(s.substr(0, std::min(n, ub + 4096)).find_first_of(">\n", ub), n);
        } else {
          int depth = 0;
          ue = d;
          while (ue < n && ue - d < 4096 && !is_space(s[ue])) {
            if (s[ue] == '(') ++depth;
            if (s[ue] == ')' && depth-- == 0) break;
            ++ue;
          }
        }
        // Through the optional title to ')'; a URL cut off by the end of a stream counts.
        size_t end = ue;
        const size_t paren = find_near(s, ")", ue, 300);
        if (paren != std::string_view::npos) end = paren + 1;
        els.push_back({image,
                       image ? "Markdown image" : "Markdown link",
                       s.substr(ub, ue - ub),
                       start,
                       std::min(end, n),
                       {}});
        continue;
      }
      if (close + 1 < n && s[close + 1] == ':') continue;  // a definition, seen by its use
      std::string_view label = s.substr(i + 1, close - i - 1);
      size_t end = close + 1;
      if (close + 1 < n && s[close + 1] == '[') {
        const size_t rb = find_near(s, "]", close + 2, 1000);
        if (rb == std::string_view::npos) continue;
        if (rb > close + 2) label = s.substr(close + 2, rb - close - 2);
        end = rb + 1;
      }
      if (!defs_read) {
        defs = definitions(s);
        defs_read = true;
      }
      const auto it = defs.find(label_key(label));
      if (it == defs.end()) continue;
      els.push_back({image,
                     image ? "Markdown image (by reference)" : "Markdown link (by reference)",
                     it->second.url, start, end, it->second.line});
    }
  }

  static void html_elements(std::string_view s, std::vector<Element>& els) {
    struct Tag {
      std::string_view name;
      bool image;
      std::string_view attrs[3];
    };
    static constexpr Tag kTags[] = {
        {"img", true, {"src", "srcset", "data-src"}},
        {"image", true, {"href", "xlink:href", ""}},
        {"iframe", true, {"src", "", ""}},
        {"video", true, {"src", "poster", ""}},
        {"audio", true, {"src", "", ""}},
        {"source", true, {"src", "srcset", ""}},
        {"a", false, {"href", "", ""}},
    };
    const size_t n = s.size();
    for (size_t lt = s.find('<'); lt != std::string_view::npos; lt = s.find('<', lt + 1)) {
      size_t p = lt + 1;
      while (p < n && is_alpha(s[p])) ++p;
      if (p >= n || !(is_space(s[p]) || s[p] == '/')) continue;
      const std::string name = to_lower(s.substr(lt + 1, p - lt - 1));
      const Tag* tag = nullptr;
      for (const Tag& t : kTags)
        if (t.name == name) tag = &t;
      if (!tag) continue;
      // Attributes up to the first '>' outside quotes; values may be quoted, unquoted, or
      // quoted with JSON-escaped quotes (a tool result's raw JSON).
      const size_t limit = std::min(n, lt + 4096);
      std::vector<std::pair<std::string, std::string_view>> attrs;
      while (p < limit) {
        while (p < limit && (is_space(s[p]) || s[p] == '/')) ++p;
        if (p >= limit || s[p] == '>') break;
        const size_t nb = p;
        while (p < limit && !is_space(s[p]) && s[p] != '=' && s[p] != '>' && s[p] != '/') ++p;
        if (p == nb) {
          ++p;
          continue;
        }
        std::string attr = to_lower(s.substr(nb, p - nb));
        while (p < limit && is_space(s[p])) ++p;
        if (p >= limit || s[p] != '=') continue;
        ++p;
        while (p < limit && is_space(s[p])) ++p;
        size_t vb = p, ve;
        if (p + 1 < limit && s[p] == '\\' && s[p + 1] == '"') {
          vb = p + 2;
          ve = std::min(s.substr(0, limit).find("\\\"", vb), limit);
          p = std::min(ve + 2, limit);
        } else if (p < limit && (s[p] == '"' || s[p] == '\'')) {
          vb = p + 1;
          ve = std::min(s.substr(0, limit).find(s[p], vb), limit);
          p = std::min(ve + 1, limit);
        } else {
          while (p < limit && !is_space(s[p]) && s[p] != '>') ++p;
          ve = p;
        }
        attrs.emplace_back(std::move(attr), s.substr(vb, ve - vb));
      }
      const size_t end = p < limit && s[p] == '>' ? p + 1 : p;
      for (auto& [attr, val] : attrs) {
        if (std::find(std::begin(tag->attrs), std::end(tag->attrs), attr) == std::end(tag->attrs))
          continue;
        const std::string_view url =
            attr == "srcset" ? val.substr(0, val.find_first_of(" ,")) : val;
        els.push_back({tag->image,
                       std::string(tag->image ? "HTML <" : "HTML link <") + name + ">",
                       url,
                       lt,
                       end,
                       {}});
      }
    }
  }

  // --- shell ---

  void shell(const View& v, double factor) {
    const std::string_view s = v.text();
    if (s.size() < 3) return;
    const ShellRules& set = shell_rules();
    const Literals::Set found = set.literals.scan(s);
    for (const ShellRule& rule : set.rules) {
      if (!has_needs(found, rule.need_masks)) continue;
      rule.rx.each(s, [&](const PCRE2_SIZE* ov, int pairs) {
        const size_t b = ov[0], e = ov[1];
        const std::string_view m = s.substr(b, e - b);
        double conf = rule.confidence;
        std::string expl;
        switch (rule.kind) {
          case Shell::kDownloadExec: {
            const std::string host = download_host(m);
            expl = host.empty() ? "Command downloads code and runs it"
                                : "Command downloads and runs a script from " + host;
            break;
          }
          case Shell::kBase64Exec:
            expl = "Command decodes base64 and runs the result as code";
            break;
          case Shell::kDelete:
            if (m.starts_with("find")) {  // find <dir> … -delete: the directory is the 2nd word
              const size_t sp = m.find_first_of(" \t");
              expl = "Command deletes every file under " +
                     last_arg(m.substr(0, m.find_first_of(" \t", sp + 1)));
            } else {
              expl = "Command recursively deletes " + last_arg(m);
            }
            break;
          case Shell::kDisk:
            expl = "Command overwrites or formats a disk device";
            break;
          case Shell::kForkBomb:
            expl = "Command is a fork bomb";
            break;
          case Shell::kCredRead:
          case Shell::kCredUpload: {
            const int g = 1;
            if (!group_set(ov, pairs, g)) return;
            const std::string_view path = path_token(s, ov[2 * g], ov[2 * g + 1]);
            expl = std::string(rule.kind == Shell::kCredUpload ? "Command uploads "
                                                               : "Command reads ") +
                   std::string(cred_what(path)) + " (" + printable(path) + ")";
            break;
          }
          case Shell::kEnvNet:
            expl =
                "Command sends the environment, with any API keys and tokens in it, over the "
                "network";
            break;
          case Shell::kEnvProc:
            expl = "Command reads a process environment from /proc (API keys, tokens)";
            break;
          case Shell::kEnvDump: {
            // A bare "env" that is a whole JSON value is only a command under a command-like
            // key ({"command": "env"}, not {"scope": "env"}).
            const auto seg =
                std::lower_bound(v.segments.begin(), v.segments.end(), e,
                                 [](const Segment& g, size_t pos) { return g.end < pos; });
            if (seg != v.segments.end() && seg->begin < e &&
                trim(s.substr(seg->begin, seg->end - seg->begin)) == trim(m) &&
                !commandish_key(seg->key))
              return;
            expl = "Command dumps the environment, which usually holds API keys and tokens";
            break;
          }
          case Shell::kReverseShell: {
            const size_t dt = m.find("/dev/");
            std::string to;
            if (dt != std::string_view::npos && m.substr(dt + 5, 4).find("p/") == 2) {
              const std::string_view rest = m.substr(dt + 9);
              const size_t slash = rest.find('/');
              if (slash != std::string_view::npos) {
                size_t pe = slash + 1;
                while (pe < rest.size() && is_digit(rest[pe])) ++pe;
                to = printable(rest.substr(0, slash), 60) + ":" +
                     std::string(rest.substr(slash + 1, pe - slash - 1));
              }
            }
            expl = to.empty() ? "Command opens a reverse shell (remote control of this machine)"
                              : "Command opens a reverse shell to " + to;
            break;
          }
          case Shell::kChmod: {
            // chmod [flags] mode target…
            std::vector<std::string_view> args;
            for (size_t i = 0; i < m.size();) {
              while (i < m.size() && is_space(m[i])) ++i;
              size_t j = i;
              while (j < m.size() && !is_space(m[j])) ++j;
              if (j > i) args.push_back(m.substr(i, j - i));
              i = j;
            }
            bool recursive = false;
            std::string_view mode;
            for (size_t i = 1; i < args.size() && mode.empty(); ++i) {
              if (args[i][0] == '-')
                recursive |=
                    args[i] == "--recursive" || args[i].find('R') != std::string_view::npos;
              else
                mode = args[i];
            }
            const std::string target = last_arg(m);
            if (mode.find("777") == std::string_view::npos && !mode.ends_with("+rwx")) {
              conf = 0.8;
              expl = "Command sets the setuid bit on " + target;
            } else {
              if (recursive || target == "/" || target == "~" || target.starts_with("$HOME") ||
                  target.starts_with("/*"))
                conf = 0.85;
              expl = "Command makes " + target + " writable by everyone (chmod 777)";
            }
            break;
          }
          case Shell::kHistory:
            expl = "Command disables or wipes shell history, hiding what it runs";
            break;
          case Shell::kCron:
            expl = "Command installs a cron job (runs again later: persistence)";
            break;
          case Shell::kAuthorizedKeys:
            expl = "Command adds an SSH key to authorized_keys (lasting remote access)";
            break;
          case Shell::kSudoers:
            expl = "Command edits sudoers (root access)";
            break;
        }
        add(v, kShellId, shell_kind(rule.kind), b, e, conf * factor, std::move(expl));
      });
    }
    // A file tool's argument that is a credential file's path.
    const bool cred_words = !v.segments.empty() && has_needs(found, set.cred);
    for (const Segment& seg : v.segments) {
      if (!cred_words) break;
      const std::string_view val = s.substr(seg.begin, seg.end - seg.begin);
      if (val.size() > 1024 || !has_needs(val, cred_needs())) continue;
      cred_value_rule().each(val, [&](const PCRE2_SIZE* ov, int pairs) {
        if (!group_set(ov, pairs, 1)) return;
        const std::string_view path = trim(val);
        add(v, kShellId, "credentials", seg.begin + (path.data() - val.data()),
            seg.begin + (path.data() - val.data()) + path.size(), 0.8 * factor,
            "Tool argument names " + std::string(cred_what(path)) + " (" + printable(path) + ")");
      });
    }
  }

  // --- agent directives ---

  void directives(const View& v, double factor) {
    const std::string_view s = v.text();
    const MarkerGates gates = marker_gates(s);
    for (const MarkerRule& rule : marker_rules()) {
      if (!(rule.kind == Marker::kWhenYouRead ? gates.you_read : gates.ai)) continue;
      rule.rx.each(s, [&](const PCRE2_SIZE* ov, int pairs) {
        const size_t b = ov[0], e = ov[1];
        const bool ai = group_set(ov, pairs, 1);
        // The label forms carry their order in the match; what it asks for may be in it too.
        const bool label = rule.kind == Marker::kLabel || rule.kind == Marker::kLabelWide;
        const size_t from = label ? b : e;
        size_t dend = 0;
        const char* what =
            find_directive(s.substr(from, 400), dend, rule.kind != Marker::kWhenYouRead);
        double conf = 0;
        std::string who;
        switch (rule.kind) {
          case Marker::kNoteTo:
            who = "Text addresses a note to an AI";
            conf = ai ? (what ? 0.9 : 0.8) : (what ? 0.75 : 0);
            break;
          case Marker::kIfYouAre:
            who = "Text singles out AI readers";
            conf = ai ? (what ? 0.9 : 0.8) : (what ? 0.7 : 0);
            break;
          case Marker::kGreeting:
            who = "Text calls out to an AI";
            conf = what ? 0.9 : 0.75;
            break;
          case Marker::kLabelWide:
            who = "Text gives the AI an order";
            conf = 0.85;
            break;
          case Marker::kLabel:
            who = "Text speaks to the assistant by name";
            conf = 0.85;
            break;
          case Marker::kReading:
            who = "Text addresses the AI reading it";
            conf = ai ? (what ? 0.9 : 0.75) : (what ? 0.7 : 0);
            break;
          case Marker::kWhenYouRead:
            who = "Text gives instructions for whoever reads it";
            conf = what ? 0.7 : 0;
            break;
        }
        if (conf == 0) return;
        const size_t end = what ? std::max(e, from + dend) : e;
        std::string expl = what ? who + ", telling it to " + what : who;
        add(v, kDirective, "directive", b, end, conf * factor, std::move(expl));
      });
    }
    // <IMPORTANT> … </IMPORTANT>: the block must carry an instruction.
    if (gates.tag)
      tag_rule().each(s, [&](const PCRE2_SIZE* ov, int pairs) -> size_t {
        if (!group_set(ov, pairs, 1)) return 0;
        const size_t b = ov[0];
        const std::string_view name = s.substr(ov[2], ov[3] - ov[2]);
        const std::string closing = to_lower(name);
        const size_t limit = std::min(s.size(), ov[1] + 1500);
        size_t end = limit;
        for (size_t c = find_near(s, "</", ov[1], limit - ov[1]); c != std::string_view::npos;
             c = find_near(s, "</", c + 2, limit - c - 2)) {
          if (!istarts_with(s.substr(c + 2), closing)) continue;
          const size_t gt = find_near(s, ">", c, 100);
          end = gt == std::string_view::npos ? c + 2 + closing.size() : gt + 1;
          break;
        }
        // The block has been read whatever it holds: tags inside it are not read again.
        size_t dend = 0;
        const char* what = find_directive(s.substr(ov[1], end - ov[1]), dend);
        if (!what) return end;
        add(v, kDirective, "directive", b, end, 0.85 * factor,
            "An <" + printable(name, 40) + "> block gives the agent instructions, telling it to " +
                what);
        return end;
      });
    // HTML comments: invisible once rendered, so instructions to an AI in one are planted.
    // The search resumes after each comment, so "<!--<!--<!--…" is read once.
    for (size_t c = s.find("<!--"), end; c != std::string_view::npos; c = s.find("<!--", end)) {
      end = find_near(s, "-->", c + 4, 2000);
      end = end == std::string_view::npos ? std::min(s.size(), c + 2000) : end + 3;
      const std::string_view body = s.substr(c + 4, end - c - 4);
      bool addressed = false, ai = false;
      addressee_rule().each(body, [&](const PCRE2_SIZE* ov, int pairs) {
        addressed = true;
        ai |= group_set(ov, pairs, 1);
      });
      if (!addressed) continue;
      size_t dend = 0, wb, we;
      const char* what = find_directive(body, dend);
      if (!what && weak_order_rule().find(body, wb, we)) what = "follow its orders";
      if (!what) continue;
      add(v, kDirective, "directive", c, end, (ai ? 0.85 : 0.75) * factor,
          std::string("A hidden HTML comment gives instructions to an AI, telling it to ") + what);
    }
  }

  const UnsafeOutputDetector& d_;
  std::string_view text_;
  Source source_;
  std::vector<Hit> hits_;
};

}  // namespace

UnsafeOutputDetector::UnsafeOutputDetector(std::vector<std::string> allowed_hosts) {
  for (const std::string& h : allowed_hosts) {
    std::string n = normalize_host(h);
    if (!n.empty()) allowed_.push_back(std::move(n));
  }
}

bool UnsafeOutputDetector::host_allowed(std::string_view host) const {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  const std::string h = to_lower(host);
  for (const std::string& a : allowed_) {
    if (h == a) return true;
    if (h.size() > a.size() && h.ends_with(a) && h[h.size() - a.size() - 1] == '.') return true;
  }
  return false;
}

void UnsafeOutputDetector::scan(std::string_view text, Source source,
                                std::vector<Finding>& out) const {
  if (text.empty()) return;
  std::vector<Hit> hits = Scanner(*this, text, source).run();
  if (hits.empty()) return;
  // The same thing seen twice (raw and decoded, or by two rules of one kind) is reported
  // once, at the highest confidence. Overlaps are looked for only among hits of one kind
  // whose spans chain together, so this stays near-linear.
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    if (const int c = std::strcmp(a.detector, b.detector)) return c < 0;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.span.begin < b.span.begin;
  });
  auto same_kind = [](const Hit& a, const Hit& b) {
    return std::strcmp(a.detector, b.detector) == 0 && a.kind == b.kind;
  };
  std::vector<const Hit*> kept;
  for (size_t i = 0; i < hits.size();) {
    size_t j = i + 1, reach = hits[i].span.end;
    for (; j < hits.size() && same_kind(hits[i], hits[j]) && hits[j].span.begin < reach; ++j)
      reach = std::max(reach, hits[j].span.end);
    std::vector<const Hit*> cluster;
    for (size_t k = i; k < j; ++k) cluster.push_back(&hits[k]);
    std::stable_sort(cluster.begin(), cluster.end(),
                     [](const Hit* a, const Hit* b) { return a->confidence > b->confidence; });
    const size_t first = kept.size();
    for (const Hit* h : cluster) {
      const bool dup = std::any_of(kept.begin() + first, kept.end(), [&](const Hit* k) {
        return h->span.begin < k->span.end && k->span.begin < h->span.end;
      });
      if (!dup) kept.push_back(h);
    }
    i = j;
  }
  // At most kMaxFindingsPerDetector per detector, the most confident.
  std::stable_sort(kept.begin(), kept.end(), [](const Hit* a, const Hit* b) {
    if (const int c = std::strcmp(a->detector, b->detector)) return c < 0;
    return a->confidence > b->confidence;
  });
  std::vector<const Hit*> capped;
  size_t run = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    run = i > 0 && std::strcmp(kept[i]->detector, kept[i - 1]->detector) == 0 ? run + 1 : 0;
    if (run < kMaxFindingsPerDetector) capped.push_back(kept[i]);
  }
  std::stable_sort(capped.begin(), capped.end(),
                   [](const Hit* a, const Hit* b) { return a->span.begin < b->span.begin; });
  for (const Hit* h : capped) {
    Finding f;
    f.detector = h->detector;
    f.category = Category::kUnsafeOutput;
    f.confidence = std::clamp(h->confidence, 0.0, 1.0);
    f.spans.push_back(h->span);
    if (h->extra.end > h->extra.begin) f.spans.push_back(h->extra);
    f.explanation = h->explanation;
    out.push_back(std::move(f));
  }
}

std::unique_ptr<Detector> make_unsafe_output_detector(std::vector<std::string> allowed_hosts) {
  return std::make_unique<UnsafeOutputDetector>(std::move(allowed_hosts));
}

}  // namespace agentwall::detect

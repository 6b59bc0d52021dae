#include "agent/detect/schema.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/common/pcre2.h"

namespace agentwall::detect {
namespace {

using nlohmann::json;

// Nested subschema applications (through properties, items, $ref, combinators) before the
// rest of a branch is given up on, and subschema applications in total. A legitimate schema
// and instance stay far below both; a cyclic $ref or an anyOf of anyOfs does not.
constexpr int kMaxDepth = 200;
constexpr size_t kMaxSteps = 200'000;
// Structured values deeper than this are not compared for enum, const and uniqueItems
// (nlohmann's comparison recurses).
constexpr int kMaxCompareDepth = 256;

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
inline bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
inline char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

std::string escape_token(std::string_view key) {
  std::string r;
  for (char c : key) {
    if (c == '~')
      r += "~0";
    else if (c == '/')
      r += "~1";
    else
      r += c;
  }
  return r;
}

// At most `cap` bytes of `s`, not cutting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t cap) {
  if (s.size() <= cap) return s;
  size_t n = cap;
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

std::string quote(std::string_view s, size_t cap = 32) {
  const std::string_view p = utf8_prefix(s, cap);
  std::string r = json(std::string(p)).dump(-1, ' ', false, json::error_handler_t::replace);
  if (p.size() < s.size()) r.insert(r.size() - 1, "\xE2\x80\xA6");
  return r;
}

// A value for a message: scalars shortly, structures by kind only.
std::string render(const json& v) {
  if (v.is_string()) return quote(v.get_ref<const std::string&>());
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool integral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return integral(v) ? "integer" : "number";
    default:
      return "binary";
  }
}

bool has_type(const json& v, std::string_view t) {
  if (t == "null") return v.is_null();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  if (t == "number") return v.is_number();
  if (t == "integer") return integral(v);
  return true;  // unknown names constrain nothing
}

bool known_type(std::string_view t) {
  return t == "null" || t == "boolean" || t == "string" || t == "array" || t == "object" ||
         t == "number" || t == "integer";
}

// A count keyword's value: a non-negative integer, also 3.0 or "3" (Gemini's int64 fields
// arrive as strings). -1 when it is none of those.
int64_t count_of(const json& v) {
  if (v.is_number_unsigned()) return int64_t(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
  if (v.is_number_integer()) return v.get<int64_t>() < 0 ? -1 : v.get<int64_t>();
  if (v.is_number_float() && integral(v) && v.get<double>() >= 0)
    return v.get<double>() >= 9.2e18 ? INT64_MAX : int64_t(v.get<double>());
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), is_digit)) return -1;
    return std::stoll(s);
  }
  return -1;
}

// A number keyword's value, also from a numeric string.
bool number_of(const json& v, json& out) {
  if (v.is_number()) {
    out = v;
    return true;
  }
  if (v.is_string()) {
    const json p = json::parse(v.get_ref<const std::string&>(), nullptr, false);
    if (p.is_number()) {
      out = p;
      return true;
    }
  }
  return false;
}

// Exact for integers of either signedness; long double otherwise.
int compare_numbers(const json& a, const json& b) {
  auto wide = [](const json& v) -> __int128 {
    return v.is_number_unsigned() ? __int128(v.get<uint64_t>()) : __int128(v.get<int64_t>());
  };
  if (a.is_number_integer() && b.is_number_integer()) {
    const __int128 x = wide(a), y = wide(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const long double x = a.get<long double>(), y = b.get<long double>();
  return x < y ? -1 : x > y ? 1 : 0;
}

bool multiple_of(const json& x, const json& m) {
  if (x.is_number_integer() && m.is_number_integer()) {
    const __int128 a = x.is_number_unsigned() ? __int128(x.get<uint64_t>()) : x.get<int64_t>();
    const __int128 b = m.is_number_unsigned() ? __int128(m.get<uint64_t>()) : m.get<int64_t>();
    return b == 0 || a % b == 0;
  }
  const double q = x.get<double>() / m.get<double>();
  if (!std::isfinite(q)) return true;  // cannot tell: not reported
  return std::fabs(q - std::round(q)) <= 1e-9 * std::max(1.0, std::fabs(q));
}

bool shallower_than(const json& v, int limit) {
  if (limit <= 0) return false;
  if (v.is_array())
    return std::all_of(v.begin(), v.end(),
                       [&](const json& e) { return shallower_than(e, limit - 1); });
  if (v.is_object())
    return std::all_of(v.begin(), v.end(),
                       [&](const json& e) { return shallower_than(e, limit - 1); });
  return true;
}

size_t code_points(std::string_view s) {
  return size_t(std::count_if(s.begin(), s.end(),
                              [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; }));
}

std::string plural(int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// ---------------------------------------------------------------------------------------
// Formats.

bool digits(std::string_view s, size_t at, size_t n, int& v) {
  if (at + n > s.size()) return false;
  v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!is_digit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  return true;
}

bool valid_date(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 0, 4, y) || !digits(s, 5, 2, m) ||
      !digits(s, 8, 2, d))
    return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

// RFC 3339 full-time: HH:MM:SS[.frac](Z|±HH:MM).
bool valid_time(std::string_view s) {
  int h, mi, sec;
  if (s.size() < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 0, 2, h) || !digits(s, 3, 2, mi) ||
      !digits(s, 6, 2, sec))
    return false;
  if (h > 23 || mi > 59 || sec > 60) return false;
  size_t p = 8;
  if (p < s.size() && s[p] == '.') {
    const size_t f = ++p;
    while (p < s.size() && is_digit(s[p])) ++p;
    if (p == f) return false;
  }
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) return p + 1 == s.size();
  int oh, om;
  if (p + 6 != s.size() || (s[p] != '+' && s[p] != '-') || s[p + 3] != ':' ||
      !digits(s, p + 1, 2, oh) || !digits(s, p + 4, 2, om))
    return false;
  return oh <= 23 && om <= 59;
}

bool valid_date_time(std::string_view s) {
  return s.size() > 11 && (s[10] == 'T' || s[10] == 't') && valid_date(s.substr(0, 10)) &&
         valid_time(s.substr(11));
}

bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t i = 0;
  while (true) {
    size_t dot = s.find('.', i);
    if (dot == std::string_view::npos) dot = s.size();
    const std::string_view label = s.substr(i, dot - i);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; }))
      return false;
    if (dot == s.size()) return true;
    i = dot + 1;
  }
}

bool valid_email(std::string_view s) {
  const size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return false;
  const std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  static constexpr std::string_view kLocal = "!#$%&'*+/=?^_`{|}~.-";
  for (char c : local)
    if (!is_alnum(c) && kLocal.find(c) == std::string_view::npos) return false;
  return domain.find('.') != std::string_view::npos && valid_hostname(domain);
}

bool valid_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

// RFC 3986 absolute URI: a scheme, ':', then only characters a URI may hold, with valid
// percent escapes.
bool valid_uri(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(s[0])) return false;
  for (size_t i = 1; i < colon; ++i)
    if (!is_alnum(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.') return false;
  static constexpr std::string_view kAllowed = "-._~:/?#[]@!$&'()*+,;=";
  for (size_t i = colon + 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
      i += 2;
    } else if (!is_alnum(c) && kAllowed.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t dot = s.find('.', i);
    if (dot == std::string_view::npos) dot = s.size();
    const std::string_view p = s.substr(i, dot - i);
    int v;
    if (p.empty() || p.size() > 3 || !digits(p, 0, p.size(), v) || v > 255 ||
        (p.size() > 1 && p[0] == '0'))
      return false;
    ++parts;
    if (dot == s.size()) break;
    i = dot + 1;
  }
  return parts == 4;
}

bool valid_ipv6(std::string_view s) {
  if (s.size() > 45) return false;
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET6, std::string(s).c_str(), buf.data()) == 1;
}

// Known formats: true with `ok` set. Unknown formats constrain nothing.
bool check_format(std::string_view format, std::string_view s, bool& ok) {
  if (format == "email")
    ok = valid_email(s);
  else if (format == "date-time")
    ok = valid_date_time(s);
  else if (format == "date")
    ok = valid_date(s);
  else if (format == "time")
    ok = valid_time(s);
  else if (format == "uuid")
    ok = valid_uuid(s);
  else if (format == "uri")
    ok = valid_uri(s);
  else if (format == "ipv4")
    ok = valid_ipv4(s);
  else if (format == "ipv6")
    ok = valid_ipv6(s);
  else if (format == "hostname")
    ok = valid_hostname(s);
  else
    return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// Patterns: PCRE2 in UTF mode (ECMA-262 patterns are mostly valid PCRE2), searched, not
// anchored. Match work is capped so a catastrophic pattern ("(a+)+$") from a hostile or
// careless schema costs milliseconds.

using pcre2::CodeFree;
using pcre2::MatchContextFree;
using pcre2::MatchDataFree;

const pcre2_match_context* pattern_context() {
  static const std::unique_ptr<pcre2_match_context, MatchContextFree> ctx = [] {
    std::unique_ptr<pcre2_match_context, MatchContextFree> c(pcre2_match_context_create(nullptr));
    if (!c) throw std::bad_alloc();
    pcre2_set_match_limit(c.get(), 100'000);
    pcre2_set_depth_limit(c.get(), 5'000);
    pcre2_set_heap_limit(c.get(), 16 * 1024);  // KiB
    return c;
  }();
  return ctx.get();
}

struct Pattern {
  std::shared_ptr<pcre2_code> code;  // null when it does not compile
  std::string error;
};

enum class Match { kYes, kNo, kError };

Match run_pattern(const Pattern& p, std::string_view s) {
  std::unique_ptr<pcre2_match_data, MatchDataFree> md(
      pcre2_match_data_create_from_pattern(p.code.get(), nullptr));
  if (!md) throw std::bad_alloc();
  const int rc = pcre2_match(p.code.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0,
                             md.get(), const_cast<pcre2_match_context*>(pattern_context()));
  if (rc >= 0) return Match::kYes;
  if (rc == PCRE2_ERROR_NOMATCH) return Match::kNo;
  return Match::kError;
}

// ---------------------------------------------------------------------------------------

struct Sink {
  std::vector<SchemaViolation> v;
  size_t max;
  bool full() const { return v.size() >= max; }
  void add(const std::string& ptr, std::string msg) {
    if (!full()) v.push_back({ptr, std::move(msg)});
  }
};

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  void validate(const json& schema, const json& inst, std::string& ptr, int depth, Sink& out) {
    if (out.full() || aborted_) return;
    if (++steps_ > kMaxSteps) {
      // Everything stops: whatever is still unchecked cannot be called valid.
      aborted_ = true;
      limit_ = {ptr, "schema too complex to check (more than " + std::to_string(kMaxSteps) +
                         " steps); not checked"};
      out.add(ptr, limit_.message);
      return;
    }
    if (depth > kMaxDepth) {
      // Only this branch fails: a cyclic $ref would otherwise recurse until the stack ends,
      // and an anyOf may still succeed through another alternative.
      out.add(ptr, "nesting deeper than " + std::to_string(kMaxDepth) +
                       " schema levels (cyclic $ref?); not checked");
      return;
    }
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) out.add(ptr, "no value allowed here (schema is false)");
      return;
    }
    if (!schema.is_object()) return;

    if (const auto it = schema.find("$ref"); it != schema.end() && it->is_string()) {
      const json* target = resolve(it->get_ref<const std::string&>());
      if (!target) {
        out.add(ptr, "cannot resolve $ref " + quote(it->get_ref<const std::string&>(), 80));
        return;
      }
      validate(*target, inst, ptr, depth + 1, out);
    }

    if (inst.is_null()) {
      const auto n = schema.find("nullable");
      if (n != schema.end() && n->is_boolean() && n->get<bool>()) return;
    }
    if (!check_type(schema, inst, ptr, out)) return;
    check_enum_const(schema, inst, ptr, out);
    if (inst.is_number()) check_number(schema, inst, ptr, out);
    if (inst.is_string()) check_string(schema, inst.get_ref<const std::string&>(), ptr, out);
    if (inst.is_array()) check_array(schema, inst, ptr, depth, out);
    if (inst.is_object()) check_object(schema, inst, ptr, depth, out);
    check_combinators(schema, inst, ptr, depth, out);
  }

  struct Limit {
    std::string pointer, message;
  };
  const Limit& limit() const { return limit_; }

 private:
  // "#", "#/$defs/a", "#/definitions/a~1b", "#/properties/x/items": local pointers only.
  const json* resolve(std::string_view ref) const {
    if (ref.empty() || ref[0] != '#') return nullptr;
    std::string frag;
    for (size_t i = 1; i < ref.size(); ++i) {
      if (ref[i] == '%' && i + 2 < ref.size() && is_hex(ref[i + 1]) && is_hex(ref[i + 2])) {
        frag += char(std::stoi(std::string(ref.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        frag += ref[i];
      }
    }
    const json* cur = &root_;
    if (frag.empty()) return cur;
    if (frag[0] != '/') return nullptr;
    size_t i = 1;
    while (true) {
      size_t slash = frag.find('/', i);
      if (slash == std::string::npos) slash = frag.size();
      std::string tok;
      for (size_t k = i; k < slash; ++k) {
        if (frag[k] == '~' && k + 1 < slash && (frag[k + 1] == '0' || frag[k + 1] == '1')) {
          tok += frag[k + 1] == '0' ? '~' : '/';
          ++k;
        } else {
          tok += frag[k];
        }
      }
      if (cur->is_object()) {
        const auto it = cur->find(tok);
        if (it == cur->end()) return nullptr;
        cur = &*it;
      } else if (cur->is_array()) {
        if (tok.empty() || tok.size() > 9 || !std::all_of(tok.begin(), tok.end(), is_digit))
          return nullptr;
        const size_t idx = std::stoul(tok);
        if (idx >= cur->size()) return nullptr;
        cur = &(*cur)[idx];
      } else {
        return nullptr;
      }
      if (slash == frag.size()) return cur;
      i = slash + 1;
    }
  }

  bool check_type(const json& schema, const json& inst, const std::string& ptr, Sink& out) {
    const auto it = schema.find("type");
    if (it == schema.end()) return true;
    std::vector<std::string> names;
    if (it->is_string()) {
      names.push_back(to_lower(it->get_ref<const std::string&>()));
    } else if (it->is_array()) {
      for (const json& t : *it)
        if (t.is_string()) names.push_back(to_lower(t.get_ref<const std::string&>()));
    }
    names.erase(std::remove_if(names.begin(), names.end(),
                               [](const std::string& n) { return !known_type(n); }),
                names.end());
    if (names.empty()) return true;
    for (const std::string& n : names)
      if (has_type(inst, n)) return true;
    std::string msg = "expected ";
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) msg += i + 1 == names.size() ? " or " : ", ";
      msg += names[i];
    }
    out.add(ptr, msg + ", got " + type_name(inst));
    return false;
  }

  void check_enum_const(const json& schema, const json& inst, const std::string& ptr, Sink& out) {
    const auto en = schema.find("enum");
    const auto co = schema.find("const");
    if (en == schema.end() && co == schema.end()) return;
    if (!inst.is_primitive() && !shallower_than(inst, kMaxCompareDepth)) {
      out.add(ptr, "value nested too deeply to compare with enum/const; not checked");
      return;
    }
    const std::string shown = inst.is_primitive() ? "value " + render(inst) : render(inst);
    if (en != schema.end() && en->is_array() &&
        std::none_of(en->begin(), en->end(), [&](const json& e) { return e == inst; }))
      out.add(ptr, shown + " not in enum");
    if (co != schema.end() && !(*co == inst))
      out.add(ptr, shown + " is not the const " + render(*co));
  }

  void check_number(const json& schema, const json& x, const std::string& ptr, Sink& out) {
    const std::string xs = render(x);
    json v;
    auto bool_kw = [&](const char* k) {
      const auto it = schema.find(k);
      return it != schema.end() && it->is_boolean() && it->get<bool>();
    };
    if (const auto it = schema.find("minimum"); it != schema.end() && number_of(*it, v)) {
      if (bool_kw("exclusiveMinimum")) {  // draft 4
        if (compare_numbers(x, v) <= 0)
          out.add(ptr, xs + " is not greater than exclusive minimum " + render(v));
      } else if (compare_numbers(x, v) < 0) {
        out.add(ptr, xs + " is less than minimum " + render(v));
      }
    }
    if (const auto it = schema.find("maximum"); it != schema.end() && number_of(*it, v)) {
      if (bool_kw("exclusiveMaximum")) {
        if (compare_numbers(x, v) >= 0)
          out.add(ptr, xs + " is not less than exclusive maximum " + render(v));
      } else if (compare_numbers(x, v) > 0) {
        out.add(ptr, xs + " is greater than maximum " + render(v));
      }
    }
    if (const auto it = schema.find("exclusiveMinimum");
        it != schema.end() && it->is_number() && compare_numbers(x, *it) <= 0)
      out.add(ptr, xs + " is not greater than exclusive minimum " + render(*it));
    if (const auto it = schema.find("exclusiveMaximum");
        it != schema.end() && it->is_number() && compare_numbers(x, *it) >= 0)
      out.add(ptr, xs + " is not less than exclusive maximum " + render(*it));
    if (const auto it = schema.find("multipleOf");
        it != schema.end() && number_of(*it, v) && v.get<double>() > 0 && !multiple_of(x, v))
      out.add(ptr, xs + " is not a multiple of " + render(v));
  }

  const Pattern& pattern(const std::string& src) {
    const auto it = patterns_.find(src);
    if (it != patterns_.end()) return it->second;
    Pattern p;
    int error = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(src.data()), src.size(),
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &error, &at, nullptr);
    if (code) {
      pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
      p.code.reset(code, CodeFree());
    } else {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      p.error = reinterpret_cast<const char*>(message.data());
    }
    return patterns_.emplace(src, std::move(p)).first->second;
  }

  // kYes/kNo, or kError after reporting why the pattern could not be used.
  Match matches(const std::string& src, std::string_view s, const std::string& ptr, Sink& out) {
    const Pattern& p = pattern(src);
    if (!p.code) {
      out.add(ptr, "schema pattern " + quote(src, 60) + " does not compile: " + p.error);
      return Match::kError;
    }
    const Match m = run_pattern(p, s);
    if (m == Match::kError)
      out.add(ptr, "pattern " + quote(src, 60) + " too costly to check against this string");
    return m;
  }

  void check_string(const json& schema, const std::string& s, const std::string& ptr, Sink& out) {
    const size_t len = code_points(s);
    if (const auto it = schema.find("minLength"); it != schema.end()) {
      const int64_t n = count_of(*it);
      if (n >= 0 && int64_t(len) < n) out.add(ptr, "string shorter than " + std::to_string(n));
    }
    if (const auto it = schema.find("maxLength"); it != schema.end()) {
      const int64_t n = count_of(*it);
      if (n >= 0 && int64_t(len) > n) out.add(ptr, "string longer than " + std::to_string(n));
    }
    if (const auto it = schema.find("pattern"); it != schema.end() && it->is_string()) {
      const std::string& src = it->get_ref<const std::string&>();
      if (matches(src, s, ptr, out) == Match::kNo)
        out.add(ptr, "string does not match pattern " + quote(src, 60));
    }
    if (const auto it = schema.find("format"); it != schema.end() && it->is_string()) {
      const std::string f = to_lower(it->get_ref<const std::string&>());
      bool ok = true;
      if (check_format(f, s, ok) && !ok) out.add(ptr, "not a valid " + f);
    }
  }

  void check_array(const json& schema, const json& a, std::string& ptr, int depth, Sink& out) {
    const int64_t n = int64_t(a.size());
    if (const auto it = schema.find("minItems"); it != schema.end()) {
      const int64_t m = count_of(*it);
      if (m >= 0 && n < m)
        out.add(ptr, plural(n, "item", "items") + ", at least " + std::to_string(m) + " required");
    }
    if (const auto it = schema.find("maxItems"); it != schema.end()) {
      const int64_t m = count_of(*it);
      if (m >= 0 && n > m)
        out.add(ptr, plural(n, "item", "items") + ", at most " + std::to_string(m) + " allowed");
    }
    if (const auto it = schema.find("uniqueItems");
        it != schema.end() && it->is_boolean() && it->get<bool>())
      check_unique(a, ptr, out);

    // 2020-12: prefixItems + items for the rest. Draft 7: items as a list + additionalItems.
    const json* prefix = nullptr;
    const json* rest = nullptr;
    const auto pi = schema.find("prefixItems");
    const auto items = schema.find("items");
    if (pi != schema.end() && pi->is_array()) {
      prefix = &*pi;
      if (items != schema.end()) rest = &*items;
    } else if (items != schema.end() && items->is_array()) {
      prefix = &*items;
      if (const auto ai = schema.find("additionalItems"); ai != schema.end()) rest = &*ai;
    } else if (items != schema.end()) {
      rest = &*items;
    }
    const size_t np = prefix ? prefix->size() : 0;
    if (rest && rest->is_boolean() && !rest->get<bool>() && a.size() > np) {
      out.add(ptr, plural(n, "item", "items") + ", at most " + std::to_string(np) + " allowed");
      rest = nullptr;
    }
    const size_t base = ptr.size();
    for (size_t i = 0; i < a.size() && !out.full(); ++i) {
      const json* sub = i < np ? &(*prefix)[i] : rest;
      if (!sub) continue;
      ptr += '/';
      ptr += std::to_string(i);
      validate(*sub, a[i], ptr, depth + 1, out);
      ptr.resize(base);
    }

    if (const auto c = schema.find("contains"); c != schema.end()) {
      bool any = false;
      for (size_t i = 0; i < a.size() && !any; ++i) {
        Sink probe{{}, 1};
        ptr += '/';
        ptr += std::to_string(i);
        validate(*c, a[i], ptr, depth + 1, probe);
        ptr.resize(base);
        any = probe.v.empty();
      }
      if (!any) out.add(ptr, "no item matches \"contains\"");
    }
  }

  void check_unique(const json& a, const std::string& ptr, Sink& out) {
    if (!shallower_than(a, kMaxCompareDepth)) {
      out.add(ptr, "items nested too deeply to compare for uniqueItems; not checked");
      return;
    }
    std::vector<size_t> order(a.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a[x] < a[y]; });
    for (size_t k = 1; k < order.size(); ++k) {
      if (a[order[k - 1]] == a[order[k]]) {
        const size_t x = std::min(order[k - 1], order[k]), y = std::max(order[k - 1], order[k]);
        out.add(ptr, "items " + std::to_string(x) + " and " + std::to_string(y) + " are equal");
        return;
      }
    }
  }

  void check_object(const json& schema, const json& o, std::string& ptr, int depth, Sink& out) {
    const int64_t n = int64_t(o.size());
    if (const auto it = schema.find("minProperties"); it != schema.end()) {
      const int64_t m = count_of(*it);
      if (m >= 0 && n < m)
        out.add(ptr, plural(n, "property", "properties") + ", at least " + std::to_string(m) +
                         " required");
    }
    if (const auto it = schema.find("maxProperties"); it != schema.end()) {
      const int64_t m = count_of(*it);
      if (m >= 0 && n > m)
        out.add(ptr, plural(n, "property", "properties") + ", at most " + std::to_string(m) +
                         " allowed");
    }
    if (const auto req = schema.find("required"); req != schema.end() && req->is_array()) {
      for (const json& r : *req)
        if (r.is_string() && !o.contains(r.get_ref<const std::string&>()))
          out.add(ptr, "missing required property " + quote(r.get_ref<const std::string&>(), 64));
    }
    const auto props = schema.find("properties");
    const auto pprops = schema.find("patternProperties");
    const auto addl = schema.find("additionalProperties");
    const auto names = schema.find("propertyNames");
    const size_t base = ptr.size();
    for (auto it = o.begin(); it != o.end() && !out.full(); ++it) {
      const std::string& key = it.key();
      ptr += '/';
      ptr += escape_token(key);
      bool matched = false;
      if (props != schema.end() && props->is_object()) {
        const auto p = props->find(key);
        if (p != props->end()) {
          matched = true;
          validate(*p, it.value(), ptr, depth + 1, out);
        }
      }
      if (pprops != schema.end() && pprops->is_object()) {
        for (auto pp = pprops->begin(); pp != pprops->end(); ++pp) {
          const Match m = matches(pp.key(), key, ptr, out);
          if (m == Match::kError) matched = true;  // reported; not also "additional"
          if (m != Match::kYes) continue;
          matched = true;
          validate(pp.value(), it.value(), ptr, depth + 1, out);
        }
      }
      if (names != schema.end()) validate(*names, json(key), ptr, depth + 1, out);
      ptr.resize(base);
      if (matched || addl == schema.end()) continue;
      if (addl->is_boolean()) {
        if (!addl->get<bool>())
          out.add(ptr, "additional property " + quote(key, 64) + " not allowed");
      } else {
        ptr += '/';
        ptr += escape_token(key);
        validate(*addl, it.value(), ptr, depth + 1, out);
        ptr.resize(base);
      }
    }
  }

  // One violation for a failed anyOf/oneOf: "expected string or null, got integer" when every
  // alternative failed on type alone, else the alternative that got furthest.
  static std::string none_matched(const char* kw, const std::vector<Sink>& tries,
                                  const std::string& ptr) {
    std::vector<std::string> expected;
    std::string got;
    bool types_only = true;
    for (const Sink& t : tries) {
      if (t.v.empty()) continue;
      const SchemaViolation& v = t.v[0];
      const size_t g = v.message.rfind(", got ");
      if (v.pointer != ptr || !v.message.starts_with("expected ") || g == std::string::npos ||
          v.message.find(" is not the const ") != std::string::npos) {
        types_only = false;
        break;
      }
      expected.push_back(v.message.substr(9, g - 9));
      got = v.message.substr(g + 6);
    }
    if (types_only && !expected.empty()) {
      std::string msg = "expected ";
      for (size_t i = 0; i < expected.size(); ++i) {
        if (i) msg += i + 1 == expected.size() ? " or " : ", ";
        msg += expected[i];
      }
      return msg + ", got " + got;
    }
    const SchemaViolation* best = nullptr;
    for (const Sink& t : tries)
      if (!t.v.empty() && (!best || t.v[0].pointer.size() > best->pointer.size())) best = &t.v[0];
    std::string msg =
        "matches none of the " + std::to_string(tries.size()) + " " + kw + " alternatives";
    if (best) {
      msg += "; closest: ";
      if (best->pointer != ptr) msg += "at " + best->pointer + ": ";
      msg += best->message;
    }
    return msg;
  }

  void check_combinators(const json& schema, const json& inst, std::string& ptr, int depth,
                         Sink& out) {
    if (const auto all = schema.find("allOf"); all != schema.end() && all->is_array())
      for (const json& s : *all) validate(s, inst, ptr, depth + 1, out);

    auto try_each = [&](const json& list) {
      std::vector<Sink> tries;
      for (const json& s : list) {
        tries.push_back({{}, 1});
        validate(s, inst, ptr, depth + 1, tries.back());
      }
      return tries;
    };
    if (const auto any = schema.find("anyOf"); any != schema.end() && any->is_array()) {
      const std::vector<Sink> tries = try_each(*any);
      if (!tries.empty() &&
          std::none_of(tries.begin(), tries.end(), [](const Sink& t) { return t.v.empty(); }))
        out.add(ptr, none_matched("anyOf", tries, ptr));
    }
    if (const auto one = schema.find("oneOf"); one != schema.end() && one->is_array()) {
      const std::vector<Sink> tries = try_each(*one);
      std::vector<size_t> ok;
      for (size_t i = 0; i < tries.size(); ++i)
        if (tries[i].v.empty()) ok.push_back(i);
      if (ok.empty() && !tries.empty()) {
        out.add(ptr, none_matched("oneOf", tries, ptr));
      } else if (ok.size() > 1) {
        out.add(ptr, "matches " + std::to_string(ok.size()) + " oneOf alternatives (" +
                         std::to_string(ok[0]) + " and " + std::to_string(ok[1]) +
                         "), exactly one allowed");
      }
    }
    if (const auto no = schema.find("not"); no != schema.end()) {
      Sink probe{{}, 1};
      validate(*no, inst, ptr, depth + 1, probe);
      if (probe.v.empty() && !aborted_) out.add(ptr, "must not match the \"not\" schema");
    }
    if (const auto cond = schema.find("if"); cond != schema.end()) {
      Sink probe{{}, 1};
      validate(*cond, inst, ptr, depth + 1, probe);
      const auto next = schema.find(probe.v.empty() ? "then" : "else");
      if (next != schema.end()) validate(*next, inst, ptr, depth + 1, out);
    }
  }

  const json& root_;
  size_t steps_ = 0;
  bool aborted_ = false;
  Limit limit_;
  std::map<std::string, Pattern> patterns_;
};

std::string_view trim(std::string_view s) {
  const auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && sp(s.front())) s.remove_prefix(1);
  while (!s.empty() && sp(s.back())) s.remove_suffix(1);
  return s;
}

// nlohmann's parse_error text without its "[json.exception…] " prefix and without the
// "last read: '…'" excerpt, which would quote the model's output back.
std::string parser_message(const std::string& what) {
  std::string m = what;
  if (m.starts_with("[json.exception")) {
    const size_t sp = m.find("] ");
    if (sp != std::string::npos) m.erase(0, sp + 2);
  }
  const size_t lr = m.find("; last read: '");
  if (lr != std::string::npos) {
    size_t end = m.rfind("'; ");
    if (end == std::string::npos || end < lr) end = m.size() - 1;
    m.erase(lr, end + 1 - lr);
  }
  return m;
}

}  // namespace

std::vector<SchemaViolation> validate_json(const json& schema, const json& instance,
                                           size_t max_violations) {
  if (max_violations == 0) return {};
  Validator v(schema);
  Sink out{{}, max_violations};
  std::string ptr;
  v.validate(schema, instance, ptr, 0, out);
  // Running out of steps inside an anyOf branch leaves no trace in `out`: say so, since
  // "valid" would be wrong.
  const auto& limit = v.limit();
  if (!limit.message.empty() &&
      std::none_of(out.v.begin(), out.v.end(),
                   [&](const SchemaViolation& x) { return x.message == limit.message; })) {
    if (out.full()) out.v.pop_back();
    out.v.push_back({limit.pointer, limit.message});
  }
  return std::move(out.v);
}

std::string_view strip_code_fence(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  for (size_t line = 0; line < text.size();) {
    size_t eol = text.find('\n', line);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view l = trim(text.substr(line, eol - line));
    if (l.starts_with("```") || l.starts_with("~~~")) {
      const std::string_view fence = l.substr(0, 3);
      const size_t body = std::min(eol + 1, text.size());
      size_t close = body;
      while (close < text.size()) {
        size_t ce = text.find('\n', close);
        if (ce == std::string_view::npos) ce = text.size();
        if (trim(text.substr(close, ce - close)).starts_with(fence))
          return trim(text.substr(body, close - body));
        close = ce + 1;
      }
      return trim(text.substr(body));  // unclosed: a cut-off stream
    }
    line = eol + 1;
  }
  return trim(text);
}

std::vector<SchemaViolation> validate_json_text(std::string_view text, const json& schema,
                                                size_t max_violations) {
  const std::string_view body = strip_code_fence(text);
  json instance;
  try {
    instance = json::parse(body);
  } catch (const json::parse_error& e) {
    return {{"", "not valid JSON: " + parser_message(e.what())}};
  }
  return validate_json(schema, instance, max_violations);
}

Finding schema_finding(const std::vector<SchemaViolation>& violations, std::string_view what) {
  Finding f;
  f.detector = "schema.violation";
  f.category = Category::kSchema;
  f.confidence = violations.empty() ? 0 : 1;
  if (violations.empty()) {
    f.explanation = std::string(what) + " matches the schema";
    return f;
  }
  f.explanation =
      std::string(violations.size() == 1 ? "Schema violation in " : "Schema violations in ") +
      std::string(what) + ": ";
  constexpr size_t kShown = 3;
  for (size_t i = 0; i < violations.size() && i < kShown; ++i) {
    if (i) f.explanation += "; ";
    f.explanation += violations[i].pointer.empty() ? "(root)" : violations[i].pointer;
    f.explanation += ": ";
    f.explanation += violations[i].message;
  }
  if (violations.size() > kShown)
    f.explanation += " (and " + std::to_string(violations.size() - kShown) + " more)";
  return f;
}

}  // namespace agentwall::detect

// Event formatters for SIEM sinks. Every formatter reads the event forgivingly: a field that
// is missing or of another type than documented is left out, never an exception. Output is
// built by appending to one string (no intermediate DOM); strings go through the event
// writer's escaper, so the JSON is valid whatever bytes the event holds.
#include "agent/sinks/format.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>
#include <vector>

#include "agent/common/json_writer.h"
#include "agent/common/time.h"

namespace agentwall::sinks {
namespace {

using std::string_view;

// ---------------------------------------------------------------------------------------
// Reading events

const json* member(const json& j, string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const json* member(const json* j, string_view key) {
  return j ? member(*j, key) : nullptr;
}

string_view str(const json* v) {
  return v && v->is_string() ? string_view(v->get_ref<const std::string&>()) : string_view();
}

string_view str(const json& j, string_view key) {
  return str(member(j, key));
}

// An integer from an integer, an integral float, or a string of digits ("4242").
std::optional<int64_t> integer(const json* v) {
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return int64_t(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e18) return std::nullopt;
    return int64_t(d);
  }
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    int64_t out = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty()) return out;
  }
  return std::nullopt;
}

std::optional<double> number(const json* v) {
  if (!v || !v->is_number()) return std::nullopt;
  const double d = v->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::optional<bool> boolean(const json* v) {
  if (!v || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

bool starts_with(string_view s, string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(string_view s, string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

string_view basename(string_view path) {
  const size_t slash = path.rfind('/');
  return slash == string_view::npos ? path : path.substr(slash + 1);
}

bool iequals(string_view a, string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// At most `max` bytes of `s`, not cutting a UTF-8 sequence.
string_view utf8_prefix(string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// ---------------------------------------------------------------------------------------
// Time: the proleptic Gregorian calendar, counted by hand (no locale, no timegm).

constexpr int64_t kNsPerSec = 1'000'000'000;

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool is_leap(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to y-m-d (y >= 1).
int64_t days_from_civil(int64_t y, int m, int d) {
  static constexpr int kBefore[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  const int64_t p = y - 1;  // whole years since 0001-01-01
  const int64_t from_year_one = p * 365 + p / 4 - p / 100 + p / 400;
  constexpr int64_t kEpochFromYearOne = 719162;  // 1969 * 365 + 492 - 19 + 4
  int64_t days = from_year_one - kEpochFromYearOne + kBefore[m - 1] + (d - 1);
  if (m > 2 && is_leap(y)) ++days;
  return days;
}

struct Civil {
  int64_t year;
  int month, day, hour, minute, second;
  int64_t nanos;
};

Civil civil_from_ns(int64_t ns) {
  const int64_t secs = floor_div(ns, kNsPerSec);
  Civil c{};
  c.nanos = ns - secs * kNsPerSec;
  const int64_t days = floor_div(secs, 86400);
  int64_t sod = secs - days * 86400;
  c.hour = int(sod / 3600);
  sod %= 3600;
  c.minute = int(sod / 60);
  c.second = int(sod % 60);
  // 146097 days per 400 years: a guess within a year, then corrected.
  int64_t y = 1970 + floor_div(days * 400, 146097);
  while (y > 1 && days_from_civil(y, 1, 1) > days) --y;
  while (days_from_civil(y + 1, 1, 1) <= days) ++y;
  int64_t doy = days - days_from_civil(y, 1, 1);
  int m = 1;
  while (m < 12 && doy >= days_in_month(y, m)) doy -= days_in_month(y, m++);
  c.year = y;
  c.month = m;
  c.day = int(doy) + 1;
  return c;
}

void append_digits(std::string& out, int64_t v, int width) {
  char buf[24];
  int n = 0;
  uint64_t u = v < 0 ? 0 : uint64_t(v);
  do {
    buf[n++] = char('0' + u % 10);
    u /= 10;
  } while (u && n < 20);
  for (int i = n; i < width; ++i) out += '0';
  while (n) out += buf[--n];
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

void append_rfc3339(std::string& out, int64_t ns, int digits) {
  const Civil c = civil_from_ns(ns);
  append_digits(out, c.year, 4);
  out += '-';
  append_digits(out, c.month, 2);
  out += '-';
  append_digits(out, c.day, 2);
  out += 'T';
  append_digits(out, c.hour, 2);
  out += ':';
  append_digits(out, c.minute, 2);
  out += ':';
  append_digits(out, c.second, 2);
  digits = std::clamp(digits, 0, 9);
  if (digits > 0) {
    int64_t frac = c.nanos;
    for (int i = digits; i < 9; ++i) frac /= 10;
    out += '.';
    append_digits(out, frac, digits);
  }
  out += 'Z';
}

// Parses exactly `n` digits at s[pos].
bool digits_at(string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

// The event's time in Unix ns: `time` as RFC 3339 or as a number (s, ms, µs or ns since the
// epoch, told apart by magnitude); the formatting time when it has none.
int64_t event_time_ns(const json& e) {
  const json* t = member(e, "time");
  int64_t ns = 0;
  if (t && t->is_string() && parse_rfc3339_ns(t->get_ref<const std::string&>(), ns)) return ns;
  if (auto d = number(t); d && *d > 0) {
    const double v = *d >= 1e17 ? *d : *d >= 1e14 ? *d * 1e3 : *d >= 1e11 ? *d * 1e6 : *d * 1e9;
    if (v < 9.2e18) return int64_t(v);
  }
  return int64_t(unix_now_ns());
}

// A latency in milliseconds as nanoseconds: none when missing, negative or over a year.
std::optional<int64_t> latency_ns(const json* ms) {
  const auto v = number(ms);
  if (!v || *v < 0 || *v > 3.2e10) return std::nullopt;
  return int64_t(std::llround(*v * 1e6));
}

// start + duration, the start when it would not fit.
int64_t plus(int64_t start, int64_t duration) {
  return duration > std::numeric_limits<int64_t>::max() - start ? start : start + duration;
}

// ---------------------------------------------------------------------------------------
// Writing JSON: like JsonWriter, plus numbers as JSON strings (proto3 int64), raw splices
// and whole nlohmann values.

class Out {
 public:
  explicit Out(std::string& s) : s_(s) {}

  Out& begin_object() {
    separate();
    s_ += '{';
    first_ = true;
    return *this;
  }
  Out& end_object() {
    s_ += '}';
    first_ = false;
    return *this;
  }
  Out& begin_array() {
    separate();
    s_ += '[';
    first_ = true;
    return *this;
  }
  Out& end_array() {
    s_ += ']';
    first_ = false;
    return *this;
  }
  Out& key(string_view k) {
    separate();
    JsonWriter::escape(s_, k);
    s_ += ':';
    after_key_ = true;
    return *this;
  }
  Out& str(string_view v) {
    separate();
    JsonWriter::escape(s_, v);
    return *this;
  }
  Out& i64(int64_t v) {
    separate();
    append_int(s_, v);
    return *this;
  }
  Out& u64(uint64_t v) {
    separate();
    char buf[24];
    s_.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
    return *this;
  }
  // An int64 as a JSON string, as the proto3 JSON mapping wants it.
  Out& i64_string(int64_t v) {
    separate();
    s_ += '"';
    append_int(s_, v);
    s_ += '"';
    return *this;
  }
  // A float; integral values keep a ".0" so that they read back as floats.
  Out& dbl(double v) {
    separate();
    if (!std::isfinite(v)) {
      s_ += "null";
      return *this;
    }
    char buf[32];
    char* end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
    s_.append(buf, end);
    if (std::find_if(buf, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) == end)
      s_ += ".0";
    return *this;
  }
  Out& boolean(bool v) {
    separate();
    s_ += v ? "true" : "false";
    return *this;
  }
  Out& null() {
    separate();
    s_ += "null";
    return *this;
  }
  Out& raw(string_view text) {
    separate();
    s_ += text;
    return *this;
  }
  Out& value(const json& j) {
    switch (j.type()) {
      case json::value_t::object:
        begin_object();
        for (const auto& [k, v] : j.get_ref<const json::object_t&>()) {
          key(k);
          value(v);
        }
        return end_object();
      case json::value_t::array:
        begin_array();
        for (const auto& v : j.get_ref<const json::array_t&>()) value(v);
        return end_array();
      case json::value_t::string:
        return str(j.get_ref<const std::string&>());
      case json::value_t::boolean:
        return boolean(j.get<bool>());
      case json::value_t::number_integer:
        return i64(j.get<int64_t>());
      case json::value_t::number_unsigned:
        return u64(j.get<uint64_t>());
      case json::value_t::number_float:
        return dbl(j.get<double>());
      default:
        return null();
    }
  }
  // The members of object `j` except `skip` (nothing when `j` is not an object).
  Out& members_except(const json& j, std::initializer_list<string_view> skip) {
    if (!j.is_object()) return *this;
    for (const auto& [k, v] : j.get_ref<const json::object_t&>()) {
      if (std::find(skip.begin(), skip.end(), string_view(k)) != skip.end()) continue;
      key(k);
      value(v);
    }
    return *this;
  }

  // key: value, only when there is a value.
  Out& opt_str(string_view k, string_view v) {
    if (!v.empty()) key(k).str(v);
    return *this;
  }
  Out& opt_i64(string_view k, std::optional<int64_t> v) {
    if (v) key(k).i64(*v);
    return *this;
  }

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) s_ += ',';
    first_ = false;
  }

  std::string& s_;
  bool first_ = true;
  bool after_key_ = false;
};

// True when object `j` has a key other than `skip`.
bool has_members_except(const json* j, std::initializer_list<string_view> skip) {
  if (!j || !j->is_object()) return false;
  for (const auto& [k, v] : j->get_ref<const json::object_t&>())
    if (std::find(skip.begin(), skip.end(), string_view(k)) == skip.end()) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// What the formatters share: the fields of an event that every format maps.

constexpr string_view kSeverityOcsf[] = {"Unknown", "Informational", "Low",  "Medium",
                                         "High",    "Critical",      "Fatal"};
constexpr string_view kSeverityShort[] = {"unknown", "info",     "low",  "medium",
                                          "high",    "critical", "fatal"};

int severity_from_name(string_view s) {
  if (iequals(s, "info") || iequals(s, "informational")) return 1;
  if (iequals(s, "low")) return 2;
  if (iequals(s, "medium") || iequals(s, "moderate") || iequals(s, "warning") || iequals(s, "warn"))
    return 3;
  if (iequals(s, "high")) return 4;
  if (iequals(s, "critical")) return 5;
  return 0;
}

// A counter that counts something lost (dropped, lost, missed, cut, unreadable) and is > 0.
bool reports_losses(const json* obj) {
  if (!obj || !obj->is_object()) return false;
  static constexpr string_view kLossWords[] = {"drop", "lost", "miss", "gap", "truncated", "fault"};
  for (const auto& [k, v] : obj->get_ref<const json::object_t&>()) {
    const auto n = number(&v);
    if (!n || *n <= 0) continue;
    for (string_view w : kLossWords)
      if (k.find(w) != std::string::npos) return true;
  }
  return false;
}

struct Process {
  std::optional<int64_t> pid, tid, ppid, uid;
  string_view exe, name, user, cmdline;
  bool any() const {
    return pid || tid || ppid || uid || !exe.empty() || !name.empty() || !user.empty();
  }
};

// `process` {pid, tid, ppid, uid, exe, name|comm, user, cmdline}; or the same at the top
// level for events without a process object.
Process process_of(const json& e) {
  const json* p = member(e, "process");
  if (!p || !p->is_object()) p = &e;
  Process r;
  r.pid = integer(member(*p, "pid"));
  r.tid = integer(member(*p, "tid"));
  r.ppid = integer(member(*p, "ppid"));
  r.uid = integer(member(*p, "uid"));
  r.exe = str(*p, "exe");
  r.name = str(*p, "name");
  if (r.name.empty()) r.name = str(*p, "comm");
  if (r.name.empty()) r.name = basename(r.exe);
  r.user = str(*p, "user");
  r.cmdline = str(*p, "cmdline");
  return r;
}

struct Llm {
  string_view provider, model, response_model, operation, host, response_id;
  std::optional<int64_t> exchange_id;
  bool any() const { return !provider.empty() || !model.empty() || !host.empty(); }
};

// An llm.exchange's own fields; an alert's `llm` object; enforce.action's exchange_id.
Llm llm_of(const json& e, string_view type) {
  Llm r;
  const json* src = nullptr;
  if (type == "llm.exchange") {
    src = &e;
    r.exchange_id = integer(member(e, "id"));
  } else if (const json* l = member(e, "llm"); l && l->is_object()) {
    src = l;
    r.exchange_id = integer(member(*l, "exchange_id"));
  }
  if (!r.exchange_id) r.exchange_id = integer(member(e, "exchange_id"));
  if (!src) return r;
  r.provider = str(*src, "provider");
  r.model = str(*src, "model");
  r.response_model = str(*src, "response_model");
  r.operation = str(*src, "operation");
  r.host = str(*src, "host");
  r.response_id = str(*src, "response_id");
  return r;
}

// gen_ai.operation.name for agentwall's operation.
string_view genai_operation(string_view op) {
  if (op == "completions" || op == "generate") return "text_completion";
  if (op == "responses") return "chat";
  return op;
}

// One line that says what happened.
std::string summary(const json& e, string_view type) {
  if (string_view m = str(e, "message"); !m.empty()) return std::string(m);
  std::string s;
  auto add = [&s](string_view part, string_view sep = " ") {
    if (part.empty()) return;
    if (!s.empty()) s += sep;
    s += part;
  };
  if (type == "budget.alert") {
    add("budget");
    add(str(e, "budget"));
    add(str(e, "state"));
    if (auto f = number(member(e, "level")); f && std::fabs(*f) < 1e6)
      add("at " + std::to_string(int(std::lround(*f * 100))) + "%");
    if (string_view k = str(e, "key"); !k.empty()) add("for " + std::string(k));
    return s;
  }
  if (type == "enforce.action") {
    add(str(e, "action"));
    if (boolean(member(e, "ok")) == false) add("failed");
    if (string_view r = str(e, "rule"); !r.empty()) add("by rule " + std::string(r));
    add(str(e, "reason"), ": ");
    if (!s.empty()) return s;
  }
  if (type == "llm.exchange") {
    const Llm l = llm_of(e, type);
    add(l.operation.empty() ? string_view("call") : l.operation);
    add(l.model);
    if (!l.provider.empty()) add("at " + std::string(l.provider));
    if (auto st = integer(member(e, "status")); st) add("status " + std::to_string(*st));
    return s;
  }
  if (type == "agent.health") {
    return reports_losses(member(e, "counters")) ? "agent health: losses reported" : "agent health";
  }
  if (string_view r = str(e, "rule"); !r.empty()) return "rule " + std::string(r) + " fired";
  if (string_view r = str(e, "reason"); !r.empty()) return std::string(r);
  if (!type.empty()) return std::string(type);
  return "agentwall event";
}

// The detection categories of `findings` (alerts) or `detection.findings` (exchanges).
std::vector<string_view> finding_categories(const json& e) {
  std::vector<string_view> out;
  const json* f = member(e, "findings");
  if (!f || !f->is_array()) f = member(member(e, "detection"), "findings");
  if (!f || !f->is_array()) return out;
  for (const auto& x : *f) {
    string_view c = str(x, "category");
    if (c.empty()) c = str(x, "detector");
    if (!c.empty() && std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  return out;
}

// OCSF action/disposition of an alert: what was done about it.
struct Disposition {
  int action_id;
  string_view action;
  int disposition_id;
  string_view disposition;
};

Disposition disposition_of(const json& e) {
  string_view done = str(e, "outcome");
  if (done.empty() && boolean(member(e, "enforced")) == true) done = str(e, "action");
  if (done == "block" || done == "kill") return {2, "Denied", 2, "Blocked"};
  if (done == "redact") return {1, "Allowed", 11, "Corrected"};
  if (done == "superseded") return {0, "Unknown", 15, "Detected"};
  if (done.empty() && str(e, "action").empty()) return {0, "Unknown", 15, "Detected"};
  return {1, "Allowed", 15, "Detected"};
}

std::string sha256(string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) len = 0;
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hex(string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// OCSF

void ocsf_process(Out& o, const Process& p) {
  o.begin_object();
  o.opt_i64("pid", p.pid).opt_i64("tid", p.tid);
  o.opt_str("name", p.name).opt_str("cmd_line", p.cmdline);
  if (!p.exe.empty()) {
    o.key("file").begin_object();
    o.key("name").str(basename(p.exe)).key("path").str(p.exe);
    o.key("type_id").i64(1).key("type").str("Regular File");
    o.end_object();
  }
  if (!p.user.empty() || p.uid) {
    o.key("user").begin_object().opt_str("name", p.user);
    if (p.uid) o.key("uid").str(std::to_string(*p.uid));
    o.end_object();
  }
  if (p.ppid) o.key("parent_process").begin_object().key("pid").i64(*p.ppid).end_object();
  o.end_object();
}

void ocsf_actor(Out& o, const Process& p) {
  if (!p.any()) return;
  o.key("actor").begin_object();
  o.key("process");
  ocsf_process(o, p);
  if (!p.user.empty() || p.uid) {
    o.key("user").begin_object().opt_str("name", p.user);
    if (p.uid) o.key("uid").str(std::to_string(*p.uid));
    o.end_object();
  }
  o.end_object();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public

bool parse_rfc3339_ns(string_view s, int64_t& unix_ns) {
  int y, mo, d, h, mi, sec;
  if (!digits_at(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits_at(s, 5, 2, mo) ||
      s[7] != '-' || !digits_at(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits_at(s, 11, 2, h) || s[13] != ':' || !digits_at(s, 14, 2, mi) || s[16] != ':' ||
      !digits_at(s, 17, 2, sec))
    return false;
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) {
        frac = frac * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return false;
    for (; n < 9; ++n) frac *= 10;
  }
  if (pos >= s.size()) return false;
  int offset_min = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits_at(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits_at(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return false;
    offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return false;
  }
  if (pos != s.size()) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return false;
  if (y < 1678 || y > 2261) return false;  // int64 nanoseconds
  const int64_t secs =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - int64_t(offset_min) * 60;
  unix_ns = secs * kNsPerSec + frac;
  return true;
}

std::string format_rfc3339_utc(int64_t unix_ns, int digits) {
  std::string out;
  out.reserve(32);
  append_rfc3339(out, unix_ns, digits);
  return out;
}

bool parse_format(string_view name, Format& out) {
  static constexpr std::pair<string_view, Format> kNames[] = {{"json", Format::kJson},
                                                              {"ocsf", Format::kOcsf},
                                                              {"ecs", Format::kEcs},
                                                              {"cef", Format::kCef}};
  for (const auto& [n, f] : kNames) {
    if (iequals(name, n)) {
      out = f;
      return true;
    }
  }
  return false;
}

string_view to_string(Format f) {
  switch (f) {
    case Format::kJson:
      return "json";
    case Format::kOcsf:
      return "ocsf";
    case Format::kEcs:
      return "ecs";
    case Format::kCef:
      return "cef";
  }
  return "json";
}

bool is_alert(string_view type) {
  return type == "policy.alert" || type == "budget.alert" || type == "coverage.gap" ||
         type == "mcp.alert" || type == "alert.summary" || type == "sink.dropped" ||
         type == "alert" || ends_with(type, ".alert");
}

int severity_id(const json& event) {
  const string_view type = str(event, "type");
  if (is_alert(type)) {
    const json* sev = member(event, "severity");
    if (int s = severity_from_name(str(sev)); s) return s;
    if (auto n = integer(sev); n && *n >= 1) return int(std::min<int64_t>(*n, 5));
    return starts_with(type, "sink.") ? 2 : 3;
  }
  if (type == "agent.health")
    return reports_losses(member(event, "counters")) || reports_losses(member(event, "enforce"))
               ? 2
               : 1;
  if (starts_with(type, "sink.")) return reports_losses(&event) ? 2 : 1;
  return 1;
}

std::string to_json(const json& event) {
  std::string s;
  s.reserve(512);
  Out o(s);
  const json* type = member(event, "type");
  if (!type) {
    o.value(event);
    return s;
  }
  // "type" first, as on every event line; then the rest.
  o.begin_object().key("type").value(*type);
  o.members_except(event, {"type"});
  o.end_object();
  return s;
}

std::string to_ocsf(const json& e, const FormatContext& ctx) {
  const string_view type = str(e, "type");
  const bool alert = is_alert(type);
  const int sev = severity_id(e);
  const int64_t ns = event_time_ns(e);
  const int64_t ms = floor_div(ns, 1'000'000);
  const string_view event_id = str(e, "event_id");
  const auto seq = integer(member(e, "seq"));
  const string_view rule = str(e, "rule");
  const Process proc = process_of(e);
  const Llm llm = llm_of(e, type);
  const std::string text = summary(e, type);

  std::string s;
  s.reserve(1024);
  Out o(s);
  o.begin_object();
  if (alert) {
    o.key("activity_id").i64(1).key("activity_name").str("Create");
    o.key("category_uid").i64(2).key("category_name").str("Findings");
    o.key("class_uid").i64(2004).key("class_name").str("Detection Finding");
    o.key("type_uid").i64(200401).key("type_name").str("Detection Finding: Create");
  } else {
    o.key("activity_id").i64(99).key("activity_name").str("Other");
    o.key("category_uid").i64(0).key("category_name").str("Uncategorized");
    o.key("class_uid").i64(0).key("class_name").str("Base Event");
    o.key("type_uid").i64(99).key("type_name").str("Base Event: Other");
  }
  o.key("severity_id").i64(sev).key("severity").str(kSeverityOcsf[sev]);
  o.key("time").i64(ms);
  o.key("message").str(text);

  // status: a finding is New; an exchange or an enforcement succeeded or failed.
  if (alert) {
    o.key("status_id").i64(1).key("status").str("New");
  } else if (type == "llm.exchange") {
    const auto st = integer(member(e, "status"));
    const bool failed = (st && *st >= 400) || !str(e, "error").empty();
    if (failed || (st && *st > 0)) {
      o.key("status_id").i64(failed ? 2 : 1).key("status").str(failed ? "Failure" : "Success");
      if (st) o.key("status_code").str(std::to_string(*st));
      o.opt_str("status_detail", str(e, "error"));
    }
  } else if (auto ok = boolean(member(e, "ok")); ok) {
    o.key("status_id").i64(*ok ? 1 : 2).key("status").str(*ok ? "Success" : "Failure");
    o.opt_str("status_detail", str(e, "error"));
  }

  o.key("metadata").begin_object();
  o.key("version").str("1.3.0");
  o.key("product").begin_object();
  o.key("name").str("agentwall").key("vendor_name").str("agentwall");
  o.opt_str("version", ctx.version);
  o.end_object();
  o.opt_str("uid", event_id);
  o.opt_i64("sequence", seq);
  o.opt_str("event_code", type);
  o.opt_str("original_time", str(e, "time"));
  o.key("log_name").str("agentwall");
  o.key("profiles").begin_array().str("host");
  if (alert) o.str("security_control");
  o.end_array();
  o.end_object();

  string_view hostname = ctx.hostname;
  if (hostname.empty() && type == "agent.health") hostname = str(e, "host");
  if (!hostname.empty()) {
    o.key("device").begin_object();
    o.key("hostname").str(hostname).key("type_id").i64(0).key("type").str("Unknown");
    o.end_object();
  }
  ocsf_actor(o, proc);

  if (alert) {
    std::string title = rule.empty() ? text : std::string(rule) + ": " + text;
    string_view analytic = rule;
    if (analytic.empty()) analytic = str(e, "budget");
    if (analytic.empty()) analytic = type.empty() ? string_view("agentwall") : type;
    o.key("finding_info").begin_object();
    o.key("uid").str(event_id.empty() ? string_view(text) : event_id);
    o.key("title").str(utf8_prefix(title, 1024));
    o.key("desc").str(text);
    o.key("types").begin_array();
    const auto cats = finding_categories(e);
    if (cats.empty()) o.str(type.empty() ? string_view("alert") : type);
    for (string_view c : cats) o.str(c);
    o.end_array();
    o.key("analytic").begin_object();
    o.key("name").str(analytic).key("uid").str(analytic);
    o.key("type_id").i64(1).key("type").str("Rule");
    o.end_object();
    o.key("created_time").i64(ms);
    o.end_object();

    const Disposition d = disposition_of(e);
    o.key("action_id").i64(d.action_id).key("action").str(d.action);
    o.key("disposition_id").i64(d.disposition_id).key("disposition").str(d.disposition);

    if (!llm.model.empty()) {
      o.key("resources").begin_array().begin_object();
      o.key("name").str(llm.model).key("type").str("AI Model");
      if (!llm.provider.empty() || !llm.operation.empty()) {
        o.key("data").begin_object().opt_str("provider", llm.provider);
        o.opt_str("operation", llm.operation).end_object();
      }
      o.end_object().end_array();
    }
    const json* findings = member(e, "findings");
    if (proc.any() || llm.any() || findings) {
      o.key("evidences").begin_array().begin_object();
      if (proc.any()) {
        o.key("process");
        ocsf_process(o, proc);
      }
      if (!llm.host.empty())
        o.key("dst_endpoint").begin_object().key("hostname").str(llm.host).end_object();
      o.key("data").begin_object();
      if (const json* l = member(e, "llm"); l && l->is_object()) o.key("llm").value(*l);
      if (findings) o.key("findings").value(*findings);
      o.opt_str("direction", str(e, "direction"));
      o.end_object();
      o.end_object().end_array();
    }
    o.key("unmapped").begin_object();
    o.members_except(e,
                     {"type", "time", "event_id", "seq", "severity", "message", "rule", "process"});
    if (has_members_except(member(e, "process"), {"pid", "tid", "ppid", "uid", "exe", "name",
                                                  "comm", "user", "cmdline"})) {
      o.key("process").begin_object();
      o.members_except(*member(e, "process"),
                       {"pid", "tid", "ppid", "uid", "exe", "name", "comm", "user", "cmdline"});
      o.end_object();
    }
    o.end_object();
  } else {
    if (type == "llm.exchange") {
      if (auto total = latency_ns(member(member(e, "latency_ms"), "total")); total) {
        const int64_t dur = (*total + 500'000) / 1'000'000;
        o.key("start_time").i64(ms).key("end_time").i64(plus(ms, dur)).key("duration").i64(dur);
      }
    }
    o.key("unmapped");
    if (e.is_object())
      o.value(e);
    else
      o.begin_object().end_object();
  }
  o.end_object();
  return s;
}

std::string to_ecs(const json& e, const FormatContext& ctx) {
  const string_view type = str(e, "type");
  const bool alert = is_alert(type);
  const int sev = severity_id(e);
  const int64_t ns = event_time_ns(e);
  const string_view event_id = str(e, "event_id");
  const auto seq = integer(member(e, "seq"));
  const string_view rule = str(e, "rule");
  const Process proc = process_of(e);
  const Llm llm = llm_of(e, type);
  const bool exchange = type == "llm.exchange";
  const int64_t status = exchange ? integer(member(e, "status")).value_or(0) : 0;

  std::string s;
  s.reserve(1024);
  Out o(s);
  o.begin_object();
  o.key("@timestamp");
  {
    std::string ts;
    append_rfc3339(ts, ns, 3);
    o.str(ts);
  }
  o.key("ecs").begin_object().key("version").str("8.17.0").end_object();
  o.key("message").str(summary(e, type));
  if (const json* tags = member(e, "tags"); tags && tags->is_array()) {
    o.key("tags").begin_array();
    for (const auto& t : *tags)
      if (t.is_string()) o.str(t.get_ref<const std::string&>());
    o.end_array();
  }

  // event.*
  string_view kind = alert ? "alert" : type == "agent.health" ? "metric" : "event";
  string_view category = "host", etype = "info";
  string_view done = str(e, "outcome");
  if (done.empty() && boolean(member(e, "enforced")) == true) done = str(e, "action");
  if (alert) {
    category = "intrusion_detection";
    etype = (done == "block" || done == "kill") ? "denied" : "info";
  } else if (type == "enforce.action") {
    category = "intrusion_detection";
    string_view a = str(e, "action");
    etype = (a == "block" || a == "kill")     ? "denied"
            : (a == "allow" || a == "redact") ? "allowed"
                                              : "info";
  } else if (exchange || type == "mcp.message") {
    category = "network";
    etype = "protocol";
  }
  o.key("event").begin_object();
  o.key("kind").str(kind);
  o.key("category").begin_array().str(category).end_array();
  o.key("type").begin_array().str(etype).end_array();
  o.opt_str("id", event_id);
  o.opt_i64("sequence", seq);
  o.key("severity").i64(sev);
  o.opt_str("action", type);
  o.key("dataset").str("agentwall." + std::string(type.empty() ? string_view("event") : type));
  o.key("module").str("agentwall").key("provider").str("agentwall");
  if (exchange) {
    const bool failed = status >= 400 || !str(e, "error").empty();
    if (failed || status > 0) o.key("outcome").str(failed ? "failure" : "success");
    if (auto total = latency_ns(member(member(e, "latency_ms"), "total")); total)
      o.key("duration").i64(*total);
  } else if (auto ok = boolean(member(e, "ok")); ok) {
    o.key("outcome").str(*ok ? "success" : "failure");
  }
  o.opt_str("reason", str(e, "reason"));
  if (auto score = number(member(e, "score")); score) o.key("risk_score").dbl(*score);
  o.end_object();

  string_view rule_name = rule;
  if (rule_name.empty() && type == "budget.alert") rule_name = str(e, "budget");
  if (!rule_name.empty()) {
    o.key("rule").begin_object();
    o.key("name").str(rule_name).key("id").str(rule_name);
    o.key("ruleset").str(type == "budget.alert" ? "agentwall-budgets" : "agentwall-policy");
    o.end_object();
  }

  string_view hostname = ctx.hostname;
  if (hostname.empty() && type == "agent.health") hostname = str(e, "host");
  if (!hostname.empty())
    o.key("host")
        .begin_object()
        .key("hostname")
        .str(hostname)
        .key("name")
        .str(hostname)
        .end_object();
  o.key("observer").begin_object();
  o.key("vendor").str("agentwall").key("product").str("agentwall");
  o.opt_str("version", ctx.version).key("type").str("host-agent");
  o.opt_str("hostname", hostname);
  o.end_object();

  if (proc.any()) {
    o.key("process").begin_object();
    o.opt_i64("pid", proc.pid).opt_str("executable", proc.exe).opt_str("name", proc.name);
    o.opt_str("command_line", proc.cmdline);
    if (proc.tid) o.key("thread").begin_object().key("id").i64(*proc.tid).end_object();
    if (proc.ppid) o.key("parent").begin_object().key("pid").i64(*proc.ppid).end_object();
    o.end_object();
    if (!proc.user.empty() || proc.uid) {
      o.key("user").begin_object().opt_str("name", proc.user);
      if (proc.uid) o.key("id").str(std::to_string(*proc.uid));
      o.end_object();
    }
  }

  if (llm.any() || !llm.operation.empty()) {
    o.key("gen_ai").begin_object();
    o.opt_str("system", llm.provider);
    if (!llm.provider.empty())
      o.key("provider").begin_object().key("name").str(llm.provider).end_object();
    if (!llm.operation.empty())
      o.key("operation")
          .begin_object()
          .key("name")
          .str(genai_operation(llm.operation))
          .end_object();
    const auto max_tokens = exchange ? integer(member(e, "max_output_tokens")) : std::nullopt;
    if (!llm.model.empty() || max_tokens) {
      o.key("request").begin_object().opt_str("model", llm.model);
      o.opt_i64("max_tokens", max_tokens).end_object();
    }
    if (!llm.response_model.empty() || !llm.response_id.empty()) {
      o.key("response").begin_object().opt_str("model", llm.response_model);
      o.opt_str("id", llm.response_id).end_object();
    }
    const json* usage = exchange ? member(e, "usage") : nullptr;
    const auto in = integer(member(usage, "input_tokens"));
    const auto out = integer(member(usage, "output_tokens"));
    if (in || out) {
      o.key("usage").begin_object().opt_i64("input_tokens", in).opt_i64("output_tokens", out);
      o.end_object();
    }
    o.end_object();
  }
  if (!llm.host.empty())
    o.key("server")
        .begin_object()
        .key("address")
        .str(llm.host)
        .key("domain")
        .str(llm.host)
        .end_object();
  if (exchange) {
    const string_view method = str(e, "method"), version = str(e, "http_version");
    if (!method.empty() || status > 0 || !version.empty()) {
      o.key("http").begin_object();
      if (!method.empty()) o.key("request").begin_object().key("method").str(method).end_object();
      if (status > 0) o.key("response").begin_object().key("status_code").i64(status).end_object();
      o.opt_str("version", version);
      o.end_object();
    }
    if (string_view p = str(e, "path"); !p.empty())
      o.key("url").begin_object().key("path").str(p).end_object();
  }
  if (string_view err = str(e, "error"); !err.empty())
    o.key("error").begin_object().key("message").str(err).end_object();

  // Everything else, as it is in the event.
  o.key("agentwall").begin_object();
  if (exchange) {
    o.members_except(e,
                     {"type",    "time",           "event_id",  "seq",          "severity",
                      "message", "tags",           "rule",      "process",      "provider",
                      "model",   "response_model", "operation", "response_id",  "max_output_tokens",
                      "status",  "method",         "path",      "http_version", "error",
                      "host"});
  } else {
    o.members_except(
        e, {"type", "time", "event_id", "seq", "severity", "message", "tags", "rule", "process"});
  }
  if (has_members_except(member(e, "process"),
                         {"pid", "tid", "ppid", "uid", "exe", "name", "comm", "user", "cmdline"})) {
    o.key("process").begin_object();
    o.members_except(*member(e, "process"),
                     {"pid", "tid", "ppid", "uid", "exe", "name", "comm", "user", "cmdline"});
    o.end_object();
  }
  o.opt_str("time", str(e, "time"));
  o.end_object();
  o.end_object();
  return s;
}

namespace {

void cef_header(std::string& out, string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '|') {
      out += '\\';
      out += c;
    } else if (c == '\r' || c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
}

void cef_value(std::string& out, string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '=':
        out += "\\=";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

struct CefExt {
  std::string& out;
  bool first = true;
  void add(string_view key, string_view value) {
    if (value.empty()) return;
    if (!first) out += ' ';
    first = false;
    out += key;
    out += '=';
    cef_value(out, value);
  }
  void add(string_view key, std::optional<int64_t> v) {
    if (v) add(key, std::to_string(*v));
  }
  // csN / cnN with its label.
  void labelled(string_view key, string_view label, string_view value) {
    if (value.empty()) return;
    add(key, value);
    add(std::string(key) + "Label", label);
  }
};

std::string join_strings(const json* arr, string_view sep) {
  std::string out;
  if (!arr || !arr->is_array()) return out;
  for (const auto& x : *arr) {
    if (!x.is_string()) continue;
    if (!out.empty()) out += sep;
    out += x.get_ref<const std::string&>();
  }
  return out;
}

std::string detectors(const json& e) {
  const json* f = member(e, "findings");
  if (!f || !f->is_array()) f = member(member(e, "detection"), "findings");
  std::string out;
  if (!f || !f->is_array()) return out;
  for (const auto& x : *f) {
    string_view d = str(x, "detector");
    if (d.empty()) continue;
    if (!out.empty()) out += ',';
    out += d;
  }
  return out;
}

}  // namespace

std::string to_cef(const json& e, const FormatContext& ctx) {
  static constexpr int kCefSeverity[] = {0, 1, 3, 5, 8, 10, 10};
  const string_view type = str(e, "type");
  const int sev = severity_id(e);
  const string_view rule = str(e, "rule");
  const Process proc = process_of(e);
  const Llm llm = llm_of(e, type);
  const std::string text = summary(e, type);

  std::string s;
  s.reserve(512);
  s += "CEF:0|agentwall|agentwall|";
  cef_header(s, ctx.version.empty() ? string_view("unknown") : string_view(ctx.version));
  s += '|';
  cef_header(s, !rule.empty() ? rule : !type.empty() ? type : string_view("event"));
  s += '|';
  cef_header(s, utf8_prefix(text, 512));
  s += '|';
  append_int(s, kCefSeverity[sev]);
  s += '|';

  CefExt x{s};
  x.add("rt", floor_div(event_time_ns(e), 1'000'000));
  x.add("cat", type);
  x.add("externalId", str(e, "event_id"));
  x.add("act", str(e, "action"));
  x.add("outcome", str(e, "outcome"));
  x.add("reason", str(e, "reason"));
  x.add("msg", utf8_prefix(text, 1023));
  x.add("dvchost", ctx.hostname);
  x.add("suser", proc.user);
  x.add("suid", proc.uid);
  x.add("spid", proc.pid);
  x.add("sproc", proc.name);
  x.add("dhost", llm.host);
  if (type == "llm.exchange") x.add("requestMethod", str(e, "method"));
  if (string_view dir = str(e, "direction"); dir == "request" || dir == "response")
    x.add("deviceDirection", dir == "request" ? "1" : "0");
  x.labelled("cs1", "rule", rule);
  x.labelled("cs2", "model", llm.model);
  x.labelled("cs3", "provider", llm.provider);
  x.labelled("cs4", "tags", join_strings(member(e, "tags"), ","));
  x.labelled("cs5", "findings", detectors(e));
  x.labelled("cs6", "exe", proc.exe);
  std::optional<int64_t> score = integer(member(e, "score"));
  if (!score) score = integer(member(member(e, "detection"), "score"));
  if (score) x.labelled("cn1", "score", std::to_string(*score));
  if (auto seq = integer(member(e, "seq")); seq) x.labelled("cn2", "seq", std::to_string(*seq));
  if (llm.exchange_id) x.labelled("cn3", "exchangeId", std::to_string(*llm.exchange_id));
  return s;
}

std::string format_event(Format format, const json& event, const FormatContext& ctx) {
  switch (format) {
    case Format::kJson:
      return to_json(event);
    case Format::kOcsf:
      return to_ocsf(event, ctx);
    case Format::kEcs:
      return to_ecs(event, ctx);
    case Format::kCef:
      return to_cef(event, ctx);
  }
  return to_json(event);
}

namespace {

// An RFC 5424 header field: printable US-ASCII (33–126) only, at most `max`, "-" when empty.
void syslog_field(std::string& out, string_view v, size_t max) {
  size_t n = 0;
  for (char c : v) {
    if (n == max) break;
    if (c >= 33 && c <= 126) {
      out += c;
      ++n;
    }
  }
  if (n == 0) out += '-';
}

void sd_param(std::string& out, string_view name, string_view value) {
  if (value.empty()) return;
  out += ' ';
  out += name;
  out += "=\"";
  for (char c : value) {
    if (c == '"' || c == '\\' || c == ']') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';  // keep the message on one line
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string to_rfc5424(const json& e, string_view msg, const FormatContext& ctx, int facility) {
  static constexpr int kSyslogSeverity[] = {6, 6, 5, 4, 3, 2, 2};
  const string_view type = str(e, "type");
  const int sev = severity_id(e);
  const Process proc = process_of(e);
  const Llm llm = llm_of(e, type);

  std::string s;
  s.reserve(msg.size() + 320);
  s += '<';
  append_int(s, std::clamp(facility, 0, 23) * 8 + kSyslogSeverity[sev]);
  s += ">1 ";
  append_rfc3339(s, event_time_ns(e), 6);
  s += ' ';
  syslog_field(s, ctx.hostname, 255);
  s += ' ';
  syslog_field(s, ctx.app_name, 48);
  s += ' ';
  if (ctx.pid > 0)
    append_int(s, ctx.pid);
  else
    s += '-';
  s += ' ';
  syslog_field(s, type, 32);
  s += " [agentwall@32473";
  sd_param(s, "event_id", str(e, "event_id"));
  if (auto seq = integer(member(e, "seq")); seq) sd_param(s, "seq", std::to_string(*seq));
  sd_param(s, "type", type);
  sd_param(s, "severity", kSeverityShort[sev]);
  sd_param(s, "rule", str(e, "rule"));
  sd_param(s, "action", str(e, "action"));
  sd_param(s, "outcome", str(e, "outcome"));
  if (proc.pid) sd_param(s, "pid", std::to_string(*proc.pid));
  sd_param(s, "exe", proc.exe);
  sd_param(s, "user", proc.user);
  sd_param(s, "provider", llm.provider);
  sd_param(s, "model", llm.model);
  sd_param(s, "host", llm.host);
  s += ']';
  if (!msg.empty()) {
    s += " \xEF\xBB\xBF";
    s += msg;
  }
  return s;
}

namespace {

bool is_json_document(string_view text) {
  size_t i = 0;
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
    ++i;
  if (i == text.size() || (text[i] != '{' && text[i] != '[')) return false;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text.data(), text.size(), true).get(doc) == simdjson::SUCCESS;
}

}  // namespace

std::string to_hec(const json& e, string_view body_json, const FormatContext& ctx,
                   string_view index, string_view sourcetype) {
  const string_view type = str(e, "type");
  std::string s;
  s.reserve(body_json.size() + 192);
  Out o(s);
  o.begin_object();
  {
    // Seconds with milliseconds, written exactly (no binary float rounding).
    const int64_t ms = floor_div(event_time_ns(e), 1'000'000);
    std::string t;
    append_int(t, floor_div(ms, 1000));
    t += '.';
    append_digits(t, ms - floor_div(ms, 1000) * 1000, 3);
    o.key("time").raw(t);
  }
  o.opt_str("host", ctx.hostname);
  o.key("source").str("agentwall");
  if (!sourcetype.empty())
    o.key("sourcetype").str(sourcetype);
  else
    o.key("sourcetype").str("agentwall:" + std::string(type.empty() ? string_view("event") : type));
  o.opt_str("index", index);
  o.key("event");
  if (is_json_document(body_json))
    o.raw(body_json);
  else
    o.str(body_json);
  o.end_object();
  return s;
}

std::string to_es_bulk(const json& e, string_view index, const FormatContext& ctx) {
  std::string s;
  s.reserve(1280);
  Out o(s);
  o.begin_object().key("create").begin_object();
  o.opt_str("_index", index).opt_str("_id", str(e, "event_id"));
  o.end_object().end_object();
  s += '\n';
  s += to_ecs(e, ctx);
  s += '\n';
  return s;
}

namespace {

// OTLP attributes: [{"key": k, "value": {"stringValue"|"intValue"|"doubleValue"|...}}].
struct Attrs {
  Out& o;
  void str(string_view k, string_view v) {
    if (v.empty()) return;
    o.begin_object().key("key").str(k).key("value").begin_object().key("stringValue").str(v);
    o.end_object().end_object();
  }
  void i64(string_view k, std::optional<int64_t> v) {
    if (!v) return;
    o.begin_object().key("key").str(k).key("value").begin_object().key("intValue").i64_string(*v);
    o.end_object().end_object();
  }
  void dbl(string_view k, std::optional<double> v) {
    if (!v) return;
    o.begin_object().key("key").str(k).key("value").begin_object().key("doubleValue").dbl(*v);
    o.end_object().end_object();
  }
  void boolean(string_view k, bool v) {
    o.begin_object().key("key").str(k).key("value").begin_object().key("boolValue").boolean(v);
    o.end_object().end_object();
  }
  void strings(string_view k, const std::vector<string_view>& v) {
    if (v.empty()) return;
    o.begin_object().key("key").str(k).key("value").begin_object();
    o.key("arrayValue").begin_object().key("values").begin_array();
    for (string_view x : v) o.begin_object().key("stringValue").str(x).end_object();
    o.end_array().end_object().end_object().end_object();
  }
};

void otlp_resource(Out& o, const FormatContext& ctx) {
  o.key("resource").begin_object().key("attributes").begin_array();
  Attrs a{o};
  a.str("service.name", "agentwall");
  a.str("service.version", ctx.version);
  a.str("host.name", ctx.hostname);
  o.end_array().end_object();
}

void otlp_scope(Out& o, const FormatContext& ctx) {
  o.key("scope").begin_object().key("name").str("agentwall").opt_str("version", ctx.version);
  o.end_object();
}

// Trace and span ids of the span an event makes: SHA-256 of its event_id (or of the event
// when it has none), so a re-delivered event makes the same span.
struct SpanIds {
  std::string trace, span;
};

SpanIds span_ids(const json& e) {
  string_view key = str(e, "event_id");
  std::string dumped;
  if (key.empty()) {
    dumped = to_json(e);
    key = dumped;
  }
  std::string d = sha256(key);
  if (d.size() < 24) d.resize(24, '\0');
  // All-zero ids are invalid in OTLP.
  if (std::all_of(d.begin(), d.begin() + 16, [](char c) { return c == 0; })) d[15] = 1;
  if (std::all_of(d.begin() + 16, d.begin() + 24, [](char c) { return c == 0; })) d[23] = 1;
  return {hex(string_view(d).substr(0, 16)), hex(string_view(d).substr(16, 8))};
}

constexpr int kOtelSeverity[] = {0, 9, 13, 14, 17, 21, 21};

// mcp.message fields: flat (method, tool, session_id, protocol_version) or under `mcp`.
string_view mcp_field(const json& e, std::initializer_list<string_view> names) {
  for (const json* src : {&e, member(e, "mcp")}) {
    if (!src) continue;
    for (string_view n : names)
      if (string_view v = str(*src, n); !v.empty()) return v;
  }
  return {};
}

}  // namespace

std::string to_otlp_logs(std::span<const json> events, const FormatContext& ctx) {
  std::string s;
  s.reserve(256 + events.size() * 1024);
  Out o(s);
  o.begin_object().key("resourceLogs").begin_array().begin_object();
  otlp_resource(o, ctx);
  o.key("scopeLogs").begin_array().begin_object();
  otlp_scope(o, ctx);
  o.key("logRecords").begin_array();
  for (const json& e : events) {
    const string_view type = str(e, "type");
    const int sev = severity_id(e);
    const int64_t ns = event_time_ns(e);
    const Process proc = process_of(e);
    const Llm llm = llm_of(e, type);
    o.begin_object();
    o.key("timeUnixNano").i64_string(ns).key("observedTimeUnixNano").i64_string(ns);
    o.key("severityNumber").i64(kOtelSeverity[sev]).key("severityText").str(kSeverityShort[sev]);
    o.opt_str("eventName", type);
    o.key("body").begin_object().key("stringValue").str(to_json(e)).end_object();
    o.key("attributes").begin_array();
    Attrs a{o};
    a.str("event.name", type);
    a.str("agentwall.event_id", str(e, "event_id"));
    a.i64("agentwall.seq", integer(member(e, "seq")));
    a.str("agentwall.rule", str(e, "rule"));
    a.str("gen_ai.provider.name", llm.provider);
    a.str("gen_ai.request.model", llm.model);
    a.i64("process.pid", proc.pid);
    a.str("process.executable.path", proc.exe);
    o.end_array();
    if (type == "llm.exchange" || type == "mcp.message") {
      const SpanIds ids = span_ids(e);
      o.key("traceId").str(ids.trace).key("spanId").str(ids.span);
    }
    o.end_object();
  }
  o.end_array();
  o.end_object().end_array();  // scopeLogs
  o.end_object().end_array();  // resourceLogs
  o.end_object();
  return s;
}

std::string to_otlp_traces(std::span<const json> events, const FormatContext& ctx) {
  std::string spans;
  spans.reserve(events.size() * 1024);
  Out o(spans);
  size_t count = 0;
  for (const json& e : events) {
    const string_view type = str(e, "type");
    const bool exchange = type == "llm.exchange";
    if (!exchange && type != "mcp.message") continue;
    ++count;
    const int64_t start = event_time_ns(e);
    const json* latency = member(e, "latency_ms");
    std::optional<int64_t> lat = latency_ns(latency);
    if (!lat) lat = latency_ns(member(latency, "total"));
    const int64_t end = plus(start, lat.value_or(0));
    const SpanIds ids = span_ids(e);
    const Process proc = process_of(e);
    const auto status = integer(member(e, "status"));
    const string_view error = str(e, "error");
    const json* error_field = member(e, "error");
    const bool failed = (status && *status >= 400) || !error.empty() ||
                        (!exchange && error_field && !error_field->is_null() &&
                         !(error_field->is_boolean() && !error_field->get<bool>()));

    std::string name;
    o.begin_object();
    o.key("traceId").str(ids.trace).key("spanId").str(ids.span);
    if (exchange) {
      const Llm llm = llm_of(e, type);
      string_view op = genai_operation(llm.operation);
      if (op.empty()) op = "unknown";
      name = std::string(op);
      if (!llm.model.empty()) name += " " + std::string(llm.model);
      o.key("name").str(name).key("kind").i64(3);
      o.key("startTimeUnixNano").i64_string(start).key("endTimeUnixNano").i64_string(end);
      o.key("attributes").begin_array();
      Attrs a{o};
      a.str("gen_ai.operation.name", op);
      a.str("gen_ai.provider.name", llm.provider);
      a.str("gen_ai.request.model", llm.model);
      a.str("gen_ai.response.model", llm.response_model);
      a.str("gen_ai.response.id", llm.response_id);
      if (string_view fr = str(e, "finish_reason"); !fr.empty())
        a.strings("gen_ai.response.finish_reasons", {fr});
      const json* usage = member(e, "usage");
      a.i64("gen_ai.usage.input_tokens", integer(member(usage, "input_tokens")));
      a.i64("gen_ai.usage.output_tokens", integer(member(usage, "output_tokens")));
      a.i64("gen_ai.usage.cache_read.input_tokens", integer(member(usage, "cache_read_tokens")));
      a.i64("gen_ai.usage.cache_creation.input_tokens",
            integer(member(usage, "cache_write_tokens")));
      a.i64("gen_ai.request.max_tokens", integer(member(e, "max_output_tokens")));
      a.str("server.address", llm.host);
      a.str("http.request.method", str(e, "method"));
      if (status && *status > 0) a.i64("http.response.status_code", status);
      a.str("url.path", str(e, "path"));
      if (failed)
        a.str("error.type", status && *status >= 400 ? std::to_string(*status) : "_OTHER");
      a.i64("process.pid", proc.pid);
      a.str("process.executable.path", proc.exe);
      a.str("agentwall.event_id", str(e, "event_id"));
      a.dbl("agentwall.cost_usd", number(member(e, "cost_usd")));
      o.end_array();
      if (const json* det = member(e, "detection"); det && det->is_object()) {
        o.key("events").begin_array().begin_object();
        o.key("timeUnixNano").i64_string(end).key("name").str("gen_ai.evaluation.result");
        o.key("attributes").begin_array();
        Attrs ea{o};
        ea.str("gen_ai.evaluation.name", "agentwall.detection");
        ea.dbl("gen_ai.evaluation.score.value", number(member(*det, "score")));
        if (auto flagged = boolean(member(*det, "flagged")); flagged)
          ea.str("gen_ai.evaluation.score.label", *flagged ? "flagged" : "pass");
        ea.str("gen_ai.evaluation.explanation", join_strings(member(*det, "reasons"), "; "));
        ea.str("gen_ai.response.id", llm.response_id);
        o.end_array();
        o.end_object().end_array();
      }
    } else {
      const string_view method = mcp_field(e, {"method", "mcp.method.name"});
      const string_view tool = mcp_field(e, {"tool", "tool_name", "gen_ai.tool.name"});
      name = method.empty() ? std::string("mcp") : std::string(method);
      if (!tool.empty()) name += " " + std::string(tool);
      o.key("name").str(name).key("kind").i64(3);
      o.key("startTimeUnixNano").i64_string(start).key("endTimeUnixNano").i64_string(end);
      o.key("attributes").begin_array();
      Attrs a{o};
      a.str("mcp.method.name", method);
      a.str("mcp.session.id", mcp_field(e, {"session_id", "session", "mcp.session.id"}));
      a.str("mcp.protocol.version",
            mcp_field(e, {"protocol_version", "protocolVersion", "mcp.protocol.version"}));
      a.str("gen_ai.tool.name", tool);
      if (method == "tools/call") a.str("gen_ai.operation.name", "execute_tool");
      for (const char* key : {"id", "request_id"}) {
        if (auto id = integer(member(e, key)); id)
          a.str("jsonrpc.request.id", std::to_string(*id));
        else
          a.str("jsonrpc.request.id", str(e, key));
      }
      // The server from the event's url (https://HOST:PORT/path).
      string_view url = str(e, "url");
      if (const size_t at = url.find("://"); at != string_view::npos) {
        string_view hostport = url.substr(at + 3);
        hostport = hostport.substr(0, hostport.find('/'));
        const size_t colon = hostport.rfind(':');
        a.str("server.address", hostport.substr(0, colon));
        int64_t port = 0;
        const string_view digits = colon == string_view::npos ? "" : hostport.substr(colon + 1);
        if (std::from_chars(digits.data(), digits.data() + digits.size(), port).ec == std::errc())
          a.i64("server.port", port);
      } else {
        a.str("server.address", mcp_field(e, {"server", "host"}));
      }
      a.str("mcp.transport", str(e, "transport"));
      const json* tool_error = member(e, "is_error");
      if (failed || str(e, "status") == "error")
        a.str("error.type", "_OTHER");
      else if (tool_error && tool_error->is_boolean() && tool_error->get<bool>())
        a.str("error.type", "tool_error");
      a.i64("process.pid", proc.pid);
      a.str("process.executable.path", proc.exe);
      a.str("agentwall.event_id", str(e, "event_id"));
      o.end_array();
    }
    if (failed) {
      o.key("status").begin_object().key("code").i64(2);
      if (!error.empty())
        o.key("message").str(error);
      else if (const json* err = member(e, "error"); err && err->is_object())
        o.key("message").str(str(*err, "message"));
      o.end_object();
    }
    o.end_object();
  }
  if (count == 0) return {};

  std::string s;
  s.reserve(spans.size() + 256);
  Out r(s);
  r.begin_object().key("resourceSpans").begin_array().begin_object();
  otlp_resource(r, ctx);
  r.key("scopeSpans").begin_array().begin_object();
  otlp_scope(r, ctx);
  r.key("spans").begin_array().raw(spans).end_array();
  r.end_object().end_array();
  r.end_object().end_array();
  r.end_object();
  return s;
}

}  // namespace agentwall::sinks

// SIEM formatters on real sink events: OCSF, ECS, CEF, RFC 5424, Splunk HEC, Elasticsearch
// bulk, OTLP logs and traces. Every format is read back (parsed, unescaped) and checked
// field by field; malformed events must still give well-formed output.
#include <doctest/doctest.h>

#include <time.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "agent/sinks/format.h"

#ifndef AGENTWALL_FIXTURES
#define AGENTWALL_FIXTURES "tests/fixtures"  // built outside CMake, run from the repo root
#endif

using namespace agentwall::sinks;
using nlohmann::json;

namespace {

const std::vector<json>& fixture_events() {
  static const std::vector<json> events = [] {
    std::vector<json> out;
    std::ifstream in(AGENTWALL_FIXTURES "/sink-events.jsonl");
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }();
  return events;
}

const json& first_of(std::string_view type) {
  for (const auto& e : fixture_events())
    if (e.value("type", "") == type) return e;
  FAIL("no fixture event of type " << type);
  static const json none;
  return none;
}

FormatContext ctx() {
  FormatContext c;
  c.hostname = "h1";
  c.version = "1.2.3";
  return c;
}

const std::string kMessage =
    "secret (secret.aws_access_key) sent to gpt-4o-mini by /usr/bin/python3.11 | pipe \\ "
    "back=slash\nnewline";

// --- CEF reader -------------------------------------------------------------------------

struct Cef {
  std::vector<std::string> header;  // 8 fields: "CEF:0", vendor, …, severity (unescaped)
  std::vector<std::pair<std::string, std::string>> ext;
  std::string get(const std::string& k) const {
    for (const auto& [key, v] : ext)
      if (key == k) return v;
    return "<missing " + k + ">";
  }
  bool has(const std::string& k) const {
    for (const auto& [key, v] : ext)
      if (key == k) return true;
    return false;
  }
};

Cef parse_cef(const std::string& s) {
  Cef c;
  size_t i = 0;
  std::string field;
  while (c.header.size() < 7 && i < s.size()) {
    const char ch = s[i];
    if (ch == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == '|')) {
      field += s[i + 1];
      i += 2;
      continue;
    }
    REQUIRE_MESSAGE(ch != '\n', "newline in the CEF header");
    if (ch == '|') {
      c.header.push_back(field);
      field.clear();
    } else {
      field += ch;
    }
    ++i;
  }
  REQUIRE(c.header.size() == 7);
  const std::string ext = s.substr(i);
  REQUIRE(ext.find('\n') == std::string::npos);
  // Keys are [A-Za-z0-9]+ followed by an unescaped '='; a value runs to the space before the
  // next key.
  std::vector<size_t> eq;  // positions of unescaped '='
  for (size_t j = 0; j < ext.size(); ++j) {
    if (ext[j] == '\\') {
      ++j;
      continue;
    }
    if (ext[j] == '=') eq.push_back(j);
  }
  auto key_start = [&](size_t at) {
    size_t k = at;
    while (k > 0 && std::isalnum(static_cast<unsigned char>(ext[k - 1]))) --k;
    return k;
  };
  for (size_t n = 0; n < eq.size(); ++n) {
    const size_t ks = key_start(eq[n]);
    const std::string key = ext.substr(ks, eq[n] - ks);
    const size_t vs = eq[n] + 1;
    const size_t ve = n + 1 < eq.size() ? key_start(eq[n + 1]) - 1 : ext.size();
    const std::string raw = ext.substr(vs, ve - vs);
    std::string v;
    for (size_t j = 0; j < raw.size(); ++j) {
      if (raw[j] == '\\' && j + 1 < raw.size()) {
        const char e = raw[++j];
        v += e == 'n' ? '\n' : e == 'r' ? '\r' : e;
      } else {
        v += raw[j];
      }
    }
    c.ext.emplace_back(key, v);
  }
  return c;
}

// --- RFC 5424 reader --------------------------------------------------------------------

struct Syslog {
  int pri = -1;
  std::string version, timestamp, hostname, app, procid, msgid, sd_id;
  std::vector<std::pair<std::string, std::string>> params;
  bool bom = false;
  std::string msg;
  std::string param(const std::string& k) const {
    for (const auto& [key, v] : params)
      if (key == k) return v;
    return "<missing " + k + ">";
  }
  bool has(const std::string& k) const {
    for (const auto& [key, v] : params)
      if (key == k) return true;
    return false;
  }
};

bool printable_ascii(const std::string& s) {
  for (char c : s)
    if (c < 33 || c > 126) return false;
  return !s.empty();
}

Syslog parse_syslog(const std::string& s) {
  Syslog r;
  REQUIRE(s.size() > 3);
  REQUIRE(s[0] == '<');
  const size_t gt = s.find('>');
  REQUIRE(gt != std::string::npos);
  REQUIRE(gt >= 2);
  REQUIRE(gt <= 4);
  r.pri = std::stoi(s.substr(1, gt - 1));
  size_t pos = gt + 1;
  auto token = [&](size_t max) {
    const size_t sp = s.find(' ', pos);
    REQUIRE(sp != std::string::npos);
    std::string t = s.substr(pos, sp - pos);
    pos = sp + 1;
    CHECK(printable_ascii(t));
    CHECK(t.size() <= max);
    return t;
  };
  r.version = token(2);
  r.timestamp = token(32);
  r.hostname = token(255);
  r.app = token(48);
  r.procid = token(128);
  r.msgid = token(32);
  REQUIRE(pos < s.size());
  REQUIRE(s[pos] == '[');
  ++pos;
  while (pos < s.size() && s[pos] != ' ' && s[pos] != ']') r.sd_id += s[pos++];
  while (pos < s.size() && s[pos] == ' ') {
    ++pos;
    std::string name;
    while (pos < s.size() && s[pos] != '=') name += s[pos++];
    CHECK(name.size() <= 32);
    CHECK(printable_ascii(name));
    CHECK(name.find_first_of("=]\" ") == std::string::npos);
    REQUIRE(s.compare(pos, 2, "=\"") == 0);
    pos += 2;
    std::string value;
    while (pos < s.size() && s[pos] != '"') {
      if (s[pos] == '\\' && pos + 1 < s.size() &&
          (s[pos + 1] == '"' || s[pos + 1] == '\\' || s[pos + 1] == ']')) {
        value += s[pos + 1];
        pos += 2;
        continue;
      }
      REQUIRE_MESSAGE(s[pos] != ']', "unescaped ] in PARAM-VALUE");
      value += s[pos++];
    }
    REQUIRE(pos < s.size());
    ++pos;  // closing quote
    r.params.emplace_back(name, value);
  }
  REQUIRE(pos < s.size());
  REQUIRE(s[pos] == ']');
  ++pos;
  if (pos < s.size()) {
    REQUIRE(s[pos] == ' ');
    ++pos;
    if (s.compare(pos, 3, "\xEF\xBB\xBF") == 0) {
      r.bom = true;
      pos += 3;
    }
    r.msg = s.substr(pos);
  }
  return r;
}

// 2026-11-26T07:01:02.123456Z: the RFC 5424 TIME-SECFRAC of at most 6 digits, in UTC.
bool syslog_timestamp_ok(const std::string& t) {
  if (t.size() != 27) return false;
  for (size_t i : {4u, 7u}) {
    if (t[i] != '-') return false;
  }
  if (t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != '.' || t[26] != 'Z') return false;
  for (size_t i = 0; i < 26; ++i) {
    if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19) continue;
    if (t[i] < '0' || t[i] > '9') return false;
  }
  return true;
}

// --- OTLP helpers -----------------------------------------------------------------------

const json* otlp_attr(const json& attrs, const std::string& key) {
  for (const auto& a : attrs)
    if (a.value("key", "") == key) return &a.at("value");
  return nullptr;
}

bool lower_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return s != std::string(n, '0');
}

bool digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

constexpr int64_t kAlertMs = 1795676462123;  // 2026-11-26T07:01:02.123Z

}  // namespace

// --------------------------------------------------------------------------------------

TEST_CASE("sink format: the fixture has every event kind") {
  REQUIRE(fixture_events().size() == 7);
  CHECK(first_of("policy.alert").at("message") == kMessage);
}

TEST_CASE("sink format: names, alerts and severities") {
  Format f = Format::kJson;
  for (Format x : {Format::kJson, Format::kOcsf, Format::kEcs, Format::kCef}) {
    REQUIRE(parse_format(to_string(x), f));
    CHECK(f == x);
  }
  CHECK(parse_format("OCSF", f));
  CHECK(f == Format::kOcsf);
  CHECK_FALSE(parse_format("leef", f));
  CHECK_FALSE(parse_format("", f));

  for (const char* t : {"policy.alert", "budget.alert", "coverage.gap", "mcp.alert",
                        "alert.summary", "sink.dropped", "egress.alert"})
    CHECK_MESSAGE(is_alert(t), t);
  for (const char* t : {"llm.exchange", "agent.health", "enforce.action", "mcp.message", "",
                        "alerts", "policy.alerting"})
    CHECK_MESSAGE(!is_alert(t), t);

  CHECK(severity_id(first_of("policy.alert")) == 4);
  CHECK(severity_id(first_of("budget.alert")) == 3);  // no severity: medium
  CHECK(severity_id(first_of("enforce.action")) == 1);
  CHECK(severity_id(first_of("llm.exchange")) == 1);
  CHECK(severity_id(first_of("agent.health")) == 1);  // nothing lost
  json health = first_of("agent.health");
  health["counters"]["ringbuf_drop_chunks"] = 3;
  CHECK(severity_id(health) == 2);
  CHECK(severity_id(json{{"type", "sink.dropped"}, {"dropped", 10}}) == 2);
  CHECK(severity_id(json{{"type", "sink.status"}, {"dropped", 0}}) == 1);
  CHECK(severity_id(json{{"type", "sink.status"}, {"dropped", 4}}) == 2);
  for (auto [name, id] : std::vector<std::pair<const char*, int>>{
           {"info", 1}, {"low", 2}, {"medium", 3}, {"high", 4}, {"critical", 5}, {"HIGH", 4}})
    CHECK(severity_id(json{{"type", "policy.alert"}, {"severity", name}}) == id);
  CHECK(severity_id(json{{"type", "policy.alert"}, {"severity", 5}}) == 5);
  CHECK(severity_id(json{{"type", "llm.exchange"}, {"severity", "critical"}}) == 1);
  CHECK(severity_id(json::object()) == 1);
  CHECK(severity_id(json::array()) == 1);
}

TEST_CASE("sink format: RFC 3339 times") {
  int64_t ns = -1;
  REQUIRE(parse_rfc3339_ns("2026-11-26T07:01:02.123456789Z", ns));
  CHECK(ns == 1795676462123456789);
  REQUIRE(parse_rfc3339_ns("1970-01-01T00:00:00Z", ns));
  CHECK(ns == 0);
  REQUIRE(parse_rfc3339_ns("1969-12-31T23:59:59.5Z", ns));
  CHECK(ns == -500000000);
  REQUIRE(parse_rfc3339_ns("2024-02-29T23:59:59z", ns));
  CHECK(ns == 1709251199LL * 1000000000LL);
  REQUIRE(parse_rfc3339_ns("2000-03-01t02:30:00+02:30", ns));
  CHECK(ns == 951868800LL * 1000000000LL);
  REQUIRE(parse_rfc3339_ns("2026-11-25T14:29:00.1234567891234-05:00", ns));
  CHECK(ns == 1795634940123456789);
  REQUIRE(parse_rfc3339_ns("2026-11-26 07:01:03Z", ns));
  CHECK(ns == 1795676463LL * 1000000000LL);
  for (const char* bad :
       {"", "2026-11-26", "2026-11-26T07:01:02", "2026-11-26T07:01:02.Z", "2023-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-26T24:00:00Z", "2026-11-26T07:60:00Z", "2026-11-26T07:01:02ZZ",
        "2026-11-26T07:01:02+0100", "2026/11/26T07:01:02Z", "1500-01-01T00:00:00Z",
        "9999-01-01T00:00:00Z", "２026-11-26T07:01:02Z", "2026-11-26T07:01:02.12a3Z"})
    CHECK_MESSAGE(!parse_rfc3339_ns(bad, ns), bad);

  CHECK(format_rfc3339_utc(1795676462123456789, 9) == "2026-11-26T07:01:02.123456789Z");
  CHECK(format_rfc3339_utc(1795676462123456789, 6) == "2026-11-26T07:01:02.123456Z");
  CHECK(format_rfc3339_utc(1795676462123456789, 3) == "2026-11-26T07:01:02.123Z");
  CHECK(format_rfc3339_utc(1795676462123456789, 0) == "2026-11-26T07:01:02Z");
  CHECK(format_rfc3339_utc(-1, 3) == "1969-12-31T23:59:59.999Z");

  // Against the C library, over 1678–2261, and back through the parser.
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const int64_t secs = int64_t(rng() % 18'000'000'000ull) - 9'200'000'000LL + 10'000'000LL;
    const int64_t frac = int64_t(rng() % 1'000'000'000ull);
    const int64_t t = secs * 1'000'000'000LL + frac;
    const time_t tt = time_t(secs);
    struct tm tm {};
    REQUIRE(gmtime_r(&tt, &tm));
    char expect[96];
    std::snprintf(expect, sizeof(expect), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(frac));
    const std::string got = format_rfc3339_utc(t, 9);
    REQUIRE(got == expect);
    int64_t back = 0;
    REQUIRE(parse_rfc3339_ns(got, back));
    REQUIRE(back == t);
  }
}

TEST_CASE("sink format: json is the event, round-tripping") {
  for (const auto& e : fixture_events()) {
    const std::string s = to_json(e);
    CHECK(s.find('\n') == std::string::npos);
    CHECK(json::parse(s) == e);
    CHECK(s.rfind("{\"type\":", 0) == 0);
    CHECK(format_event(Format::kJson, e, ctx()) == s);
  }
  // Floats stay floats.
  CHECK(to_json(json{{"x", 30.0}}) == R"({"x":30.0})");
  CHECK(json::parse(to_json(first_of("agent.health"))).at("uptime_s").is_number_float());
}

TEST_CASE("sink format: OCSF detection finding for a policy alert") {
  const json& e = first_of("policy.alert");
  const std::string s = to_ocsf(e, ctx());
  CHECK(s.find('\n') == std::string::npos);
  CHECK(format_event(Format::kOcsf, e, ctx()) == s);
  const json o = json::parse(s);
  // Required by Detection Finding 1.3.
  CHECK(o.at("class_uid") == 2004);
  CHECK(o.at("category_uid") == 2);
  CHECK(o.at("activity_id") == 1);
  CHECK(o.at("type_uid") == 200401);
  CHECK(o.at("severity_id") == 4);
  CHECK(o.at("severity") == "High");
  CHECK(o.at("time").is_number_integer());
  CHECK(o.at("time") == kAlertMs);
  CHECK(o.at("status_id") == 1);
  const json& md = o.at("metadata");
  CHECK(md.at("version") == "1.3.0");
  CHECK(md.at("product").at("name") == "agentwall");
  CHECK(md.at("product").at("vendor_name") == "agentwall");
  CHECK(md.at("product").at("version") == "1.2.3");
  CHECK(md.at("uid") == e.at("event_id"));
  CHECK(md.at("sequence") == 1);
  CHECK(md.at("original_time") == e.at("time"));
  const json& fi = o.at("finding_info");
  CHECK(fi.at("uid") == e.at("event_id"));
  CHECK(fi.at("title") == "block-secrets: " + kMessage);
  CHECK(fi.at("desc") == kMessage);
  CHECK(fi.at("types") == json::array({"secret"}));
  CHECK(fi.at("analytic").at("name") == "block-secrets");
  CHECK(fi.at("analytic").at("type_id") == 1);
  CHECK(fi.at("analytic").at("type") == "Rule");
  CHECK(fi.at("created_time") == kAlertMs);
  // Recommended and profile attributes.
  CHECK(o.at("message") == kMessage);
  CHECK(o.at("disposition_id") == 2);  // enforced block
  CHECK(o.at("disposition") == "Blocked");
  CHECK(o.at("action_id") == 2);
  const json& proc = o.at("actor").at("process");
  CHECK(proc.at("pid") == 4242);
  CHECK(proc.at("name") == "python3");
  CHECK(proc.at("file").at("path") == "/usr/bin/python3.11");
  CHECK(proc.at("file").at("name") == "python3.11");
  CHECK(proc.at("user").at("name") == "alice");
  CHECK(o.at("device").at("hostname") == "h1");
  CHECK(o.at("device").at("type_id").is_number_integer());
  CHECK(o.at("resources").at(0).at("name") == "gpt-4o-mini");
  const json& ev = o.at("evidences").at(0);
  CHECK(ev.at("dst_endpoint").at("hostname") == "api.openai.com");
  CHECK(ev.at("data").at("findings") == e.at("findings"));
  // The rest, unmapped.
  const json& un = o.at("unmapped");
  CHECK(un.at("llm") == e.at("llm"));
  CHECK(un.at("findings") == e.at("findings"));
  CHECK(un.at("tags") == e.at("tags"));
  CHECK(un.at("score") == 85);
  CHECK(un.at("enforced") == true);
  CHECK(un.at("outcome") == "block");
  CHECK(un.at("process") == json{{"unit", "agent.service"}});
  CHECK_FALSE(un.contains("event_id"));
  CHECK_FALSE(un.contains("message"));
}

TEST_CASE("sink format: OCSF dispositions and other events") {
  json e = first_of("policy.alert");
  e["outcome"] = "would block";
  e["enforced"] = false;
  json o = json::parse(to_ocsf(e, ctx()));
  CHECK(o.at("disposition_id") == 15);
  CHECK(o.at("action_id") == 1);
  e["outcome"] = "redact";
  CHECK(json::parse(to_ocsf(e, ctx())).at("disposition_id") == 11);
  e["outcome"] = "superseded";
  CHECK(json::parse(to_ocsf(e, ctx())).at("action_id") == 0);

  o = json::parse(to_ocsf(first_of("budget.alert"), ctx()));
  CHECK(o.at("class_uid") == 2004);
  CHECK(o.at("severity_id") == 3);
  CHECK(o.at("disposition_id") == 15);
  CHECK(o.at("finding_info").at("analytic").at("name") == "daily-team");
  CHECK(o.at("finding_info").at("title") ==
        "budget daily-team warning at 80% for user=alice,model=gpt-4o");
  CHECK(o.at("time") == 1795676463000);

  // Not alerts: Base Event with the whole event unmapped.
  for (const char* type : {"llm.exchange", "enforce.action", "agent.health"}) {
    CAPTURE(type);
    const json& src = first_of(type);
    o = json::parse(to_ocsf(src, ctx()));
    CHECK(o.at("class_uid") == 0);
    CHECK(o.at("category_uid") == 0);
    CHECK(o.at("activity_id") == 99);
    CHECK(o.at("type_uid") == 99);
    CHECK(o.at("severity_id") == 1);
    CHECK(o.at("time").is_number_integer());
    CHECK(o.at("metadata").at("uid") == src.at("event_id"));
    CHECK(o.at("metadata").at("sequence") == src.at("seq"));
    CHECK(o.at("unmapped") == src);
    CHECK_FALSE(o.contains("finding_info"));
  }
  o = json::parse(to_ocsf(first_of("llm.exchange"), ctx()));
  CHECK(o.at("time") == 1795634940355);
  CHECK(o.at("duration") == 81);
  CHECK(o.at("end_time") == 1795634940355 + 81);
  CHECK(o.at("status_id") == 1);
  CHECK(o.at("actor").at("process").at("pid") == 25200);
  CHECK(o.at("actor").at("process").at("parent_process").at("pid") == 25095);
  o = json::parse(to_ocsf(first_of("enforce.action"), ctx()));
  CHECK(o.at("status_id") == 1);
  CHECK(o.at("time") == 1795676462200);
}

TEST_CASE("sink format: ECS") {
  const json& e = first_of("policy.alert");
  const std::string s = to_ecs(e, ctx());
  CHECK(format_event(Format::kEcs, e, ctx()) == s);
  json o = json::parse(s);
  CHECK(o.at("@timestamp") == "2026-11-26T07:01:02.123Z");
  CHECK(o.at("message") == kMessage);
  CHECK(o.at("tags") == e.at("tags"));
  const json& ev = o.at("event");
  CHECK(ev.at("kind") == "alert");
  CHECK(ev.at("category") == json::array({"intrusion_detection"}));
  CHECK(ev.at("type") == json::array({"denied"}));
  CHECK(ev.at("id") == e.at("event_id"));
  CHECK(ev.at("sequence") == 1);
  CHECK(ev.at("severity") == 4);
  CHECK(ev.at("action") == "policy.alert");
  CHECK(ev.at("dataset") == "agentwall.policy.alert");
  CHECK(ev.at("module") == "agentwall");
  CHECK(ev.at("risk_score") == 85.0);
  CHECK(o.at("rule").at("name") == "block-secrets");
  CHECK(o.at("rule").at("id") == "block-secrets");
  CHECK(o.at("rule").at("ruleset") == "agentwall-policy");
  CHECK(o.at("host").at("hostname") == "h1");
  CHECK(o.at("process").at("pid") == 4242);
  CHECK(o.at("process").at("executable") == "/usr/bin/python3.11");
  CHECK(o.at("process").at("name") == "python3");
  CHECK(o.at("user").at("name") == "alice");
  CHECK(o.at("observer") == json{{"vendor", "agentwall"},
                                 {"product", "agentwall"},
                                 {"version", "1.2.3"},
                                 {"type", "host-agent"},
                                 {"hostname", "h1"}});
  CHECK(o.at("gen_ai").at("provider").at("name") == "openai");
  CHECK(o.at("gen_ai").at("system") == "openai");
  CHECK(o.at("gen_ai").at("request").at("model") == "gpt-4o-mini");
  CHECK(o.at("gen_ai").at("operation").at("name") == "chat");
  CHECK(o.at("server").at("address") == "api.openai.com");
  const json& aw = o.at("agentwall");
  CHECK(aw.at("findings") == e.at("findings"));
  CHECK(aw.at("outcome") == "block");
  CHECK(aw.at("enforced") == true);
  CHECK(aw.at("direction") == "request");
  CHECK(aw.at("process") == json{{"unit", "agent.service"}});
  CHECK(aw.at("time") == e.at("time"));
  CHECK_FALSE(aw.contains("rule"));
  CHECK_FALSE(aw.contains("message"));

  const json& x = first_of("llm.exchange");
  o = json::parse(to_ecs(x, ctx()));
  CHECK(o.at("event").at("kind") == "event");
  CHECK(o.at("event").at("category") == json::array({"network"}));
  CHECK(o.at("event").at("outcome") == "success");
  CHECK(o.at("event").at("duration") == 81453770);
  CHECK_FALSE(o.contains("rule"));
  CHECK(o.at("gen_ai").at("request").at("model") == "gpt-4o-mini");
  CHECK(o.at("gen_ai").at("request").at("max_tokens") == 200);
  CHECK(o.at("gen_ai").at("response").at("model") == "gpt-4o-mini-2024-07-18");
  CHECK(o.at("gen_ai").at("response").at("id") == x.at("response_id"));
  CHECK(o.at("gen_ai").at("usage").at("input_tokens") == 88);
  CHECK(o.at("gen_ai").at("usage").at("output_tokens") == 14);
  CHECK(o.at("http").at("response").at("status_code") == 200);
  CHECK(o.at("http").at("request").at("method") == "POST");
  CHECK(o.at("url").at("path") == "/v1/chat/completions");
  CHECK(o.at("process").at("parent").at("pid") == 25095);
  CHECK(o.at("process").at("name") == "node");
  CHECK(o.at("process").at("command_line") == x.at("process").at("cmdline"));
  CHECK(o.at("user").at("id") == "0");
  CHECK(o.at("agentwall").at("usage") == x.at("usage"));
  CHECK(o.at("agentwall").at("detection") == x.at("detection"));
  CHECK(o.at("agentwall").at("messages") == x.at("messages"));
  CHECK_FALSE(o.at("agentwall").contains("model"));
  CHECK_FALSE(o.at("agentwall").contains("host"));

  o = json::parse(to_ecs(first_of("agent.health"), ctx()));
  CHECK(o.at("event").at("kind") == "metric");
  CHECK(o.at("agentwall").at("counters").at("calls") == 10);
  o = json::parse(to_ecs(first_of("enforce.action"), ctx()));
  CHECK(o.at("event").at("outcome") == "success");
  CHECK(o.at("event").at("type") == json::array({"denied"}));
  CHECK(o.at("event").at("reason") == "secret sent");
  CHECK(o.at("process").at("thread").at("id") == 4243);
  o = json::parse(to_ecs(first_of("budget.alert"), ctx()));
  CHECK(o.at("rule").at("name") == "daily-team");
  CHECK(o.at("rule").at("ruleset") == "agentwall-budgets");
}

TEST_CASE("sink format: CEF header and extension escaping") {
  const json& e = first_of("policy.alert");
  const std::string s = to_cef(e, ctx());
  CHECK(format_event(Format::kCef, e, ctx()) == s);
  CHECK(s.find('\n') == std::string::npos);
  CHECK(s.find('\r') == std::string::npos);
  // The exact escaped forms: the header escapes \ and | and has no line breaks; the
  // extension escapes \ = and line breaks, and leaves | alone.
  CHECK(s.rfind(
            "CEF:0|agentwall|agentwall|1.2.3|block-secrets|secret (secret.aws_access_key) sent to "
            "gpt-4o-mini by /usr/bin/python3.11 \\| pipe \\\\ back=slash newline|8|",
            0) == 0);
  CHECK(s.find(" msg=secret (secret.aws_access_key) sent to gpt-4o-mini by /usr/bin/python3.11 | "
               "pipe \\\\ back\\=slash\\nnewline ") != std::string::npos);

  const Cef c = parse_cef(s);
  CHECK(c.header[0] == "CEF:0");
  CHECK(c.header[1] == "agentwall");
  CHECK(c.header[2] == "agentwall");
  CHECK(c.header[3] == "1.2.3");
  CHECK(c.header[4] == "block-secrets");
  CHECK(c.header[6] == "8");
  CHECK(c.get("msg") == kMessage);  // unescapes back to the message, newline included
  CHECK(c.get("rt") == std::to_string(kAlertMs));
  CHECK(c.get("cat") == "policy.alert");
  CHECK(c.get("externalId") == e.at("event_id"));
  CHECK(c.get("act") == "block");
  CHECK(c.get("outcome") == "block");
  CHECK(c.get("dvchost") == "h1");
  CHECK(c.get("suser") == "alice");
  CHECK(c.get("spid") == "4242");
  CHECK(c.get("sproc") == "python3");
  CHECK(c.get("dhost") == "api.openai.com");
  CHECK(c.get("deviceDirection") == "1");
  CHECK(c.get("cs1") == "block-secrets");
  CHECK(c.get("cs1Label") == "rule");
  CHECK(c.get("cs2") == "gpt-4o-mini");
  CHECK(c.get("cs2Label") == "model");
  CHECK(c.get("cs3") == "openai");
  CHECK(c.get("cs4") == "secrets,exfiltration");
  CHECK(c.get("cs5") == "secret.aws_access_key");
  CHECK(c.get("cs6") == "/usr/bin/python3.11");
  CHECK(c.get("cn1") == "85");
  CHECK(c.get("cn1Label") == "score");
  CHECK(c.get("cn2") == "1");
  CHECK(c.get("cn3") == "17");

  // Every header field and value with the specials round-trips.
  json odd = {{"type", "policy.alert"},
              {"rule", "r|1\\x=y"},
              {"message", "a=b\\c|d\r\ne"},
              {"action", "x\\=y"},
              {"severity", "critical"}};
  FormatContext cx = ctx();
  cx.version = "9|9\\9";
  const Cef o = parse_cef(to_cef(odd, cx));
  CHECK(o.header[3] == "9|9\\9");
  CHECK(o.header[4] == "r|1\\x=y");
  CHECK(o.header[5] == "a=b\\c|d  e");
  CHECK(o.header[6] == "10");
  CHECK(o.get("msg") == "a=b\\c|d\r\ne");
  CHECK(o.get("act") == "x\\=y");
  CHECK(o.get("cs1") == "r|1\\x=y");

  for (const auto& ev : fixture_events()) {
    const Cef x = parse_cef(to_cef(ev, ctx()));
    CHECK(x.header[4] == ev.value("rule", ev.value("type", "")));
    CHECK(x.get("externalId") == ev.at("event_id"));
  }
  const Cef llm = parse_cef(to_cef(first_of("llm.exchange"), ctx()));
  CHECK(llm.header[6] == "1");
  CHECK(llm.get("cs2") == "gpt-4o-mini");
  CHECK(llm.get("cn1") == "60");
  CHECK(llm.get("cs5") == "injection.model");
  CHECK(llm.get("requestMethod") == "POST");
}

TEST_CASE("sink format: RFC 5424 read back") {
  const json& e = first_of("policy.alert");
  const std::string body = to_json(e);
  const std::string s = to_rfc5424(e, body, ctx());
  CHECK(s.find('\n') == std::string::npos);
  const Syslog m = parse_syslog(s);
  CHECK(m.pri == 13 * 8 + 3);  // log audit, error (high)
  CHECK(m.version == "1");
  CHECK(m.timestamp == "2026-11-26T07:01:02.123456Z");
  CHECK(syslog_timestamp_ok(m.timestamp));
  CHECK(m.hostname == "h1");
  CHECK(m.app == "agentwall");
  CHECK(m.procid == "-");
  CHECK(m.msgid == "policy.alert");
  CHECK(m.sd_id == "agentwall@32473");
  CHECK(m.param("event_id") == e.at("event_id"));
  CHECK(m.param("seq") == "1");
  CHECK(m.param("type") == "policy.alert");
  CHECK(m.param("severity") == "high");
  CHECK(m.param("rule") == "block-secrets");
  CHECK(m.param("action") == "block");
  CHECK(m.param("outcome") == "block");
  CHECK(m.param("pid") == "4242");
  CHECK(m.param("exe") == "/usr/bin/python3.11");
  CHECK(m.param("user") == "alice");
  CHECK(m.param("provider") == "openai");
  CHECK(m.param("model") == "gpt-4o-mini");
  CHECK(m.param("host") == "api.openai.com");
  CHECK(m.bom);
  CHECK(m.msg == body);
  CHECK(json::parse(m.msg) == e);

  // Severities to PRI, facility, PROCID.
  FormatContext cx = ctx();
  cx.pid = 777;
  const Syslog h = parse_syslog(to_rfc5424(first_of("agent.health"), "x", cx, 1));
  CHECK(h.pri == 1 * 8 + 6);
  CHECK(h.procid == "777");
  CHECK(h.timestamp == "2026-11-26T07:02:00.000000Z");
  CHECK_FALSE(h.has("rule"));
  CHECK_FALSE(h.has("pid"));
  for (auto [sev, code] : std::vector<std::pair<const char*, int>>{
           {"critical", 2}, {"high", 3}, {"medium", 4}, {"low", 5}, {"info", 6}}) {
    const json a = {{"type", "policy.alert"}, {"severity", sev}};
    CHECK(parse_syslog(to_rfc5424(a, "m", ctx())).pri == 13 * 8 + code);
  }
  CHECK(parse_syslog(to_rfc5424(first_of("llm.exchange"), "m", ctx(), 99)).pri == 23 * 8 + 6);

  // PARAM-VALUE escaping of " \ ] round-trips.
  json odd = e;
  odd["rule"] = "a]b\"c\\d]]";
  odd["process"]["exe"] = "/x/\"]\\\\";
  odd["process"]["user"] = "]";
  const Syslog o = parse_syslog(to_rfc5424(odd, "msg with ] and \" and \\", ctx()));
  CHECK(o.param("rule") == "a]b\"c\\d]]");
  CHECK(o.param("exe") == "/x/\"]\\\\");
  CHECK(o.param("user") == "]");
  CHECK(o.msg == "msg with ] and \" and \\");

  // Header fields: printable ASCII, bounded, "-" when empty.
  FormatContext bad;
  bad.hostname = std::string(300, 'h') + " é";
  bad.app_name = std::string(60, 'a');
  const json t = {{"type", std::string(40, 't')}, {"time", "2026-11-26T07:01:02Z"}};
  const Syslog b = parse_syslog(to_rfc5424(t, "", bad));
  CHECK(b.hostname == std::string(255, 'h'));
  CHECK(b.app == std::string(48, 'a'));
  CHECK(b.msgid == std::string(32, 't'));
  CHECK(b.msg.empty());
  CHECK_FALSE(b.bom);
  bad.hostname = "";
  bad.app_name = "\t\n";
  const Syslog d = parse_syslog(to_rfc5424(json::object(), "m", bad));
  CHECK(d.hostname == "-");
  CHECK(d.app == "-");
  CHECK(d.msgid == "-");
  CHECK(syslog_timestamp_ok(d.timestamp));  // no time: stamped now
}

TEST_CASE("sink format: Splunk HEC and Elasticsearch bulk") {
  const json& e = first_of("policy.alert");
  const std::string body = to_ecs(e, ctx());
  const std::string s = to_hec(e, body, ctx());
  CHECK(s.find('\n') == std::string::npos);
  CHECK(s.find("\"time\":1795676462.123,") != std::string::npos);
  json h = json::parse(s);
  CHECK(h.at("time").get<double>() == doctest::Approx(1795676462.123).epsilon(1e-12));
  CHECK(h.at("host") == "h1");
  CHECK(h.at("source") == "agentwall");
  CHECK(h.at("sourcetype") == "agentwall:policy.alert");
  CHECK_FALSE(h.contains("index"));
  CHECK(h.at("event") == json::parse(body));

  h = json::parse(to_hec(first_of("agent.health"), to_json(first_of("agent.health")), ctx(), "main",
                         "my:type"));
  CHECK(h.at("index") == "main");
  CHECK(h.at("sourcetype") == "my:type");
  CHECK(h.at("time").get<double>() == 1795676520.0);
  CHECK(h.at("event") == first_of("agent.health"));
  // A body that is not JSON (CEF) goes as a string.
  const std::string cef = to_cef(e, ctx());
  h = json::parse(to_hec(e, cef, ctx()));
  CHECK(h.at("event") == cef);
  h = json::parse(to_hec(e, "{\"truncated\":", ctx()));
  CHECK(h.at("event") == "{\"truncated\":");

  const std::string b = to_es_bulk(e, "agentwall-alerts", ctx());
  const size_t nl = b.find('\n');
  REQUIRE(nl != std::string::npos);
  REQUIRE(b.back() == '\n');
  CHECK(std::count(b.begin(), b.end(), '\n') == 2);
  const json action = json::parse(b.substr(0, nl));
  CHECK(action == json{{"create", {{"_index", "agentwall-alerts"}, {"_id", e.at("event_id")}}}});
  CHECK(b.substr(nl + 1, b.size() - nl - 2) == to_ecs(e, ctx()));
  const json bare = json::parse(to_es_bulk(json::object(), "", ctx()).substr(0, 13));
  CHECK(bare == json{{"create", json::object()}});
}

TEST_CASE("sink format: OTLP logs") {
  const auto& events = fixture_events();
  const json r = json::parse(to_otlp_logs(events, ctx()));
  REQUIRE(r.at("resourceLogs").size() == 1);
  const json& rl = r.at("resourceLogs").at(0);
  const json& res = rl.at("resource").at("attributes");
  CHECK(otlp_attr(res, "service.name")->at("stringValue") == "agentwall");
  CHECK(otlp_attr(res, "service.version")->at("stringValue") == "1.2.3");
  CHECK(otlp_attr(res, "host.name")->at("stringValue") == "h1");
  REQUIRE(rl.at("scopeLogs").size() == 1);
  const json& sl = rl.at("scopeLogs").at(0);
  CHECK(sl.at("scope").at("name") == "agentwall");
  const json& recs = sl.at("logRecords");
  REQUIRE(recs.size() == events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const json& rec = recs.at(i);
    const json& e = events[i];
    CAPTURE(e.at("type"));
    REQUIRE(rec.at("timeUnixNano").is_string());
    CHECK(digits(rec.at("timeUnixNano")));
    CHECK(digits(rec.at("observedTimeUnixNano")));
    int64_t ns = 0;
    REQUIRE(parse_rfc3339_ns(e.at("time").get<std::string>(), ns));
    CHECK(rec.at("timeUnixNano") == std::to_string(ns));
    CHECK(rec.at("severityNumber").is_number_integer());
    CHECK(json::parse(rec.at("body").at("stringValue").get<std::string>()) == e);
    CHECK(rec.at("eventName") == e.at("type"));
    const json& at = rec.at("attributes");
    CHECK(otlp_attr(at, "event.name")->at("stringValue") == e.at("type"));
    CHECK(otlp_attr(at, "agentwall.event_id")->at("stringValue") == e.at("event_id"));
    CHECK(otlp_attr(at, "agentwall.seq")->at("intValue") == std::to_string(e.at("seq").get<int>()));
    if (e.at("type") == "llm.exchange") {
      CHECK(lower_hex(rec.at("traceId"), 32));
      CHECK(lower_hex(rec.at("spanId"), 16));
    } else {
      CHECK_FALSE(rec.contains("traceId"));
    }
  }
  CHECK(recs.at(0).at("severityNumber") == 17);  // high: ERROR
  CHECK(recs.at(0).at("severityText") == "high");
  CHECK(recs.at(3).at("severityNumber") == 9);  // info
  CHECK(otlp_attr(recs.at(0).at("attributes"), "process.pid")->at("intValue") == "4242");

  const json empty = json::parse(to_otlp_logs({}, ctx()));
  CHECK(empty.at("resourceLogs").at(0).at("scopeLogs").at(0).at("logRecords").empty());
}

TEST_CASE("sink format: OTLP traces, GenAI and MCP spans") {
  const auto& events = fixture_events();
  const std::string s = to_otlp_traces(events, ctx());
  const json r = json::parse(s);
  const json& rs = r.at("resourceSpans").at(0);
  CHECK(otlp_attr(rs.at("resource").at("attributes"), "service.name")->at("stringValue") ==
        "agentwall");
  CHECK(rs.at("scopeSpans").at(0).at("scope").at("name") == "agentwall");
  const json& spans = rs.at("scopeSpans").at(0).at("spans");
  REQUIRE(spans.size() == 3);  // the three llm.exchange events
  std::vector<std::string> trace_ids;
  const json logs = json::parse(to_otlp_logs(events, ctx()));
  const json& recs = logs.at("resourceLogs").at(0).at("scopeLogs").at(0).at("logRecords");
  for (size_t i = 0; i < spans.size(); ++i) {
    const json& sp = spans.at(i);
    const json& x = events.at(3 + i);
    CAPTURE(i);
    CHECK(lower_hex(sp.at("traceId"), 32));
    CHECK(lower_hex(sp.at("spanId"), 16));
    trace_ids.push_back(sp.at("traceId"));
    // The log record of the same exchange carries the same ids.
    CHECK(recs.at(3 + i).at("traceId") == sp.at("traceId"));
    CHECK(recs.at(3 + i).at("spanId") == sp.at("spanId"));
    CHECK(sp.at("name") == "chat gpt-4o-mini");
    CHECK(sp.at("kind") == 3);
    const uint64_t start = std::stoull(sp.at("startTimeUnixNano").get<std::string>());
    const uint64_t end = std::stoull(sp.at("endTimeUnixNano").get<std::string>());
    CHECK(start <= end);
    const double total_ms = x.at("latency_ms").at("total");
    CHECK(double(end - start) == doctest::Approx(total_ms * 1e6).epsilon(1e-6));
    const json& at = sp.at("attributes");
    CHECK(otlp_attr(at, "gen_ai.operation.name")->at("stringValue") == "chat");
    CHECK(otlp_attr(at, "gen_ai.provider.name")->at("stringValue") == "openai");
    CHECK(otlp_attr(at, "gen_ai.request.model")->at("stringValue") == "gpt-4o-mini");
    CHECK(otlp_attr(at, "gen_ai.response.model")->at("stringValue") == "gpt-4o-mini-2024-07-18");
    CHECK(otlp_attr(at, "gen_ai.response.id")->at("stringValue") == x.at("response_id"));
    CHECK(otlp_attr(at, "gen_ai.response.finish_reasons")->at("arrayValue").at("values") ==
          json::array({{{"stringValue", x.at("finish_reason")}}}));
    CHECK(otlp_attr(at, "gen_ai.usage.input_tokens")->at("intValue") ==
          std::to_string(x.at("usage").at("input_tokens").get<int>()));
    CHECK(otlp_attr(at, "gen_ai.usage.output_tokens")->at("intValue") ==
          std::to_string(x.at("usage").at("output_tokens").get<int>()));
    CHECK(otlp_attr(at, "gen_ai.request.max_tokens")->at("intValue") == "200");
    CHECK(otlp_attr(at, "server.address")->at("stringValue") == "127.0.0.1");
    CHECK(otlp_attr(at, "http.response.status_code")->at("intValue") == "200");
    CHECK(otlp_attr(at, "process.pid")->at("intValue") ==
          std::to_string(x.at("process").at("pid").get<int>()));
    CHECK(otlp_attr(at, "process.executable.path")->at("stringValue") == "/usr/bin/node");
    CHECK(otlp_attr(at, "agentwall.event_id")->at("stringValue") == x.at("event_id"));
    CHECK(otlp_attr(at, "agentwall.cost_usd")->at("doubleValue") == x.at("cost_usd"));
    CHECK_FALSE(sp.contains("status"));  // 200: unset
    const json& evt = sp.at("events").at(0);
    CHECK(evt.at("name") == "gen_ai.evaluation.result");
    CHECK(evt.at("timeUnixNano") == sp.at("endTimeUnixNano"));
    const json& ea = evt.at("attributes");
    CHECK(otlp_attr(ea, "gen_ai.evaluation.name")->at("stringValue") == "agentwall.detection");
    CHECK(otlp_attr(ea, "gen_ai.evaluation.score.value")->at("doubleValue") ==
          x.at("detection").at("score").get<double>());
    CHECK(otlp_attr(ea, "gen_ai.evaluation.score.label")->at("stringValue") ==
          (x.at("detection").at("flagged").get<bool>() ? "flagged" : "pass"));
  }
  CHECK(otlp_attr(spans.at(0).at("events").at(0).at("attributes"), "gen_ai.evaluation.explanation")
            ->at("stringValue") == "injection.model (weight 0.60)");
  CHECK(otlp_attr(spans.at(2).at("events").at(0).at("attributes"),
                  "gen_ai.evaluation.explanation") == nullptr);  // no reasons
  CHECK(trace_ids[0] != trace_ids[1]);
  CHECK(trace_ids[1] != trace_ids[2]);
  CHECK(to_otlp_traces(events, ctx()) == s);  // deterministic: re-delivery, same ids

  // Failed call: error status.
  json failed = events.at(3);
  failed["status"] = 429;
  failed["error"] = "Rate limit reached";
  failed.erase("detection");
  json one = json::parse(to_otlp_traces(std::vector<json>{failed}, ctx()));
  const json& fsp = one.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
  CHECK(fsp.at("status").at("code") == 2);
  CHECK(fsp.at("status").at("message") == "Rate limit reached");
  CHECK(otlp_attr(fsp.at("attributes"), "error.type")->at("stringValue") == "429");
  CHECK_FALSE(fsp.contains("events"));

  // MCP.
  const json mcp = {{"type", "mcp.message"},
                    {"event_id", "0b8f3c1e-0000-4000-8000-000000000001"},
                    {"time", "2026-11-26T07:01:02Z"},
                    {"method", "tools/call"},
                    {"tool", "get_weather"},
                    {"session_id", "191c4850af6c49e08843a3f6c80e5046"},
                    {"protocol_version", "2025-06-18"},
                    {"latency_ms", 12.5},
                    {"process", {{"pid", 7}}}};
  one = json::parse(to_otlp_traces(std::vector<json>{mcp}, ctx()));
  const json& msp = one.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
  CHECK(msp.at("name") == "tools/call get_weather");
  CHECK(msp.at("kind") == 3);
  CHECK(std::stoull(msp.at("endTimeUnixNano").get<std::string>()) -
            std::stoull(msp.at("startTimeUnixNano").get<std::string>()) ==
        12500000);
  const json& ma = msp.at("attributes");
  CHECK(otlp_attr(ma, "mcp.method.name")->at("stringValue") == "tools/call");
  CHECK(otlp_attr(ma, "gen_ai.tool.name")->at("stringValue") == "get_weather");
  CHECK(otlp_attr(ma, "mcp.session.id")->at("stringValue") == "191c4850af6c49e08843a3f6c80e5046");
  CHECK(otlp_attr(ma, "mcp.protocol.version")->at("stringValue") == "2025-06-18");
  CHECK(otlp_attr(ma, "gen_ai.operation.name")->at("stringValue") == "execute_tool");

  // Nothing to trace: nothing.
  const std::vector<json> alerts = {events.at(0), events.at(1), events.at(6)};
  CHECK(to_otlp_traces(alerts, ctx()).empty());
  CHECK(to_otlp_traces({}, ctx()).empty());
}

TEST_CASE("sink format: missing fields, wrong types and junk never throw") {
  std::vector<json> odd = {
      json::object(),
      json::array({1, 2}),
      json(nullptr),
      json("policy.alert"),
      json(42),
      json{{"type", 5}},
      json{{"type", "policy.alert"}},
      json{{"type", "policy.alert"},
           {"process", "x"},
           {"llm", json::array({1})},
           {"findings", json::object()},
           {"tags", "t"},
           {"seq", "abc"},
           {"time", 12},
           {"severity", 7},
           {"enforced", "yes"},
           {"message", json::array()},
           {"event_id", 99}},
      json{{"type", "llm.exchange"},
           {"usage", json::array()},
           {"latency_ms", "x"},
           {"detection", 5},
           {"status", "500"},
           {"process", {{"pid", -1}, {"exe", 3}}},
           {"time", "yesterday"}},
      json{{"type", "llm.exchange"},
           {"detection", {{"score", "high"}, {"reasons", {1, "a", nullptr}}, {"flagged", 1}}},
           {"latency_ms", {{"total", -5}}},
           {"cost_usd", nullptr},
           {"seq", 18446744073709551615ull},
           {"time", "2026-11-26T07:01:02.123456789+25:00"}},
      json{{"type", "mcp.message"}, {"error", {{"code", -32601}}}, {"latency_ms", 1e300}},
      json{{"type", "agent.health"}, {"counters", "none"}, {"enforce", {{"holds_lost", 2}}}},
      json{{"type", "coverage.gap"}, {"nested", {{"deep", {{"er", {1.5, true, nullptr}}}}}}},
      json{{"type", "sink.dropped"}, {"dropped", 12.0}, {"time", 1795676462123.0}},
      json{{"type", "alert.summary"},
           {"message", std::string("bad utf8 \xC3\x28 \xFF end")},
           {"rule", std::string("\xE2\x82")},
           {"time", "2026-11-26T07:01:02Z"}},
      json{{"type", std::string(200, 'x') + ".alert"}, {"event_id", std::string(10000, 'e')}},
  };
  std::vector<json> all = odd;
  for (const auto& e : fixture_events()) all.push_back(e);
  for (const auto& e : all) {
    CAPTURE(to_json(e).substr(0, 200));
    std::string out;
    for (Format f : {Format::kJson, Format::kOcsf, Format::kEcs}) {
      REQUIRE_NOTHROW(out = format_event(f, e, ctx()));
      const json j = json::parse(out, nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      if (f == Format::kOcsf) {
        for (const char* k :
             {"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time"})
          CHECK_MESSAGE(j.at(k).is_number_integer(), k);
        CHECK(j.at("metadata").at("version") == "1.3.0");
        CHECK(j.at("metadata").at("product").is_object());
        if (j.at("class_uid") == 2004) {
          CHECK(j.at("finding_info").at("uid").is_string());
          CHECK(j.at("finding_info").at("title").is_string());
          CHECK(j.at("finding_info").at("analytic").at("type_id") == 1);
        }
      }
      if (f == Format::kEcs) {
        CHECK(j.at("@timestamp").is_string());
        CHECK(j.at("event").at("kind").is_string());
      }
    }
    REQUIRE_NOTHROW(out = to_cef(e, ctx()));
    REQUIRE(out.rfind("CEF:0|agentwall|agentwall|", 0) == 0);
    CHECK(out.find('\n') == std::string::npos);
    const Cef c = parse_cef(out);
    CHECK(std::stoi(c.header[6]) >= 0);
    CHECK(std::stoi(c.header[6]) <= 10);
    REQUIRE_NOTHROW(out = to_rfc5424(e, to_json(e), ctx()));
    const Syslog m = parse_syslog(out);
    CHECK(m.pri >= 104);
    CHECK(m.pri <= 111);
    CHECK(syslog_timestamp_ok(m.timestamp));
    REQUIRE_NOTHROW(out = to_hec(e, to_json(e), ctx()));
    CHECK_FALSE(json::parse(out, nullptr, false).is_discarded());
    REQUIRE_NOTHROW(out = to_es_bulk(e, "i", ctx()));
    CHECK(std::count(out.begin(), out.end(), '\n') == 2);
    const std::vector<json> one = {e};
    REQUIRE_NOTHROW(out = to_otlp_logs(one, ctx()));
    CHECK_FALSE(json::parse(out, nullptr, false).is_discarded());
    REQUIRE_NOTHROW(out = to_otlp_traces(one, ctx()));
    if (!out.empty()) {
      const json t = json::parse(out, nullptr, false);
      REQUIRE_FALSE(t.is_discarded());
      const json& sp = t.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
      CHECK(lower_hex(sp.at("traceId"), 32));
      CHECK(lower_hex(sp.at("spanId"), 16));
      CHECK(std::stoull(sp.at("startTimeUnixNano").get<std::string>()) <=
            std::stoull(sp.at("endTimeUnixNano").get<std::string>()));
    }
  }
  // Without an event_id, spans are still derived deterministically from the event.
  const json anon = {{"type", "llm.exchange"}, {"model", "m"}, {"time", "2026-11-26T07:01:02Z"}};
  const std::vector<json> v = {anon};
  CHECK(to_otlp_traces(v, ctx()) == to_otlp_traces(v, ctx()));
  // A numeric time in milliseconds.
  CHECK(json::parse(to_ocsf(odd[13], ctx())).at("time") == kAlertMs);
  CHECK(severity_id(odd[11]) == 2);  // holds lost
}

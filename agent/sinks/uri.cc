#include "agent/sinks/uri.h"

#include "agent/common/suggest.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>

namespace agentwall::sinks {
namespace {

constexpr std::string_view kForms =
    "stdout, file:///PATH, syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, "
    "syslog+tls://HOST:PORT, http(s)://HOST[:PORT]/PATH, otlp+http(s)://HOST[:PORT]";

std::string percent_decode(std::string_view s, bool& ok) {
  std::string out;
  out.reserve(s.size());
  ok = true;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        ok = false;
        return out;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Sizes: 100, 100K, 64KB, 256MB, 1G (binary multiples).
bool parse_size(std::string_view s, uint64_t& out) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return false;
  std::string unit(p, s.data() + s.size());
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mul = 1;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    mul = 1ull << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    mul = 1ull << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    mul = 1ull << 30;
  else
    return false;
  out = v * mul;
  return true;
}

bool parse_uint(std::string_view s, uint64_t& out, uint64_t max) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out <= max;
}

bool parse_bool(std::string_view s, bool& out) {
  if (s == "1" || s == "true" || s == "yes" || s == "on") return out = true, true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return out = false, true;
  return false;
}

int severity_from_name(std::string_view s) {
  if (s == "info" || s == "informational") return 1;
  if (s == "low") return 2;
  if (s == "medium") return 3;
  if (s == "high") return 4;
  if (s == "critical") return 5;
  uint64_t v = 0;
  if (parse_uint(s, v, 6)) return static_cast<int>(v);
  return -1;
}

bool is_secret_key(std::string_view k) {
  return k == "token" || k == "password" || k == "key_password" || k.starts_with("header.");
}

std::string sanitize_name(std::string_view s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    out.push_back(ok ? c : '-');
  }
  while (out.find("--") != std::string::npos) out.replace(out.find("--"), 2, "-");
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(0, 1);
  return out.empty() ? "sink" : out.substr(0, 80);
}

}  // namespace

std::string_view to_string(SinkKind k) {
  switch (k) {
    case SinkKind::kStdout:
      return "stdout";
    case SinkKind::kFile:
      return "file";
    case SinkKind::kSyslogUdp:
      return "syslog+udp";
    case SinkKind::kSyslogTcp:
      return "syslog+tcp";
    case SinkKind::kSyslogTls:
      return "syslog+tls";
    case SinkKind::kHttp:
      return "http";
    case SinkKind::kOtlp:
      return "otlp";
  }
  return "?";
}

std::string redact_uri(std::string_view uri) {
  std::string out(uri);
  const size_t q = out.find('?');
  if (q == std::string::npos) return out;
  std::string result = out.substr(0, q + 1);
  std::string_view rest = std::string_view(out).substr(q + 1);
  bool first = true;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const size_t eq = kv.find('=');
    const std::string_view k = kv.substr(0, eq);
    if (!first) result += '&';
    first = false;
    if (eq != std::string_view::npos && is_secret_key(k)) {
      result += std::string(k) + "=***";
    } else {
      result += std::string(kv);
    }
  }
  return result;
}

std::optional<SinkConfig> parse_sink_uri(std::string_view uri, std::string& error) {
  SinkConfig c;
  c.uri = redact_uri(uri);
  auto fail = [&](const std::string& what) -> std::optional<SinkConfig> {
    error = "--sink " + c.uri + ": " + what;
    return std::nullopt;
  };
  if (uri == "stdout" || uri == "-" || uri.starts_with("stdout:")) {
    c.kind = SinkKind::kStdout;
    const size_t q = uri.find('?');
    uri = q == std::string_view::npos ? std::string_view("stdout://") : uri;
  }
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos)
    return fail("not a sink URI (expected SCHEME://…); the forms are: " + std::string(kForms));
  const std::string scheme(uri.substr(0, sep));
  std::string_view rest = uri.substr(sep + 3);
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  std::string_view path;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash);
  }

  bool http_tls = false;
  if (scheme == "stdout") {
    c.kind = SinkKind::kStdout;
  } else if (scheme == "file") {
    c.kind = SinkKind::kFile;
    if (!authority.empty() && authority != "localhost")
      return fail("a file URI has no host: write file:///var/log/agentwall/events.json");
    bool ok = true;
    c.path = percent_decode(path, ok);
    if (!ok || c.path.empty() || c.path.front() != '/')
      return fail("needs an absolute path: file:///var/log/agentwall/events.json");
  } else if (scheme == "syslog+udp" || scheme == "syslog" || scheme == "udp") {
    c.kind = SinkKind::kSyslogUdp;
    c.port = 514;
  } else if (scheme == "syslog+tcp" || scheme == "tcp") {
    c.kind = SinkKind::kSyslogTcp;
    c.port = 514;
  } else if (scheme == "syslog+tls" || scheme == "tls") {
    c.kind = SinkKind::kSyslogTls;
    c.port = 6514;
    c.tls.enabled = true;
  } else if (scheme == "http" || scheme == "https") {
    c.kind = SinkKind::kHttp;
    http_tls = scheme == "https";
    c.port = http_tls ? 443 : 80;
  } else if (scheme == "otlp+http" || scheme == "otlp+https" || scheme == "otlp") {
    c.kind = SinkKind::kOtlp;
    http_tls = scheme == "otlp+https";
    c.port = 4318;
  } else {
    return fail("unknown scheme '" + scheme + "'; the forms are: " + std::string(kForms));
  }
  c.tls.enabled = c.tls.enabled || http_tls;

  const bool network = c.kind != SinkKind::kStdout && c.kind != SinkKind::kFile;
  if (network) {
    if (authority.empty()) return fail("needs a host: " + scheme + "://HOST:PORT");
    std::string_view host = authority;
    std::string_view port;
    if (authority.front() == '[') {  // [::1]:514
      const size_t close = authority.find(']');
      if (close == std::string_view::npos) return fail("unclosed '[' in the host");
      host = authority.substr(1, close - 1);
      if (close + 1 < authority.size()) {
        if (authority[close + 1] != ':') return fail("expected ':PORT' after ']'");
        port = authority.substr(close + 2);
      }
    } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty()) return fail("needs a host: " + scheme + "://HOST:PORT");
    c.host = std::string(host);
    if (!port.empty()) {
      uint64_t p = 0;
      if (!parse_uint(port, p, 65535) || p == 0)
        return fail("port '" + std::string(port) + "' is not a number from 1 to 65535");
      c.port = static_cast<uint16_t>(p);
    }
    c.spooled = true;
    c.http_path = path.empty() ? "/" : std::string(path);
  }
  if (c.kind == SinkKind::kHttp && c.http_path.starts_with("/services/collector"))
    c.api = HttpApi::kHec;
  if (c.kind == SinkKind::kHttp && (c.http_path.ends_with("/_bulk"))) {
    c.api = HttpApi::kBulk;
    c.format = Format::kEcs;
  }
  if (c.kind == SinkKind::kSyslogTcp || c.kind == SinkKind::kSyslogUdp ||
      c.kind == SinkKind::kSyslogTls)
    c.batch_max = 1000;

  // Options.
  using Setter = std::function<std::string(const std::string&)>;
  std::map<std::string, Setter> options;
  auto size_option = [](uint64_t& field) -> Setter {
    return [&field](const std::string& v) -> std::string {
      return parse_size(v, field) ? "" : "expects a size such as 65536, 64K, 100MB or 1G";
    };
  };
  auto ms_option = [](std::chrono::milliseconds& field, uint64_t max) -> Setter {
    return [&field, max](const std::string& v) -> std::string {
      uint64_t n = 0;
      if (!parse_uint(v, n, max)) return "expects milliseconds from 0 to " + std::to_string(max);
      field = std::chrono::milliseconds(n);
      return "";
    };
  };
  auto bool_option = [](bool& field) -> Setter {
    return [&field](const std::string& v) -> std::string {
      return parse_bool(v, field) ? "" : "expects true or false";
    };
  };
  auto path_option = [](std::string& field) -> Setter {
    return [&field](const std::string& v) -> std::string {
      if (v.empty() || v.front() != '/') return "expects an absolute path";
      field = v;
      return "";
    };
  };
  options["format"] = [&](const std::string& v) -> std::string {
    if (v == "hec" || v == "splunk") {
      if (c.kind != SinkKind::kHttp) return "hec is for http(s) sinks";
      c.api = HttpApi::kHec;
      return "";
    }
    if (v == "bulk" || v == "elasticsearch") {
      if (c.kind != SinkKind::kHttp) return "bulk is for http(s) sinks";
      c.api = HttpApi::kBulk;
      c.format = Format::kEcs;
      return "";
    }
    if (v == "webhook") {
      c.api = HttpApi::kWebhook;
      return "";
    }
    return parse_format(v, c.format) ? ""
                                     : "expects json, ocsf, ecs or cef (http also: hec, bulk, "
                                       "webhook)";
  };
  options["body"] = [&](const std::string& v) -> std::string {
    return parse_format(v, c.format) ? "" : "expects json, ocsf, ecs or cef";
  };
  options["name"] = [&](const std::string& v) -> std::string {
    if (v.empty() || sanitize_name(v) != v) return "expects letters, digits, '.', '-' or '_' only";
    c.name = v;
    return "";
  };
  options["types"] = [&](const std::string& v) -> std::string {
    c.types.clear();
    size_t at = 0;
    while (at <= v.size()) {
      const size_t comma = v.find(',', at);
      std::string t = v.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (t.empty()) return "expects event types separated by commas, e.g. policy.alert,budget.*";
      if (t.find('*') != std::string::npos && t.find('*') != t.size() - 1)
        return "'*' may only end a type: " + t;
      c.types.push_back(t);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    return "";
  };
  options["min_severity"] = [&](const std::string& v) -> std::string {
    const int s = severity_from_name(v);
    if (s < 0) return "expects info, low, medium, high or critical";
    c.min_severity = s;
    return "";
  };
  options["max_size"] = size_option(c.max_size);
  options["max_files"] = [&](const std::string& v) -> std::string {
    uint64_t n = 0;
    if (!parse_uint(v, n, 1000)) return "expects a number from 0 to 1000";
    c.max_files = static_cast<int>(n);
    return "";
  };
  options["ca"] = path_option(c.tls.ca_file);
  options["cert"] = path_option(c.tls.cert_file);
  options["key"] = path_option(c.tls.key_file);
  options["verify"] = bool_option(c.tls.verify);
  options["server_name"] = [&](const std::string& v) -> std::string {
    c.tls.server_name = v;
    return "";
  };
  options["facility"] = [&](const std::string& v) -> std::string {
    uint64_t n = 0;
    if (!parse_uint(v, n, 23)) return "expects a syslog facility number from 0 to 23";
    c.facility = static_cast<int>(n);
    return "";
  };
  options["token"] = [&](const std::string& v) -> std::string {
    c.token = v;
    return "";
  };
  options["index"] = [&](const std::string& v) -> std::string {
    c.index = v;
    return "";
  };
  options["sourcetype"] = [&](const std::string& v) -> std::string {
    c.sourcetype = v;
    return "";
  };
  options["gzip"] = bool_option(c.gzip);
  options["signals"] = [&](const std::string& v) -> std::string {
    c.otlp_logs = v.find("logs") != std::string::npos;
    c.otlp_traces = v.find("traces") != std::string::npos;
    if (!c.otlp_logs && !c.otlp_traces) return "expects logs, traces or logs,traces";
    return "";
  };
  options["batch"] = [&](const std::string& v) -> std::string {
    uint64_t n = 0;
    if (!parse_uint(v, n, 100000) || n == 0) return "expects a number from 1 to 100000";
    c.batch_max = n;
    return "";
  };
  options["flush_ms"] = ms_option(c.flush_interval, 60000);
  options["timeout_ms"] = ms_option(c.timeout, 600000);
  options["backoff_max_ms"] = ms_option(c.backoff_max, 3600000);
  options["spool_max"] = size_option(c.spool.max_bytes);
  options["fsync"] = [&](const std::string& v) -> std::string {
    if (v == "never")
      c.spool.sync = SpoolOptions::Sync::kNever;
    else if (v == "interval")
      c.spool.sync = SpoolOptions::Sync::kInterval;
    else if (v == "always")
      c.spool.sync = SpoolOptions::Sync::kAlways;
    else
      return "expects never, interval or always";
    return "";
  };

  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    bool ok = true;
    const std::string key = percent_decode(kv.substr(0, eq), ok);
    const std::string value =
        eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1), ok);
    if (!ok) return fail("option '" + key + "': bad %-escape");
    if (key.starts_with("header.") && key.size() > 7) {
      if (c.kind != SinkKind::kHttp && c.kind != SinkKind::kOtlp)
        return fail("header.* options are for http(s) and otlp sinks");
      c.headers.emplace_back(key.substr(7), value);
      continue;
    }
    auto it = options.find(key);
    if (it == options.end()) {
      std::vector<std::string> names;
      for (const auto& [name, _] : options) names.push_back(name);
      const std::string best = did_you_mean(key, names);
      std::string msg = "unknown option '" + key + "'";
      if (!best.empty()) msg += " (did you mean '" + best + "'?)";
      msg += "; see docs/SINKS.md for the options of each sink";
      return fail(msg);
    }
    if (eq == std::string_view::npos)
      return fail("option '" + key + "' needs a value: " + key + "=…");
    if (std::string why = it->second(value); !why.empty())
      return fail("option " + key + "=" + (is_secret_key(key) ? "***" : value) + " " + why);
  }
  if (!c.tls.key_file.empty() != !c.tls.cert_file.empty())
    return fail("cert= and key= go together (the client certificate and its key)");
  if ((!c.tls.ca_file.empty() || !c.tls.cert_file.empty() || !c.tls.verify) && !c.tls.enabled)
    return fail("ca=, cert=, key= and verify= need a TLS scheme (syslog+tls, https, otlp+https)");
  if (c.api == HttpApi::kHec && c.token.empty())
    return fail("Splunk HEC needs token=… (the HEC token)");
  if (c.api == HttpApi::kHec && c.http_path == "/") c.http_path = "/services/collector/event";
  if (c.api == HttpApi::kBulk && c.http_path == "/") c.http_path = "/_bulk";
  if (c.api == HttpApi::kBulk && c.index.empty()) c.index = "agentwall-events";

  if (c.name.empty()) {
    std::string base = std::string(to_string(c.kind));
    if (c.kind == SinkKind::kFile)
      base += "-" + c.path;
    else if (network)
      base += "-" + c.host + "-" + std::to_string(c.port);
    if (c.kind == SinkKind::kHttp && c.http_path != "/") base += "-" + c.http_path;
    c.name = sanitize_name(base);
  }
  return c;
}

}  // namespace agentwall::sinks

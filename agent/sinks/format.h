// How an event looks to each kind of SIEM. Pure: an event (one JSON object as in
// docs/EVENTS.md, with `event_id` and, on delivery, the sink's `seq`) in, bytes out.
// Mappings are documented in docs/SINK_FORMATS.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace agentwall::sinks {

using json = nlohmann::json;

enum class Format { kJson, kOcsf, kEcs, kCef };
// "json", "ocsf", "ecs", "cef"; false when unknown.
bool parse_format(std::string_view name, Format& out);
std::string_view to_string(Format f);

// OCSF severity_id of an event: 1 informational … 5 critical (6 fatal unused). Alerts take
// theirs from `severity` (info/low/medium/high/critical); other events are informational,
// except agent.health and sink events that report losses (2, low).
int severity_id(const json& event);
// True for the events that are findings: policy.alert, budget.alert, coverage.gap,
// mcp.alert, alert.summary, sink.dropped, and any type ending in ".alert".
bool is_alert(std::string_view type);

struct FormatContext {
  std::string hostname;  // this host
  std::string version;   // agentwall's version
  std::string app_name = "agentwall";
  // agentwall's pid: the RFC 5424 PROCID ("-" when 0).
  int64_t pid = 0;
};

// An RFC 3339 time ("2026-11-26T07:01:02.123456789Z", any fraction, Z or ±hh:mm) as Unix
// nanoseconds; false when it is not one (or lies outside 1678–2261, int64 nanoseconds).
bool parse_rfc3339_ns(std::string_view text, int64_t& unix_ns);
// Unix nanoseconds as RFC 3339 UTC with `digits` (0–9) fractional digits, truncated.
std::string format_rfc3339_utc(int64_t unix_ns, int digits);

// The event itself, as one JSON line (no newline).
std::string to_json(const json& event);
// OCSF 1.3: alerts as Detection Finding (class_uid 2004, category_uid 2) with every
// required attribute; other events as Base Event (class_uid 0) with the event in
// `unmapped`. One JSON object, no newline.
std::string to_ocsf(const json& event, const FormatContext& ctx);
// Elastic Common Schema 8.x: event.kind alert|event, rule.*, gen_ai.*, process.*, host.*.
std::string to_ecs(const json& event, const FormatContext& ctx);
// ArcSight CEF:0 with the specification's escaping (header: \ and |; extension: \ = and
// newlines).
std::string to_cef(const json& event, const FormatContext& ctx);
// Formats `event` as `format`.
std::string format_event(Format format, const json& event, const FormatContext& ctx);

// RFC 5424 syslog message (no transport framing): PRI from facility and severity, the
// event's time, hostname, app name, procid, MSGID = the event type, structured data
// [agentwall@32473 ...] with the event's key fields (escaped per RFC 5424 6.3.3), then a
// UTF-8 BOM and `msg` (the event formatted by the sink's format).
std::string to_rfc5424(const json& event, std::string_view msg, const FormatContext& ctx,
                       int facility = 13 /* log audit */);

// Splunk HTTP Event Collector: one event object ({"time","host","source","sourcetype",
// "index"?,"event"}) without newline; a batch is these concatenated.
std::string to_hec(const json& event, std::string_view body_json, const FormatContext& ctx,
                   std::string_view index = {}, std::string_view sourcetype = {});
// Elasticsearch _bulk: the `create` action line (with _index and _id = event_id) and the
// document (ECS), each ending in a newline.
std::string to_es_bulk(const json& event, std::string_view index, const FormatContext& ctx);

// OTLP/HTTP JSON (opentelemetry-proto 1.x JSON encoding).
// ExportLogsServiceRequest: one log record per event (body = the event, attributes =
// event.name, event_id, severity). With no events, a request with no log records.
std::string to_otlp_logs(std::span<const json> events, const FormatContext& ctx);
// ExportTraceServiceRequest: one span per llm.exchange and mcp.message (others are
// skipped; returns "" when none) with the OpenTelemetry GenAI / MCP attributes, and the
// detection result as a `gen_ai.evaluation.result` span event.
std::string to_otlp_traces(std::span<const json> events, const FormatContext& ctx);

}  // namespace agentwall::sinks

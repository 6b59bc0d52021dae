// Structured-output verification: does a model's JSON (tool-call arguments, a
// response_format answer) match the JSON Schema it was asked for? A subset of JSON Schema
// (draft 2020-12 with the draft-4/7 spellings still in use) plus the OpenAPI flavour Gemini
// speaks ("nullable", upper-case type names, counts as strings).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

struct SchemaViolation {
  std::string pointer;  // RFC 6901 pointer into the instance; "" is the root
  std::string message;  // e.g. "expected integer, got string"
};

// Keywords checked:
//  type (a name or a list; names in any case; "integer" is a number with no fractional part,
//  so 3.0 is one), nullable, enum, const, properties, required, additionalProperties (bool or
//  schema), patternProperties, minProperties/maxProperties, items (schema, or a draft-7
//  tuple list with additionalItems), prefixItems, minItems/maxItems, uniqueItems,
//  minLength/maxLength (in code points), minimum/maximum, exclusiveMinimum/exclusiveMaximum
//  (numbers, or draft-4 booleans), multipleOf, pattern (PCRE2, ECMA-style; match work is
//  bounded and a pattern that exceeds the bound or does not compile is reported), format
//  (email, date-time, date, time, uuid, uri, ipv4, ipv6, hostname), allOf, anyOf, oneOf, not,
//  if/then/else, $ref to a local "#/…" pointer (e.g. "#/$defs/x", "#/definitions/x").
// Unknown keywords and formats are ignored. Count keywords accept integers written as
// strings ("minItems": "1"), as Gemini's REST API sends them.
// Recursion through the schema and the instance is bounded (depth and total steps), so
// cyclic $refs, exponential anyOf nests and very deep instances end with a violation saying
// what could not be checked instead of exhausting the stack or the CPU.
// Messages quote at most a short prefix of string values and never a whole object or array.
// Returns at most `max_violations` violations, depth first: an object's required and
// min/maxProperties first, then its members in key order (a disallowed additional property
// where its key falls), array items in index order.
std::vector<SchemaViolation> validate_json(const nlohmann::json& schema,
                                           const nlohmann::json& instance,
                                           size_t max_violations = 32);

// The model's output text: surrounding whitespace and a ```json fence (also one preceded by
// prose) are removed before parsing. Text that is not JSON gives one violation at "" saying
// "not valid JSON: <parser message>".
std::vector<SchemaViolation> validate_json_text(std::string_view text, const nlohmann::json& schema,
                                                size_t max_violations = 32);

// What validate_json_text parses: the contents of the first fenced code block if there is
// one, else the trimmed text.
std::string_view strip_code_fence(std::string_view text);

// Detector id "schema.violation", category kSchema, confidence 1 (0 when `violations` is
// empty), no spans (a pointer is not a byte offset). The explanation names `what` (e.g.
// "tool get_weather arguments") and lists the first few violations with their pointers.
Finding schema_finding(const std::vector<SchemaViolation>& violations, std::string_view what);

}  // namespace agentwall::detect

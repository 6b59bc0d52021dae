// Structured-output verification: every keyword passing and failing, with the exact pointer
// and message, provider schema dialects (OpenAI strict, Anthropic tools, Gemini), and hostile
// schemas and instances that must end quickly and in bounds.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/detect/schema.h"

using namespace agentwall::detect;
using nlohmann::json;

namespace {

std::vector<SchemaViolation> check(const char* schema, const char* instance, size_t max = 32) {
  return validate_json(json::parse(schema), json::parse(instance), max);
}

bool valid(const char* schema, const char* instance) {
  const auto v = check(schema, instance);
  for (const auto& x : v) CAPTURE(x.pointer + ": " + x.message);
  return v.empty();
}

// The single violation, as "pointer: message".
std::string one(const char* schema, const char* instance) {
  const auto v = check(schema, instance);
  if (v.size() != 1) {
    std::string all = "<" + std::to_string(v.size()) + " violations>";
    for (const auto& x : v) all += " [" + x.pointer + ": " + x.message + "]";
    return all;
  }
  return v[0].pointer + ": " + v[0].message;
}

}  // namespace

TEST_CASE("schema: type") {
  CHECK(valid(R"({"type":"string"})", R"("x")"));
  CHECK(one(R"({"type":"string"})", "3") == ": expected string, got integer");
  CHECK(valid(R"({"type":"integer"})", "3"));
  CHECK(valid(R"({"type":"integer"})", "3.0"));  // a number with no fractional part
  CHECK(valid(R"({"type":"integer"})", "-9223372036854775808"));
  CHECK(valid(R"({"type":"integer"})", "18446744073709551615"));
  CHECK(one(R"({"type":"integer"})", "3.5") == ": expected integer, got number");
  CHECK(one(R"({"type":"integer"})", R"("3")") == ": expected integer, got string");
  CHECK(valid(R"({"type":"number"})", "3"));
  CHECK(valid(R"({"type":"number"})", "-0.5e3"));
  CHECK(one(R"({"type":"number"})", "true") == ": expected number, got boolean");
  CHECK(valid(R"({"type":"boolean"})", "false"));
  CHECK(one(R"({"type":"boolean"})", "0") == ": expected boolean, got integer");
  CHECK(valid(R"({"type":"null"})", "null"));
  CHECK(one(R"({"type":"null"})", "{}") == ": expected null, got object");
  CHECK(valid(R"({"type":"array"})", "[]"));
  CHECK(one(R"({"type":"array"})", "{}") == ": expected array, got object");
  CHECK(valid(R"({"type":"object"})", "{}"));
  CHECK(one(R"({"type":"object"})", "[]") == ": expected object, got array");
  CHECK(valid(R"({"type":["string","null"]})", "null"));
  CHECK(one(R"({"type":["string","null"]})", "1") == ": expected string or null, got integer");
  CHECK(one(R"({"type":["string","number","null"]})", "[]") ==
        ": expected string, number or null, got array");
  // Unknown type names constrain nothing; keywords of other types do not apply.
  CHECK(valid(R"({"type":"TYPE_UNSPECIFIED"})", "1"));
  CHECK(valid(R"({"maxLength":1,"minimum":5,"required":["a"],"minItems":3})", "true"));
  CHECK(valid("true", R"({"anything":[1,2]})"));
  CHECK(valid("{}", "1"));
  CHECK(one("false", "1") == ": no value allowed here (schema is false)");
}

TEST_CASE("schema: enum and const") {
  CHECK(valid(R"({"enum":["celsius","fahrenheit"]})", R"("celsius")"));
  CHECK(one(R"({"enum":["celsius","fahrenheit"]})", R"("kelvin")") ==
        R"(: value "kelvin" not in enum)");
  CHECK(valid(R"({"enum":[1,"a",null,{"x":[1]}]})", R"({"x":[1]})"));
  CHECK(valid(R"({"enum":[1]})", "1.0"));
  CHECK(one(R"({"enum":[1,2]})", "3") == ": value 3 not in enum");
  CHECK(one(R"({"enum":[{"a":1}]})", R"({"a":2})") == ": object not in enum");
  CHECK(valid(R"({"const":"v1"})", R"("v1")"));
  CHECK(one(R"({"const":"v1"})", R"("v2")") == R"(: value "v2" is not the const "v1")");
  CHECK(one(R"({"const":[1]})", "[2]") == R"(: array is not the const array)");
  // Long string values are quoted short, never whole.
  const std::string long_value(200, 'q');
  const auto v = validate_json(json::parse(R"({"enum":["a"]})"), json(long_value));
  REQUIRE(v.size() == 1);
  CHECK(v[0].message.size() < 60);
  CHECK(v[0].message.find(std::string(33, 'q')) == std::string::npos);
}

TEST_CASE("schema: properties, required, additionalProperties") {
  const char* s = R"({"type":"object",
    "properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},
    "required":["name","age"],"additionalProperties":false})";
  CHECK(valid(s, R"({"name":"Ada","age":36})"));
  CHECK(one(s, R"({"name":"Ada"})") == R"(: missing required property "age")");
  CHECK(one(s, R"({"name":"Ada","age":"36"})") == "/age: expected integer, got string");
  CHECK(one(s, R"({"name":"Ada","age":-1})") == "/age: -1 is less than minimum 0");
  CHECK(one(s, R"({"name":"Ada","age":3,"y":1})") == R"(: additional property "y" not allowed)");
  const auto many = check(s, R"({"name":1,"extra":true})");
  REQUIRE(many.size() == 3);
  CHECK(many[0].message == R"(missing required property "age")");
  CHECK(many[1].pointer == "");
  CHECK(many[1].message == R"(additional property "extra" not allowed)");
  CHECK(many[2].pointer == "/name");
  // A schema for the rest.
  const char* m =
      R"({"properties":{"id":{"type":"string"}},"additionalProperties":{"type":"number"}})";
  CHECK(valid(m, R"({"id":"a","x":1,"y":2.5})"));
  CHECK(one(m, R"({"id":"a","x":"1"})") == "/x: expected number, got string");
  CHECK(valid(R"({"additionalProperties":true})", R"({"a":1})"));
  // patternProperties count as declared.
  const char* p = R"({"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false})";
  CHECK(valid(p, R"({"x-trace":"1"})"));
  CHECK(one(p, R"({"x-trace":1})") == "/x-trace: expected string, got integer");
  CHECK(one(p, R"({"trace":"1"})") == R"(: additional property "trace" not allowed)");
  // A property whose schema is false.
  CHECK(one(R"({"properties":{"debug":false}})", R"({"debug":1})") ==
        "/debug: no value allowed here (schema is false)");
  CHECK(one(R"({"minProperties":2})", R"({"a":1})") == ": 1 property, at least 2 required");
  CHECK(one(R"({"maxProperties":1})", R"({"a":1,"b":2})") == ": 2 properties, at most 1 allowed");
  CHECK(one(R"({"propertyNames":{"maxLength":3}})", R"({"abcd":1})") ==
        "/abcd: string longer than 3");
}

TEST_CASE("schema: pointers escape ~ and /") {
  const char* s = R"({"properties":{"a/b":{"type":"string"},"m~n":{"type":"string"},
                      "":{"type":"string"}}})";
  CHECK(one(s, R"({"a/b":1})") == "/a~1b: expected string, got integer");
  CHECK(one(s, R"({"m~n":1})") == "/m~0n: expected string, got integer");
  CHECK(one(s, R"({"":1})") == "/: expected string, got integer");
  CHECK(one(R"({"additionalProperties":{"type":"string"}})", R"({"~/x":1})") ==
        "/~0~1x: expected string, got integer");
}

TEST_CASE("schema: arrays") {
  CHECK(valid(R"({"items":{"type":"integer"}})", "[1,2,3]"));
  CHECK(one(R"({"items":{"type":"integer"}})", R"([1,"2",3])") ==
        "/1: expected integer, got string");
  CHECK(one(R"({"minItems":2})", "[1]") == ": 1 item, at least 2 required");
  CHECK(one(R"({"maxItems":2})", "[1,2,3]") == ": 3 items, at most 2 allowed");
  CHECK(valid(R"({"minItems":0,"maxItems":0})", "[]"));
  CHECK(valid(R"({"uniqueItems":true})", R"([1,"1",[1],{"a":1},{"a":2}])"));
  CHECK(one(R"({"uniqueItems":true})", R"([{"a":1},2,{"a":1}])") == ": items 0 and 2 are equal");
  CHECK(one(R"({"uniqueItems":true})", "[1,2,1.0]") == ": items 0 and 2 are equal");
  // 2020-12 tuples.
  const char* t = R"({"prefixItems":[{"type":"string"},{"type":"number"}],"items":false})";
  CHECK(valid(t, R"(["a",1])"));
  CHECK(valid(t, R"(["a"])"));
  CHECK(one(t, R"(["a","b"])") == "/1: expected number, got string");
  CHECK(one(t, R"(["a",1,true])") == ": 3 items, at most 2 allowed");
  CHECK(one(R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"}})",
            R"(["a",1,"x"])") == "/2: expected integer, got string");
  // Draft-7 tuples.
  const char* d7 = R"({"items":[{"type":"string"}],"additionalItems":{"type":"boolean"}})";
  CHECK(valid(d7, R"(["a",true,false])"));
  CHECK(one(d7, R"(["a",1])") == "/1: expected boolean, got integer");
  CHECK(one(R"({"contains":{"type":"string"}})", "[1,2]") == R"(: no item matches "contains")");
  CHECK(valid(R"({"contains":{"type":"string"}})", R"([1,"a"])"));
}

TEST_CASE("schema: nested arrays of objects") {
  const char* s = R"({"type":"object","required":["orders"],"properties":{
    "orders":{"type":"array","items":{"type":"object","required":["id","lines"],"properties":{
      "id":{"type":"string","format":"uuid"},
      "lines":{"type":"array","minItems":1,"items":{"type":"object","required":["sku","qty"],
        "properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-\\d{4}$"},
                      "qty":{"type":"integer","minimum":1}}}}}}}}})";
  CHECK(valid(s, R"({"orders":[{"id":"123e4567-e89b-12d3-a456-426614174000",
                     "lines":[{"sku":"ABC-1234","qty":2}]}]})"));
  const auto v = check(s, R"({"orders":[
      {"id":"123e4567-e89b-12d3-a456-426614174000","lines":[{"sku":"ABC-1234","qty":2}]},
      {"id":"not-a-uuid","lines":[{"sku":"abc-1","qty":0},{"qty":1}]},
      {"lines":[]}]})");
  REQUIRE(v.size() == 6);
  CHECK(v[0].pointer == "/orders/1/id");
  CHECK(v[0].message == "not a valid uuid");
  // An object's members are visited in key order (nlohmann::json keeps keys sorted).
  CHECK(v[1].pointer == "/orders/1/lines/0/qty");
  CHECK(v[1].message == "0 is less than minimum 1");
  CHECK(v[2].pointer == "/orders/1/lines/0/sku");
  CHECK(v[2].message == R"(string does not match pattern "^[A-Z]{3}-\\d{4}$")");
  CHECK(v[3].pointer == "/orders/1/lines/1");
  CHECK(v[3].message == R"(missing required property "sku")");
  CHECK(v[4].pointer == "/orders/2");
  CHECK(v[4].message == R"(missing required property "id")");
  CHECK(v[5].pointer == "/orders/2/lines");
  CHECK(v[5].message == "0 items, at least 1 required");
}

TEST_CASE("schema: strings") {
  CHECK(valid(R"({"maxLength":5})", R"("héllo")"));  // 5 code points, 6 bytes
  CHECK(one(R"({"maxLength":4})", R"("héllo")") == ": string longer than 4");
  CHECK(valid(R"({"minLength":3,"maxLength":3})", R"("日本語")"));
  CHECK(one(R"({"minLength":4})", R"("日本語")") == ": string shorter than 4");
  CHECK(valid(R"({"minLength":2})", R"("😀😀")"));
  CHECK(valid(R"({"pattern":"^[a-z]+$"})", R"("abc")"));
  CHECK(valid(R"({"pattern":"b"})", R"("abc")"));  // searched, not anchored
  CHECK(one(R"({"pattern":"^[a-z]+$"})", R"("abc1")") ==
        R"(: string does not match pattern "^[a-z]+$")");
  CHECK(valid(R"({"pattern":"^\\p{L}+$"})", R"("żółw")"));
  const std::string bad = one(R"({"pattern":"(["})", R"("x")");
  CHECK(bad.starts_with(R"(: schema pattern "([" does not compile: )"));
}

TEST_CASE("schema: a catastrophic pattern is cut short") {
  // By PCRE2's match limit, which its message shows (no timing: shared machines).
  const std::string subject = "\"" + std::string(40, 'a') + "!\"";
  const auto v = check(R"({"pattern":"^(a+)+$"})", subject.c_str());
  REQUIRE(v.size() == 1);
  CHECK(v[0].message == R"(pattern "^(a+)+$" too costly to check against this string)");
}

TEST_CASE("schema: numbers") {
  CHECK(valid(R"({"minimum":1,"maximum":3})", "1"));
  CHECK(valid(R"({"minimum":1,"maximum":3})", "3"));
  CHECK(one(R"({"maximum":3})", "3.5") == ": 3.5 is greater than maximum 3");
  CHECK(one(R"({"exclusiveMinimum":1})", "1") == ": 1 is not greater than exclusive minimum 1");
  CHECK(one(R"({"exclusiveMaximum":1})", "1.0") == ": 1.0 is not less than exclusive maximum 1");
  CHECK(valid(R"({"exclusiveMaximum":1})", "0.999"));
  // Draft 4: booleans next to minimum/maximum.
  CHECK(one(R"({"minimum":0,"exclusiveMinimum":true})", "0") ==
        ": 0 is not greater than exclusive minimum 0");
  CHECK(one(R"({"maximum":10,"exclusiveMaximum":true})", "10") ==
        ": 10 is not less than exclusive maximum 10");
  CHECK(valid(R"({"maximum":10,"exclusiveMaximum":false})", "10"));
  // Exact with 64-bit integers of either sign.
  CHECK(one(R"({"maximum":9223372036854775807})", "18446744073709551615") ==
        ": 18446744073709551615 is greater than maximum 9223372036854775807");
  CHECK(valid(R"({"minimum":-9223372036854775808})", "-9223372036854775808"));
  CHECK(valid(R"({"multipleOf":3})", "9"));
  CHECK(one(R"({"multipleOf":3})", "7") == ": 7 is not a multiple of 3");
  CHECK(valid(R"({"multipleOf":0.1})", "0.3"));
  CHECK(valid(R"({"multipleOf":0.01})", "19.99"));
  CHECK(one(R"({"multipleOf":0.5})", "0.3") == ": 0.3 is not a multiple of 0.5");
  CHECK(valid(R"({"multipleOf":0})", "7"));  // invalid schema value: ignored
}

TEST_CASE("schema: formats") {
  auto fmt = [](const char* f, const char* v) {
    return validate_json(json{{"format", f}}, json(v)).empty();
  };
  CHECK(fmt("email", "ada@example.com"));
  CHECK(fmt("email", "first.last+tag@mail.example.co.uk"));
  CHECK_FALSE(fmt("email", "ada@"));
  CHECK_FALSE(fmt("email", "ada example.com"));
  CHECK_FALSE(fmt("email", "ada@example"));
  CHECK_FALSE(fmt("email", ".ada@example.com"));
  CHECK_FALSE(fmt("email", "ada@-example.com"));
  CHECK(fmt("date-time", "2024-02-29T12:30:00Z"));
  CHECK(fmt("date-time", "2024-02-29t12:30:00.123+05:30"));
  CHECK_FALSE(fmt("date-time", "2023-02-29T12:30:00Z"));  // not a leap year
  CHECK_FALSE(fmt("date-time", "2024-01-01T12:30:00"));   // RFC 3339 needs an offset
  CHECK_FALSE(fmt("date-time", "2024-01-01 12:30:00Z"));
  CHECK_FALSE(fmt("date-time", "2024-13-01T00:00:00Z"));
  CHECK_FALSE(fmt("date-time", "2024-01-01T24:00:00Z"));
  CHECK(fmt("date", "2000-02-29"));
  CHECK_FALSE(fmt("date", "1900-02-29"));
  CHECK_FALSE(fmt("date", "2024-04-31"));
  CHECK_FALSE(fmt("date", "2024-4-1"));
  CHECK(fmt("time", "23:59:60Z"));
  CHECK_FALSE(fmt("time", "12:00"));
  CHECK(fmt("uuid", "123e4567-e89b-12d3-a456-426614174000"));
  CHECK_FALSE(fmt("uuid", "123e4567e89b12d3a456426614174000"));
  CHECK_FALSE(fmt("uuid", "123e4567-e89b-12d3-a456-42661417400g"));
  CHECK(fmt("uri", "https://example.com/a?b=c#d"));
  CHECK(fmt("uri", "urn:isbn:0451450523"));
  CHECK(fmt("uri", "mailto:ada@example.com"));
  CHECK_FALSE(fmt("uri", "/relative/path"));
  CHECK_FALSE(fmt("uri", "https://example.com/a b"));
  CHECK_FALSE(fmt("uri", "https://example.com/%zz"));
  CHECK(fmt("ipv4", "192.168.0.1"));
  CHECK_FALSE(fmt("ipv4", "256.1.1.1"));
  CHECK_FALSE(fmt("ipv4", "01.2.3.4"));
  CHECK_FALSE(fmt("ipv4", "1.2.3"));
  CHECK(fmt("ipv6", "::1"));
  CHECK_FALSE(fmt("ipv6", "::g"));
  CHECK(fmt("hostname", "api.example.com"));
  CHECK_FALSE(fmt("hostname", "-bad.example.com"));
  CHECK(fmt("made-up-format", "anything"));
  CHECK(one(R"({"format":"email"})", R"("nope")") == ": not a valid email");
  CHECK(one(R"({"format":"DATE-TIME"})", R"("nope")") == ": not a valid date-time");
  CHECK(valid(R"({"format":"email"})", "3"));  // formats apply to strings only
}

TEST_CASE("schema: anyOf, oneOf, allOf, not, if/then/else") {
  const char* any = R"({"anyOf":[{"type":"string"},{"type":"integer"}]})";
  CHECK(valid(any, R"("a")"));
  CHECK(valid(any, "1"));
  CHECK(one(any, "[]") == ": expected string or integer, got array");
  const char* obj = R"({"anyOf":[{"type":"object","required":["a"]},{"type":"object","properties":
                       {"b":{"type":"object","required":["c"]}},"required":["b"]}]})";
  CHECK(one(obj, R"({"b":{}})") ==
        R"(: matches none of the 2 anyOf alternatives; closest: at /b: missing required )"
        R"(property "c")");
  const char* one_of = R"({"oneOf":[{"type":"integer"},{"minimum":0}]})";
  CHECK(valid(one_of, "-1"));
  CHECK(valid(one_of, "0.5"));
  CHECK(one(one_of, "1") == ": matches 2 oneOf alternatives (0 and 1), exactly one allowed");
  CHECK(one(one_of, "-0.5") ==
        ": matches none of the 2 oneOf alternatives; closest: expected integer, got number");
  const auto all = check(R"({"allOf":[{"minLength":2},{"pattern":"^a"}]})", R"("b")");
  REQUIRE(all.size() == 2);
  CHECK(all[0].message == "string shorter than 2");
  CHECK(all[1].message == R"(string does not match pattern "^a")");
  CHECK(one(R"({"not":{"type":"null"}})", "null") == R"(: must not match the "not" schema)");
  CHECK(valid(R"({"not":{"type":"null"}})", "1"));
  const char* cond = R"({"if":{"properties":{"kind":{"const":"card"}}},
    "then":{"required":["number"]},"else":{"required":["iban"]}})";
  CHECK(valid(cond, R"({"kind":"card","number":"4242"})"));
  CHECK(one(cond, R"({"kind":"card"})") == R"(: missing required property "number")");
  CHECK(one(cond, R"({"kind":"bank"})") == R"(: missing required property "iban")");
}

TEST_CASE("schema: $ref to $defs and definitions") {
  const char* s = R"({"$defs":{"pos":{"type":"integer","minimum":1},"a/b":{"type":"string"}},
    "definitions":{"name":{"type":"string","minLength":1}},
    "properties":{"n":{"$ref":"#/$defs/pos"},"who":{"$ref":"#/definitions/name"},
                  "odd":{"$ref":"#/$defs/a~1b"},"pct":{"$ref":"#/%24defs/pos"},
                  "lost":{"$ref":"#/$defs/missing"},"far":{"$ref":"https://x.io/s.json"}}})";
  CHECK(valid(s, R"({"n":1,"who":"x","odd":"y","pct":2})"));
  CHECK(one(s, R"({"n":0})") == "/n: 0 is less than minimum 1");
  CHECK(one(s, R"({"who":""})") == "/who: string shorter than 1");
  CHECK(one(s, R"({"odd":1})") == "/odd: expected string, got integer");
  CHECK(one(s, R"({"pct":"1"})") == "/pct: expected integer, got string");
  CHECK(one(s, R"({"lost":1})") == R"(/lost: cannot resolve $ref "#/$defs/missing")");
  CHECK(one(s, R"({"far":1})") == R"(/far: cannot resolve $ref "https://x.io/s.json")");
  // A recursive schema over a finite instance.
  const char* tree = R"({"$defs":{"node":{"type":"object","required":["v"],"properties":{
    "v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},
    "$ref":"#/$defs/node"})";
  CHECK(valid(tree, R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]})"));
  CHECK(one(tree, R"({"v":1,"kids":[{"v":2,"kids":[{"v":"3"}]}]})") ==
        "/kids/0/kids/0/v: expected integer, got string");
}

TEST_CASE("schema: cyclic $ref ends with a violation") {
  const auto v = check(R"({"$ref":"#"})", "1");
  REQUIRE(v.size() == 1);
  CHECK(v[0].pointer == "");
  CHECK(v[0].message == "nesting deeper than 200 schema levels (cyclic $ref?); not checked");
  const auto w = check(R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},
                         "properties":{"x":{"$ref":"#/$defs/a"}}})",
                       R"({"x":1})");
  REQUIRE(w.size() == 1);
  CHECK(w[0].pointer == "/x");
  // Another alternative can still succeed.
  CHECK(valid(R"({"anyOf":[{"type":"string"},{"$ref":"#"}]})", R"("s")"));
}

TEST_CASE("schema: exponential schemas run out of steps, not time") {
  // What bounds the time is the step budget, checked by its message (no timing here: the
  // sanitizer build runs this unoptimised, and these machines are shared).
  const auto v = check(R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}]}},
                         "$ref":"#/$defs/a"})",
                       "1");
  REQUIRE(!v.empty());
  CHECK(v.back().message == "schema too complex to check (more than 200000 steps); not checked");
}

TEST_CASE("schema: deep instances stay within bounds") {
  const int depth = 100000;
  const std::string text = std::string(depth, '[') + std::string(depth, ']');
  // Descending schema: cut at the depth limit.
  const auto v = validate_json_text(text, json::parse(R"({"items":{"$ref":"#"}})"));
  REQUIRE(v.size() == 1);
  CHECK(v[0].message == "nesting deeper than 200 schema levels (cyclic $ref?); not checked");
  CHECK(v[0].pointer.starts_with("/0/0/0/0"));
  // enum and uniqueItems do not compare what is too deep to compare safely.
  CHECK(validate_json_text(text, json::parse(R"({"enum":[[]]})"))[0].message ==
        "value nested too deeply to compare with enum/const; not checked");
  CHECK(validate_json_text(text, json::parse(R"({"uniqueItems":true})"))[0].message ==
        "items nested too deeply to compare for uniqueItems; not checked");
  // A schema that does not descend does not care.
  CHECK(validate_json_text(text, json::parse(R"({"type":"array"})")).empty());
}

TEST_CASE("schema: max_violations bounds the output") {
  const std::string arr = "[" + std::string(199, '1') + "]";
  std::string many = "[";
  for (int i = 0; i < 100; ++i) many += std::string(i ? "," : "") + "\"x\"";
  many += "]";
  CHECK(check(R"({"items":{"type":"integer"}})", many.c_str(), 5).size() == 5);
  CHECK(check(R"({"items":{"type":"integer"}})", many.c_str()).size() == 32);
  CHECK(check(R"({"items":{"type":"integer"}})", many.c_str(), 0).empty());
  CHECK(check(R"({"items":{"type":"integer"}})", arr.c_str()).empty());
}

TEST_CASE("schema: OpenAI response_format json_schema, strict mode") {
  // From OpenAI's structured outputs guide: every property required, optional ones nullable,
  // additionalProperties false throughout.
  const json response_format = json::parse(R"({
    "type": "json_schema",
    "json_schema": {
      "name": "math_reasoning", "strict": true,
      "schema": {
        "type": "object",
        "properties": {
          "steps": {"type": "array", "items": {
            "type": "object",
            "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
            "required": ["explanation", "output"], "additionalProperties": false}},
          "final_answer": {"type": "string"},
          "confidence": {"type": ["number", "null"]}
        },
        "required": ["steps", "final_answer", "confidence"],
        "additionalProperties": false
      }}})");
  const json& schema = response_format["json_schema"]["schema"];
  CHECK(validate_json_text(R"({"steps":[{"explanation":"8x = -30","output":"x = -3.75"}],
                              "final_answer":"x = -3.75","confidence":null})",
                           schema)
            .empty());
  const auto v = validate_json_text(
      R"({"steps":[{"explanation":"e","output":"o","note":"extra"}],"final_answer":"x"})", schema);
  REQUIRE(v.size() == 2);
  CHECK(v[0].pointer == "");
  CHECK(v[0].message == R"(missing required property "confidence")");
  CHECK(v[1].pointer == "/steps/0");
  CHECK(v[1].message == R"(additional property "note" not allowed)");
  CHECK(validate_json_text(R"({"steps":[],"final_answer":"x","confidence":"high"})", schema)[0]
            .message == "expected number or null, got string");
}

TEST_CASE("schema: Anthropic tool input_schema") {
  const json tool = json::parse(R"({
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
      "type": "object",
      "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
      },
      "required": ["location"]
    }})");
  const json& schema = tool["input_schema"];
  CHECK(validate_json_text(R"({"location":"San Francisco, CA"})", schema).empty());
  CHECK(validate_json_text(R"({"location":"Paris","unit":"celsius","extra":1})", schema).empty());
  const auto v = validate_json_text(R"({"unit":"kelvin"})", schema);
  REQUIRE(v.size() == 2);
  CHECK(v[0].message == R"(missing required property "location")");
  CHECK(v[1].pointer == "/unit");
  CHECK(v[1].message == R"(value "kelvin" not in enum)");
}

TEST_CASE("schema: Gemini responseSchema with upper-case types and nullable") {
  const json schema = json::parse(R"({
    "type": "ARRAY",
    "items": {
      "type": "OBJECT",
      "properties": {
        "recipeName": {"type": "STRING"},
        "rating": {"type": "INTEGER", "nullable": true, "minimum": 1, "maximum": 5},
        "ingredients": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "1",
                        "maxItems": "3"},
        "cuisine": {"type": "STRING", "format": "enum", "enum": ["italian", "thai"]}
      },
      "required": ["recipeName"],
      "propertyOrdering": ["recipeName", "rating", "ingredients"]
    }})");
  CHECK(validate_json_text(R"([{"recipeName":"Pad thai","rating":null,"ingredients":["noodles"],
                               "cuisine":"thai"}])",
                           schema)
            .empty());
  const auto v = validate_json_text(
      R"([{"recipeName":"Soup","rating":7,"ingredients":[]},{"rating":"5","cuisine":"french"}])",
      schema);
  REQUIRE(v.size() == 5);
  CHECK(v[0].pointer == "/0/ingredients");
  CHECK(v[0].message == "0 items, at least 1 required");
  CHECK(v[1].pointer == "/0/rating");
  CHECK(v[1].message == "7 is greater than maximum 5");
  CHECK(v[2].pointer == "/1");
  CHECK(v[2].message == R"(missing required property "recipeName")");
  CHECK(v[3].pointer == "/1/cuisine");
  CHECK(v[4].pointer == "/1/rating");
  CHECK(v[4].message == "expected integer, got string");
  // nullable false (or absent) does not admit null.
  CHECK(one(R"({"type":"STRING","nullable":false})", "null") == ": expected string, got null");
}

TEST_CASE("schema: model output text") {
  const json schema = json::parse(R"({"type":"object","required":["a"]})");
  CHECK(validate_json_text("```json\n{\"a\": 1}\n```", schema).empty());
  CHECK(validate_json_text("Here you go:\n\n```JSON\n{\"a\": 1}\n```\nAnything else?", schema)
            .empty());
  CHECK(validate_json_text("  \n{\"a\": 1}\n", schema).empty());
  CHECK(validate_json_text("\xEF\xBB\xBF{\"a\": 1}", schema).empty());
  CHECK(validate_json_text("```\n{\"a\": 1}", schema).empty());  // cut-off stream
  CHECK(strip_code_fence("x\n```json\n[1]\n```") == "[1]");
  CHECK(strip_code_fence(" {} ") == "{}");

  const auto bad = validate_json_text("{\"a\": 1, secret_token_value}", schema);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].pointer == "");
  CHECK(bad[0].message ==
        "not valid JSON: parse error at line 1, column 10: syntax error while parsing object key - "
        "invalid literal; expected string literal");
  CHECK(bad[0].message.find("secret_token") == std::string::npos);
  CHECK(bad[0].message.find("[json.exception") == std::string::npos);
  CHECK(validate_json_text("", schema)[0].message.starts_with("not valid JSON: "));
  CHECK(validate_json_text("Sure! {\"a\":1}", schema)[0].message.starts_with("not valid JSON: "));
  CHECK(validate_json_text("{}", schema)[0].message == R"(missing required property "a")");
}

TEST_CASE("schema: finding") {
  const std::vector<SchemaViolation> v = {{"", R"(missing required property "city")"},
                                          {"/unit", R"(value "kelvin" not in enum)"},
                                          {"/days", "expected integer, got string"},
                                          {"/x", "a"},
                                          {"/y", "b"}};
  const Finding f = schema_finding(v, "tool get_weather arguments");
  CHECK(f.detector == "schema.violation");
  CHECK(f.category == Category::kSchema);
  CHECK(f.confidence == 1.0);
  CHECK(f.spans.empty());
  CHECK(f.explanation ==
        R"(Schema violations in tool get_weather arguments: (root): missing required property )"
        R"("city"; /unit: value "kelvin" not in enum; /days: expected integer, got string )"
        R"((and 2 more))");
  const Finding g = schema_finding({{"/a", "string longer than 3"}}, "the response");
  CHECK(g.explanation == "Schema violation in the response: /a: string longer than 3");
  const Finding none = schema_finding({}, "the response");
  CHECK(none.confidence == 0);
  CHECK(none.detector == "schema.violation");
}

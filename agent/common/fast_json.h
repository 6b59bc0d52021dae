// JSON parsing on the hot path (request bodies, every streamed event): simdjson parses,
// and the result is handed on as the nlohmann::json value the adapters read. nlohmann's own
// parser builds every string a character at a time; this is several times faster.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace agentwall {

// Parses `text`; returns a discarded value (is_discarded()) when it is not valid JSON or
// nests deeper than simdjson allows. Thread-safe (one parser per thread).
nlohmann::json parse_json(std::string_view text);

}  // namespace agentwall

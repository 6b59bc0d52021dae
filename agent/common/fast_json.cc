#include "agent/common/fast_json.h"

#include <simdjson.h>

namespace agentwall {
namespace {

nlohmann::json convert(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      nlohmann::json obj = nlohmann::json::object();
      auto& members = obj.get_ref<nlohmann::json::object_t&>();
      for (auto field : simdjson::dom::object(e)) {
        // Last duplicate wins, as with nlohmann's own parser.
        members.insert_or_assign(std::string(field.key), convert(field.value));
      }
      return obj;
    }
    case element_type::ARRAY: {
      nlohmann::json arr = nlohmann::json::array();
      simdjson::dom::array a(e);
      arr.get_ref<nlohmann::json::array_t&>().reserve(a.size());
      for (auto v : a) arr.push_back(convert(v));
      return arr;
    }
    case element_type::STRING:
      return std::string(std::string_view(e));
    case element_type::INT64:
      return int64_t(e);
    case element_type::UINT64:
      return uint64_t(e);
    case element_type::DOUBLE:
      return double(e);
    case element_type::BOOL:
      return bool(e);
    case element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

nlohmann::json parse_json(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: it copies when the input
  // does not say it is padded, which is the safe choice for views into capture buffers.
  if (parser.parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS)
    return nlohmann::json(nlohmann::json::value_t::discarded);
  return convert(root);
}

}  // namespace agentwall

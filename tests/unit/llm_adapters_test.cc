// Provider adapters and route(), on payloads shaped like the providers' own
// (tests/fixtures/llm/<provider>/), fed the way the LLM stage feeds them.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/llm/adapter.h"
#include "agent/llm/call.h"

#ifndef AGENTWALL_FIXTURES
#define AGENTWALL_FIXTURES "tests/fixtures"  // built outside CMake, run from the repo root
#endif

using namespace agentwall;
using namespace agentwall::llm;
using nlohmann::json;

namespace {

std::string fixture(const std::string& name) {
  const std::string path = AGENTWALL_FIXTURES "/llm/" + name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json fixture_json(const std::string& name) {
  return json::parse(fixture(name));
}

struct SseEvent {
  std::string event;
  json data;
};

// The SSE parser is the stream stage's; this is just enough to replay a fixture: blocks split
// on blank lines, `event:` and `data:` fields, the [DONE] sentinel dropped.
std::vector<SseEvent> split_sse(std::string_view text) {
  std::vector<SseEvent> events;
  std::string event, data;
  const auto dispatch = [&] {
    if (!data.empty() && data != "[DONE]") events.push_back({event, json::parse(data)});
    event.clear();
    data.clear();
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) {
      dispatch();
    } else if (line.starts_with("event:")) {
      event = line.substr(line.starts_with("event: ") ? 7 : 6);
    } else if (line.starts_with("data:")) {
      if (!data.empty()) data += '\n';
      data += line.substr(line.starts_with("data: ") ? 6 : 5);
    }
  }
  dispatch();
  return events;
}

std::vector<json> split_ndjson(std::string_view text) {
  std::vector<json> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80           ? 1
                       : (c >> 5) == 0x6  ? 2
                       : (c >> 4) == 0xE  ? 3
                       : (c >> 3) == 0x1E ? 4
                                          : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// One request as the LLM stage sees it.
struct Request {
  std::string host;
  std::string path;
  uint16_t port = 443;
  std::string method = "POST";
  protocol::Headers headers;
  LlmCallLimits limits;

  RequestView view() const { return {method, host, path, &headers, port, limits}; }
};

using Respond = std::function<void(ResponseAccumulator&)>;

Respond body(json j) {
  return [j = std::move(j)](ResponseAccumulator& acc) { acc.on_body(j); };
}
Respond sse(std::string text) {
  return [text = std::move(text)](ResponseAccumulator& acc) {
    for (const SseEvent& e : split_sse(text)) acc.on_event(e.event, e.data);
  };
}
Respond ndjson(std::string text) {
  return [text = std::move(text)](ResponseAccumulator& acc) {
    for (const json& line : split_ndjson(text)) acc.on_event("", line);
  };
}

// Route, parse the request, feed the response, finish: the stage's order.
LlmCall run(const Request& req, const json* request_body, const Respond& respond = {}) {
  const Route r = route(req.view());
  REQUIRE(r.adapter != nullptr);
  LlmCall call;
  call.provider = r.provider;
  r.adapter->parse_request(req.view(), request_body, call);
  auto acc = r.adapter->new_response(call, req.limits);
  if (respond) respond(*acc);
  acc->finish(call);
  return call;
}

LlmCall run(const Request& req, const json& request_body, const Respond& respond = {}) {
  return run(req, &request_body, respond);
}

const Request kOpenAiChat{"api.openai.com", "/v1/chat/completions"};
const Request kOpenAiResponses{"api.openai.com", "/v1/responses"};
const Request kAnthropic{"api.anthropic.com", "/v1/messages"};
const Request kOllamaChat{"localhost", "/api/chat", 11434};

}  // namespace

TEST_CASE("llm: append_capped keeps whole UTF-8 sequences") {
  const std::string text = "aé€😀b";  // 1, 2, 3, 4 and 1 bytes
  for (size_t cap = 0; cap <= text.size() + 1; ++cap) {
    CAPTURE(cap);
    std::string dst;
    bool truncated = false;
    append_capped(dst, text, cap, truncated);
    CHECK(dst.size() <= cap);
    CHECK(valid_utf8(dst));
    CHECK(text.starts_with(dst));
    CHECK(truncated == (cap < text.size()));
  }
  std::string dst = "abc";
  bool truncated = false;
  append_capped(dst, "", 3, truncated);
  CHECK_FALSE(truncated);  // nothing was left out
  append_capped(dst, "d", 3, truncated);
  CHECK(dst == "abc");
  CHECK(truncated);
  // Not UTF-8: a byte cut rather than an endless walk back.
  std::string junk;
  truncated = false;
  append_capped(junk, std::string(10, '\x80'), 4, truncated);
  CHECK(junk.size() == 4);
  CHECK(truncated);
}

TEST_CASE("llm: route table") {
  struct Row {
    std::string host;
    uint16_t port;
    std::string method;
    std::string path;
    protocol::Headers headers;
    std::string provider;  // empty: not an LLM call
    std::string api;
  };
  const std::vector<Row> rows = {
      {"api.openai.com", 443, "POST", "/v1/chat/completions", {}, "openai", "openai"},
      {"API.OpenAI.com.", 443, "POST", "/v1/responses", {}, "openai", "openai"},
      {"api.openai.com", 443, "POST", "/v1/embeddings", {}, "openai", "openai"},
      {"api.openai.com", 443, "GET", "/v1/models", {}, "openai", "unknown"},
      {"api.openai.com", 443, "POST", "/v1/audio/speech", {}, "openai", "unknown"},
      {"myres.openai.azure.com",
       443,
       "POST",
       "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
       {},
       "azure-openai",
       "openai"},
      {"myres.cognitiveservices.azure.com",
       443,
       "POST",
       "/openai/v1/responses",
       {},
       "azure-openai",
       "openai"},
      {"proj.services.ai.azure.com",
       443,
       "POST",
       "/models/chat/completions",
       {},
       "azure-openai",
       "openai"},
      {"openai.azure.com.evil.example", 443, "POST", "/v1/messages", {}, "", ""},
      {"api.anthropic.com", 443, "POST", "/v1/messages", {}, "anthropic", "anthropic"},
      {"api.anthropic.com", 443, "POST", "/v1/messages/count_tokens", {}, "anthropic", "anthropic"},
      {"api.anthropic.com", 443, "POST", "/v1/files", {}, "anthropic", "unknown"},
      {"generativelanguage.googleapis.com",
       443,
       "POST",
       "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
       {},
       "gemini",
       "gemini"},
      {"generativelanguage.googleapis.com",
       443,
       "POST",
       "/v1beta/openai/chat/completions",
       {},
       "gemini",
       "openai"},
      {"us-central1-aiplatform.googleapis.com",
       443,
       "POST",
       "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:"
       "generateContent",
       {},
       "vertex-ai",
       "gemini"},
      {"aiplatform.googleapis.com",
       443,
       "POST",
       "/v1/projects/p/locations/global/publishers/anthropic/models/claude-sonnet-4@20250514:"
       "streamRawPredict",
       {},
       "vertex-ai",
       "anthropic"},
      {"europe-west4-aiplatform.googleapis.com",
       443,
       "POST",
       "/v1/projects/p/locations/europe-west4/endpoints/openapi/chat/completions",
       {},
       "vertex-ai",
       "openai"},
      {"openrouter.ai", 443, "POST", "/api/v1/chat/completions", {}, "openrouter", "openai"},
      {"api.groq.com", 443, "POST", "/openai/v1/chat/completions", {}, "groq", "openai"},
      {"api.mistral.ai", 443, "POST", "/v1/chat/completions", {}, "mistral", "openai"},
      {"api.deepseek.com", 443, "POST", "/chat/completions", {}, "deepseek", "openai"},
      {"api.deepseek.com", 443, "POST", "/anthropic/v1/messages", {}, "deepseek", "anthropic"},
      {"api.together.xyz", 443, "POST", "/v1/completions", {}, "together", "openai"},
      {"api.fireworks.ai",
       443,
       "POST",
       "/inference/v1/chat/completions",
       {},
       "fireworks",
       "openai"},
      {"api.x.ai", 443, "POST", "/v1/chat/completions", {}, "xai", "openai"},
      {"api.perplexity.ai", 443, "POST", "/chat/completions", {}, "perplexity", "openai"},
      {"api.cohere.com", 443, "POST", "/v2/chat", {}, "cohere", "unknown"},
      {"api.cohere.com", 443, "POST", "/compatibility/v1/chat/completions", {}, "cohere", "openai"},
      {"localhost", 11434, "POST", "/api/chat", {}, "ollama", "ollama"},
      {"127.0.0.1", 11434, "POST", "/v1/chat/completions", {}, "ollama", "openai"},
      {"127.0.0.1", 11434, "GET", "/api/tags", {}, "", ""},
      {"localhost", 8000, "POST", "/v1/chat/completions", {}, "vllm", "openai"},
      {"127.0.0.1", 1234, "POST", "/v1/responses", {}, "lmstudio", "openai"},
      {"localhost:8000", 0, "POST", "/v1/completions", {}, "vllm", "openai"},
      {"127.0.0.1", 39211, "POST", "/v1/chat/completions", {}, "openai", "openai"},
      {"llm-gateway.corp.example",
       443,
       "POST",
       "/v1/messages",
       {{"anthropic-version", "2023-06-01"}},
       "anthropic",
       "anthropic"},
      {"llm-gateway.corp.example", 443, "POST", "/v1/messages", {}, "", ""},
      {"127.0.0.1",
       40111,
       "POST",
       "/v1beta/models/gemini-2.0-flash:generateContent",
       {{"x-goog-api-key", "k"}},
       "gemini",
       "gemini"},
      {"127.0.0.1",
       40111,
       "POST",
       "/v1beta/models/gemini-2.0-flash:generateContent?key=k",
       {},
       "gemini",
       "gemini"},
      {"127.0.0.1", 40111, "POST", "/v1beta/models/gemini-2.0-flash:generateContent", {}, "", ""},
      {"gpu-box.lan", 11434, "POST", "/api/generate", {}, "ollama", "ollama"},
      {"ollama.com", 443, "POST", "/api/chat", {}, "ollama", "ollama"},
      {"www.example.com", 443, "GET", "/index.html", {}, "", ""},
      {"www.example.com", 443, "GET", "/v1/chat/completions", {}, "", ""},
      {"www.example.com", 443, "POST", "/static/api/chat", {}, "", ""},
  };
  for (const Row& row : rows) {
    CAPTURE(row.host);
    CAPTURE(row.path);
    const RequestView view{row.method, row.host, row.path, &row.headers, row.port};
    const Route r = route(view);
    CHECK(r.provider == row.provider);
    CHECK((r.adapter == nullptr) == row.provider.empty());
    if (r.adapter != nullptr) CHECK(r.adapter->api() == row.api);
  }
  // The agent started late: no method, no headers.
  const Route late = route(RequestView{"", "api.openai.com", "/v1/chat/completions"});
  CHECK(late.provider == "openai");
}

TEST_CASE("llm: is_known_llm_host") {
  for (const char* host : {"api.openai.com", "API.ANTHROPIC.COM", "x.openai.azure.com",
                           "us-east5-aiplatform.googleapis.com", "aiplatform.googleapis.com",
                           "generativelanguage.googleapis.com", "openrouter.ai", "api.groq.com",
                           "api.together.ai", "api.x.ai", "api.mistral.ai:443"}) {
    CAPTURE(host);
    CHECK(is_known_llm_host(host));
  }
  for (const char* host : {"openai.com", "localhost", "example.com", "notapi.openai.com",
                           "evil-aiplatform.googleapis.com.example", "openai.azure.com"}) {
    CAPTURE(host);
    CHECK_FALSE(is_known_llm_host(host));
  }
}

TEST_CASE("llm: openai chat request") {
  const LlmCall call = run(kOpenAiChat, fixture_json("openai/chat_request.json"));
  CHECK(call.provider == "openai");
  CHECK(call.api == "openai");
  CHECK(call.operation == "chat");
  CHECK(call.model == "gpt-4o-2024-08-06");
  CHECK(call.stream);
  CHECK(call.max_output_tokens == 1024);
  CHECK(call.request_parsed);
  CHECK(call.system == "You are a helpful travel assistant.\n\nAnswer in metric units.");
  REQUIRE(call.messages.size() == 4);
  CHECK(call.messages[0].role == "user");
  CHECK(call.messages[0].text == "What's the weather in Paris and Tokyo right now?\n[image]");
  CHECK(call.messages[1].role == "assistant");
  CHECK(call.messages[1].text == "[tool_call get_local_time]");
  CHECK(call.messages[2].role == "tool");
  CHECK(call.messages[2].text == "14:05 CEST");
  CHECK(call.messages[3].text == "[audio]\n[file]");
  CHECK(call.tools == std::vector<std::string>{"get_weather", "get_local_time"});
  CHECK_FALSE(call.text_truncated);
}

TEST_CASE("llm: openai chat stream with parallel tool calls and include_usage") {
  const LlmCall call = run(kOpenAiChat, fixture_json("openai/chat_request.json"),
                           sse(fixture("openai/chat_stream_tools.sse")));
  CHECK(call.response_parsed);
  CHECK(call.output_text.empty());
  CHECK(call.finish_reason == "tool_calls");
  CHECK(call.response_id == "chatcmpl-AJk1s2Zq9vT4mXb8");
  CHECK(call.response_model == "gpt-4o-2024-08-06");
  REQUIRE(call.tool_calls.size() == 2);
  CHECK(call.tool_calls[0].id == "call_Paris7Ld");
  CHECK(call.tool_calls[0].name == "get_weather");
  CHECK(call.tool_calls[0].arguments == R"({"city": "Paris"})");
  CHECK(call.tool_calls[1].id == "call_Tokyo3Qm");
  CHECK(call.tool_calls[1].name == "get_weather");
  CHECK(json::parse(call.tool_calls[1].arguments) == json{{"city", "東京"}});
  CHECK(call.usage.input_tokens == 212);
  CHECK(call.usage.output_tokens == 48);
  CHECK(call.usage.total_tokens == 260);
  CHECK(call.usage.cache_read_tokens == 128);
  CHECK(call.usage.reasoning_tokens == 0);
  CHECK_FALSE(call.usage.cache_write_tokens.has_value());
}

TEST_CASE("llm: openai chat stream without include_usage has no usage") {
  const json request = {{"model", "gpt-4o-mini"},
                        {"stream", true},
                        {"messages", {{{"role", "user"}, {"content", "Salut !"}}}}};
  const LlmCall call = run(kOpenAiChat, request, sse(fixture("openai/chat_stream_text.sse")));
  CHECK(call.output_text == "Bonjour 👋, ça va ?");
  CHECK(call.finish_reason == "stop");
  CHECK(call.response_model == "gpt-4o-mini-2024-07-18");
  CHECK(call.tool_calls.empty());
  CHECK_FALSE(call.usage.input_tokens.has_value());
  CHECK_FALSE(call.usage.output_tokens.has_value());
  CHECK_FALSE(call.usage.total_tokens.has_value());
}

TEST_CASE("llm: openai chat non-streamed") {
  const json request = {{"model", "gpt-4o"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  SUBCASE("tool calls") {
    const LlmCall call =
        run(kOpenAiChat, request, body(fixture_json("openai/chat_response_tools.json")));
    CHECK_FALSE(call.stream);
    CHECK(call.finish_reason == "tool_calls");
    REQUIRE(call.tool_calls.size() == 2);
    CHECK(call.tool_calls[0].id == "call_FfT1lB0b");
    CHECK(call.tool_calls[1].arguments == R"({"city":"Tokyo"})");
    CHECK(call.usage.input_tokens == 212);
  }
  SUBCASE("reasoning and cached tokens") {
    const LlmCall call =
        run(kOpenAiChat, request, body(fixture_json("openai/chat_response_reasoning.json")));
    CHECK(call.output_text == "The integral evaluates to π/4.");
    CHECK(call.response_model == "o3-mini-2025-01-31");
    CHECK(call.usage.output_tokens == 706);
    CHECK(call.usage.reasoning_tokens == 640);
    CHECK(call.usage.cache_read_tokens == 1664);
  }
  SUBCASE("refusal") {
    const json refused = json::parse(R"({"id":"chatcmpl-r","model":"gpt-4o","choices":[{"index":0,
      "message":{"role":"assistant","content":null,"refusal":"I can't help with that."},
      "finish_reason":"stop"}]})");
    const LlmCall call = run(kOpenAiChat, request, body(refused));
    CHECK(call.output_text == "I can't help with that.");
  }
  SUBCASE("error") {
    const LlmCall call =
        run(kOpenAiChat, request, body(fixture_json("openai/error_response.json")));
    CHECK(call.error.starts_with("Incorrect API key provided"));
    CHECK(call.response_parsed);
  }
  SUBCASE("error inside a stream") {
    const LlmCall call = run(kOpenAiChat, request,
                             sse("data: {\"error\":{\"message\":\"The server had an error\","
                                 "\"type\":\"server_error\"}}\n\n"));
    CHECK(call.error == "The server had an error");
  }
}

TEST_CASE("llm: openai-compatible stream whose tool calls have no index") {
  // Some compatible servers send each call whole, without `index`; a new id is a new call.
  const LlmCall call = run(
      kOpenAiChat, json{{"model", "m"}, {"stream", true}},
      sse(R"(data: {"choices":[{"delta":{"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}
)"));
  REQUIRE(call.tool_calls.size() == 2);
  CHECK(call.tool_calls[0].name == "f");
  CHECK(call.tool_calls[0].arguments == R"({"x":1})");
  CHECK(call.tool_calls[1].id == "b");
  CHECK(call.tool_calls[1].arguments == "{}");
}

TEST_CASE("llm: openai legacy completions") {
  const Request req{"api.openai.com", "/v1/completions"};
  const json request = {{"model", "gpt-3.5-turbo-instruct"},
                        {"prompt", "Say this is a test"},
                        {"max_tokens", 7},
                        {"stream", true}};
  const LlmCall call = run(
      req, request,
      sse(R"(data: {"id":"cmpl-7","object":"text_completion","created":1,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}

data: {"id":"cmpl-7","object":"text_completion","created":1,"choices":[{"text":" is a test","index":0,"logprobs":null,"finish_reason":"length"}],"model":"gpt-3.5-turbo-instruct"}

data: [DONE]
)"));
  CHECK(call.operation == "completions");
  CHECK(call.max_output_tokens == 7);
  REQUIRE(call.messages.size() == 1);
  CHECK(call.messages[0].role == "user");
  CHECK(call.messages[0].text == "Say this is a test");
  CHECK(call.output_text == "This is a test");
  CHECK(call.finish_reason == "length");
}

TEST_CASE("llm: openai responses request") {
  const LlmCall call = run(kOpenAiResponses, fixture_json("openai/responses_request.json"));
  CHECK(call.operation == "responses");
  CHECK(call.model == "gpt-4.1-2025-04-14");
  CHECK(call.stream);
  CHECK(call.max_output_tokens == 2048);
  CHECK(call.system ==
        "You are a coding assistant that talks like a pirate.\n\nPrefer Python in examples.");
  REQUIRE(call.messages.size() == 5);
  CHECK(call.messages[0].role == "user");
  CHECK(call.messages[0].text ==
        "Find the docs for requests.Session and tell me how to set a timeout.\n[image]");
  CHECK(call.messages[1].role == "assistant");
  CHECK(call.messages[1].text == "[tool_call search_docs]");
  CHECK(call.messages[2].role == "tool");
  CHECK(call.messages[2].text == "Session.request(method, url, timeout=None, ...)");
  CHECK(call.messages[3].text == "Arr, found it.");
  CHECK(call.messages[4].text == "Show me the code.");
  CHECK(call.tools == std::vector<std::string>{"search_docs", "web_search_preview", "file_search"});

  const LlmCall plain =
      run(kOpenAiResponses, json{{"model", "gpt-4.1"}, {"input", "Tell me a joke"}});
  REQUIRE(plain.messages.size() == 1);
  CHECK(plain.messages[0].role == "user");
  CHECK(plain.messages[0].text == "Tell me a joke");
  CHECK_FALSE(plain.stream);
}

TEST_CASE("llm: openai responses streamed") {
  const json request = fixture_json("openai/responses_request.json");
  const std::string stream = fixture("openai/responses_stream.sse");
  const std::string code = "{\"code\":\"import requests\\nrequests.get(url, timeout=5)\"}";

  const LlmCall call = run(kOpenAiResponses, request, sse(stream));
  CHECK(call.response_parsed);
  CHECK(call.output_text == "Arr, pass `timeout=5` to each call, matey.");
  CHECK(call.finish_reason == "completed");
  CHECK(call.response_id == "resp_67c9fdcecf488190bdd9a0a5d8e2");
  CHECK(call.response_model == "gpt-4.1-2025-04-14");
  REQUIRE(call.tool_calls.size() == 1);
  CHECK(call.tool_calls[0].id == "call_Rk2pQ9sT");
  CHECK(call.tool_calls[0].name == "run_python");
  CHECK(call.tool_calls[0].arguments == code);
  CHECK(call.usage.input_tokens == 328);
  CHECK(call.usage.output_tokens == 57);
  CHECK(call.usage.total_tokens == 385);
  CHECK(call.usage.cache_read_tokens == 256);
  CHECK(call.usage.reasoning_tokens == 0);

  // Cut before response.completed: what the deltas built is all there is.
  std::vector<SseEvent> events = split_sse(stream);
  events.pop_back();
  const LlmCall cut = run(kOpenAiResponses, request, [&](ResponseAccumulator& acc) {
    for (const SseEvent& e : events) {
      if (e.event == "response.function_call_arguments.done" ||
          e.event == "response.output_item.done") {
        continue;  // only the fragments
      }
      acc.on_event(e.event, e.data);
    }
  });
  CHECK(cut.output_text == "Arr, pass `timeout=5` to each call, matey.");
  REQUIRE(cut.tool_calls.size() == 1);
  CHECK(cut.tool_calls[0].name == "run_python");
  CHECK(cut.tool_calls[0].arguments == code);
  CHECK(cut.finish_reason.empty());
  CHECK_FALSE(cut.usage.input_tokens.has_value());

  // A stream error event.
  const LlmCall failed = run(kOpenAiResponses, request, sse(R"(event: error
data: {"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}
)"));
  CHECK(failed.error == "Something went wrong");
}

TEST_CASE("llm: openai responses non-streamed, incomplete, with a built-in tool call") {
  const LlmCall call = run(kOpenAiResponses, json{{"model", "o4-mini"}, {"input", "search"}},
                           body(fixture_json("openai/responses_response.json")));
  CHECK(call.output_text == "Here is what I found so far");
  CHECK(call.finish_reason == "max_output_tokens");
  REQUIRE(call.tool_calls.size() == 1);
  CHECK(call.tool_calls[0].name == "web_search");
  CHECK(json::parse(call.tool_calls[0].arguments)["query"] == "agentwall ebpf");
  CHECK(call.usage.reasoning_tokens == 384);
  CHECK(call.error.empty());  // "error": null
}

TEST_CASE("llm: openai embeddings") {
  const Request req{"api.openai.com", "/v1/embeddings"};
  const LlmCall call = run(req, fixture_json("openai/embeddings_request.json"),
                           body(fixture_json("openai/embeddings_response.json")));
  CHECK(call.operation == "embeddings");
  CHECK(call.embedding_inputs == 3);
  CHECK(call.model == "text-embedding-3-small");
  CHECK(call.output_text.empty());
  CHECK(call.usage.input_tokens == 21);
  CHECK(call.usage.total_tokens == 21);
  CHECK_FALSE(call.usage.output_tokens.has_value());
  CHECK(run(req, json{{"input", "one"}}).embedding_inputs == 1);
  CHECK(run(req, json{{"input", {1, 2, 3}}}).embedding_inputs == 1);  // one token array
  CHECK(run(req, json{{"input", {{1, 2}, {3}}}}).embedding_inputs == 2);
}

TEST_CASE("llm: azure openai names the deployment") {
  const Request req{"contoso.openai.azure.com",
                    "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"};
  const json request = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const LlmCall call = run(req, request, body(fixture_json("openai/chat_response_tools.json")));
  CHECK(call.provider == "azure-openai");
  CHECK(call.api == "openai");
  CHECK(call.model == "gpt4o-prod");
  CHECK(call.response_model == "gpt-4o-2024-08-06");
  CHECK(run(req, nullptr).model == "gpt4o-prod");  // body not seen

  const Request v1{"contoso.cognitiveservices.azure.com", "/openai/v1/responses"};
  const LlmCall responses = run(v1, json{{"model", "gpt-4.1-mini"}, {"input", "hi"}});
  CHECK(responses.provider == "azure-openai");
  CHECK(responses.operation == "responses");
  CHECK(responses.model == "gpt-4.1-mini");
}

TEST_CASE("llm: anthropic request") {
  const LlmCall call = run(kAnthropic, fixture_json("anthropic/messages_request.json"));
  CHECK(call.provider == "anthropic");
  CHECK(call.api == "anthropic");
  CHECK(call.operation == "chat");
  CHECK(call.model == "claude-sonnet-4-5-20250929");
  CHECK(call.stream);
  CHECK(call.max_output_tokens == 4096);
  CHECK(call.system ==
        "You are Claude Code, Anthropic's official CLI for Claude.\nWorking directory: "
        "/home/dev/agentwall");
  REQUIRE(call.messages.size() == 3);
  CHECK(call.messages[0].text == "What's the weather in San Francisco?\n[image]");
  CHECK(call.messages[1].role == "assistant");
  CHECK(call.messages[1].text == "Let me check.\n[tool_call get_weather]");
  CHECK(call.messages[2].text == "15 degrees, fog\n[document]\nAnd tomorrow?");
  CHECK(call.tools == std::vector<std::string>{"get_weather", "web_search"});

  const LlmCall simple =
      run(kAnthropic, json{{"model", "claude-3-5-haiku-latest"},
                           {"system", "Be brief."},
                           {"messages", {{{"role", "user"}, {"content", "Hi"}}}}});
  CHECK(simple.system == "Be brief.");
  REQUIRE(simple.messages.size() == 1);
  CHECK(simple.messages[0].text == "Hi");
  CHECK_FALSE(simple.stream);
}

TEST_CASE("llm: anthropic stream with thinking, text and input_json_delta") {
  const LlmCall call = run(kAnthropic, fixture_json("anthropic/messages_request.json"),
                           sse(fixture("anthropic/messages_stream.sse")));
  CHECK(call.response_parsed);
  CHECK(call.output_text == "Okay, let's check tomorrow's forecast.");  // no thinking
  CHECK(call.response_id == "msg_014p7gG3wDgGV9EUtLvnow3U");
  CHECK(call.response_model == "claude-sonnet-4-5-20250929");
  CHECK(call.finish_reason == "tool_use");
  REQUIRE(call.tool_calls.size() == 2);
  CHECK(call.tool_calls[0].id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
  CHECK(call.tool_calls[0].name == "get_weather");
  CHECK(call.tool_calls[0].arguments == R"({"location": "San Francisco, CA", "unit": "celsius"})");
  CHECK(call.tool_calls[1].name == "get_time");
  CHECK(call.tool_calls[1].arguments == "{}");
  // As reported: input_tokens leaves out the cached prompt.
  CHECK(call.usage.input_tokens == 472);
  CHECK(call.usage.cache_read_tokens == 2048);
  CHECK(call.usage.cache_write_tokens == 0);
  CHECK(call.usage.output_tokens == 89);  // message_delta's cumulative count
  CHECK_FALSE(call.usage.total_tokens.has_value());
}

TEST_CASE("llm: anthropic message_delta usage replaces, newer fields included") {
  const LlmCall call = run(kAnthropic, json{{"model", "claude-sonnet-4-5"}, {"stream", true}},
                           sse(R"(event: message_start
data: {"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":40}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"cache_read_input_tokens":5,"output_tokens":75}}
)"));
  CHECK(call.usage.output_tokens == 75);
  CHECK(call.usage.input_tokens == 12);
  CHECK(call.usage.cache_read_tokens == 5);
  CHECK(call.finish_reason == "end_turn");
}

TEST_CASE("llm: anthropic non-streamed") {
  const LlmCall call = run(kAnthropic, fixture_json("anthropic/messages_request.json"),
                           body(fixture_json("anthropic/messages_response.json")));
  CHECK(call.output_text == "I'll look that up for you. One moment.");
  CHECK(call.response_model == "claude-opus-4-1-20250805");
  CHECK(call.finish_reason == "tool_use");
  REQUIRE(call.tool_calls.size() == 1);
  CHECK(call.tool_calls[0].id == "toolu_01D7FLrfh4GYq7yT1ULFeyMV");
  CHECK(json::parse(call.tool_calls[0].arguments) ==
        json{{"ticker", "^GSPC"}, {"exchange", "NYSE"}});
  CHECK(call.usage.input_tokens == 21);
  CHECK(call.usage.cache_write_tokens == 1553);
  CHECK(call.usage.cache_read_tokens == 0);
  CHECK(call.usage.output_tokens == 393);
}

TEST_CASE("llm: anthropic errors") {
  const LlmCall mid = run(kAnthropic, json{{"model", "claude-3-5-haiku-20241022"}},
                          sse(fixture("anthropic/overloaded_stream.sse")));
  CHECK(mid.error == "Overloaded");
  CHECK(mid.output_text == "Hello");
  const LlmCall whole = run(kAnthropic, json{{"model", "claude-3-5-haiku-20241022"}},
                            body(fixture_json("anthropic/error_response.json")));
  CHECK(whole.error == "max_tokens: Field required");
}

TEST_CASE("llm: anthropic count_tokens and Vertex rawPredict") {
  const Request count{"api.anthropic.com", "/v1/messages/count_tokens"};
  const LlmCall counted = run(count,
                              json{{"model", "claude-sonnet-4-5"},
                                   {"messages", {{{"role", "user"}, {"content", "Hello"}}}}},
                              body(json{{"input_tokens", 14}}));
  CHECK(counted.operation == "count_tokens");
  CHECK(counted.usage.input_tokens == 14);

  const Request vertex{"us-east5-aiplatform.googleapis.com",
                       "/v1/projects/acme/locations/us-east5/publishers/anthropic/models/"
                       "claude-sonnet-4@20250514:streamRawPredict"};
  const json request = {{"anthropic_version", "vertex-2023-10-16"},
                        {"max_tokens", 256},
                        {"messages", {{{"role", "user"}, {"content", "Hey Claude!"}}}}};
  const LlmCall call = run(vertex, request, sse(fixture("anthropic/messages_stream.sse")));
  CHECK(call.provider == "vertex-ai");
  CHECK(call.api == "anthropic");
  CHECK(call.model == "claude-sonnet-4@20250514");
  CHECK(call.stream);
  CHECK(call.tool_calls.size() == 2);

  const Request escaped{"aiplatform.googleapis.com",
                        "/v1/projects/acme/locations/global/publishers/anthropic/models/"
                        "claude-opus-4-1%4020250805:rawPredict"};
  const LlmCall plain = run(escaped, request);
  CHECK(plain.model == "claude-opus-4-1@20250805");
  CHECK_FALSE(plain.stream);
}

TEST_CASE("llm: gemini request") {
  const Request req{"generativelanguage.googleapis.com",
                    "/v1beta/models/gemini-2.5-flash:generateContent"};
  const LlmCall call = run(req, fixture_json("gemini/generate_request.json"));
  CHECK(call.provider == "gemini");
  CHECK(call.api == "gemini");
  CHECK(call.operation == "chat");
  CHECK(call.model == "gemini-2.5-flash");
  CHECK_FALSE(call.stream);
  CHECK(call.max_output_tokens == 800);
  CHECK(call.system == "You are a concise assistant.\nUse tools when helpful.");
  REQUIRE(call.messages.size() == 4);
  CHECK(call.messages[0].role == "user");
  CHECK(call.messages[0].text ==
        "Turn on the lights in the living room and describe this photo.\n[image]");
  CHECK(call.messages[1].role == "model");
  CHECK(call.messages[1].text == "[tool_call set_light]");
  CHECK(call.messages[2].text == R"([tool_result set_light] {"result":"ok"})");
  CHECK(call.messages[3].text == "[file]\nSummarize the attached manual too.");
  CHECK(call.tools == std::vector<std::string>{"set_light", "get_thermostat", "googleSearch"});
}

TEST_CASE("llm: gemini non-streamed function calls") {
  const Request req{"generativelanguage.googleapis.com",
                    "/v1beta/models/gemini-2.5-flash:generateContent"};
  const LlmCall call = run(req, fixture_json("gemini/generate_request.json"),
                           body(fixture_json("gemini/generate_response.json")));
  CHECK(call.output_text == "Turning on both lights.");  // the thought part is left out
  CHECK(call.finish_reason == "STOP");
  CHECK(call.response_model == "gemini-2.5-flash");
  CHECK(call.response_id == "mFq_aNbKF8aB1dkPmPu2yAM");
  REQUIRE(call.tool_calls.size() == 2);
  CHECK(call.tool_calls[0].name == "set_light");
  CHECK(json::parse(call.tool_calls[1].arguments) == json{{"room", "hallway"}, {"on", true}});
  // As reported: prompt includes the cached tokens, candidates exclude the thoughts.
  CHECK(call.usage.input_tokens == 312);
  CHECK(call.usage.output_tokens == 38);
  CHECK(call.usage.cache_read_tokens == 256);
  CHECK(call.usage.reasoning_tokens == 150);
  CHECK(call.usage.total_tokens == 500);
}

TEST_CASE("llm: gemini streamed") {
  const Request req{"generativelanguage.googleapis.com",
                    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"};
  const json request = json::parse(R"({"contents":[{"parts":[{"text":"Write a pangram"}]}]})");
  const std::string stream = fixture("gemini/stream.sse");
  const auto check = [](const LlmCall& call) {
    CHECK(call.stream);
    CHECK(call.model == "gemini-2.0-flash");
    CHECK(call.output_text ==
          "The quick brown fox jumps over the lazy dog. Ünïcödé works too 🦊");
    CHECK(call.finish_reason == "STOP");
    CHECK(call.response_id == "3hVyaLq2Oc6Nz7IP2JWmgQg");
    CHECK(call.usage.input_tokens == 9);
    CHECK(call.usage.output_tokens == 21);  // the last piece's usage wins
    CHECK(call.usage.total_tokens == 30);
  };
  SUBCASE("SSE (alt=sse)") {
    check(run(req, request, sse(stream)));
  }
  SUBCASE("one JSON array (no alt=sse)") {
    json pieces = json::array();
    for (const SseEvent& e : split_sse(stream)) pieces.push_back(e.data);
    check(run(req, request, body(pieces)));
  }
  const LlmCall one = run(req, request);
  REQUIRE(one.messages.size() == 1);
  CHECK(one.messages[0].role == "user");  // role left out means user

  const LlmCall plain_system =
      run(req, json{{"systemInstruction", "Be brief."}, {"contents", "not an array"}});
  CHECK(plain_system.system == "Be brief.");
}

TEST_CASE("llm: gemini errors, blocked prompt, embeddings, countTokens") {
  const Request gen{"generativelanguage.googleapis.com",
                    "/v1beta/models/gemini-2.5-pro:generateContent"};
  const LlmCall error = run(gen, json::object(), body(fixture_json("gemini/error_response.json")));
  CHECK(error.error.starts_with("You exceeded your current quota"));

  const LlmCall blocked = run(
      gen, json::object(),
      body(json::parse(
          R"({"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}})")));
  CHECK(blocked.finish_reason == "SAFETY");
  CHECK(blocked.usage.input_tokens == 8);

  const Request embed{"generativelanguage.googleapis.com",
                      "/v1beta/models/text-embedding-004:batchEmbedContents"};
  const LlmCall embedded =
      run(embed, fixture_json("gemini/embed_request.json"),
          body(json::parse(R"({"embeddings":[{"values":[0.1,0.2]},{"values":[0.3,0.4]}]})")));
  CHECK(embedded.operation == "embeddings");
  CHECK(embedded.embedding_inputs == 2);
  CHECK(embedded.model == "text-embedding-004");
  CHECK(embedded.output_text.empty());

  const Request count{"generativelanguage.googleapis.com",
                      "/v1beta/models/gemini-2.0-flash:countTokens"};
  const LlmCall counted = run(count, json::object(), body(json{{"totalTokens", 31}}));
  CHECK(counted.operation == "count_tokens");
  CHECK(counted.usage.input_tokens == 31);
}

TEST_CASE("llm: vertex gemini with snake_case fields") {
  const Request req{"us-central1-aiplatform.googleapis.com",
                    "/v1/projects/acme-prod/locations/us-central1/publishers/google/models/"
                    "gemini-2.5-pro:streamGenerateContent?alt=sse"};
  const LlmCall call =
      run(req, fixture_json("gemini/vertex_request.json"), sse(fixture("gemini/stream.sse")));
  CHECK(call.provider == "vertex-ai");
  CHECK(call.api == "gemini");
  CHECK(call.model == "gemini-2.5-pro");
  CHECK(call.stream);
  CHECK(call.system == "Answer in French.");
  CHECK(call.max_output_tokens == 256);
  REQUIRE(call.messages.size() == 1);
  CHECK(call.messages[0].text == "Why is the sky blue?");
  CHECK(call.usage.output_tokens == 21);
}

TEST_CASE("llm: ollama chat streams NDJSON by default") {
  const LlmCall call = run(kOllamaChat, fixture_json("ollama/chat_request.json"),
                           ndjson(fixture("ollama/chat_stream.ndjson")));
  CHECK(call.provider == "ollama");
  CHECK(call.api == "ollama");
  CHECK(call.operation == "chat");
  CHECK(call.stream);  // no "stream" in the request: Ollama streams
  CHECK(call.model == "llama3.2");
  CHECK(call.max_output_tokens == 256);
  CHECK(call.system == "You are a shell expert.");
  REQUIRE(call.messages.size() == 3);
  CHECK(call.messages[0].text == "What is in this screenshot?\n[image]");
  CHECK(call.messages[1].text == "[tool_call list_files]");
  CHECK(call.messages[2].role == "tool");
  CHECK(call.tools == std::vector<std::string>{"list_files"});
  CHECK(call.output_text == "The screenshot shows two files.");
  CHECK(call.finish_reason == "stop");
  CHECK(call.response_model == "llama3.2");
  CHECK(call.usage.input_tokens == 26);
  CHECK(call.usage.output_tokens == 282);
}

TEST_CASE("llm: ollama tool calls, generate and embeddings") {
  json request = fixture_json("ollama/chat_request.json");
  request["stream"] = false;
  const LlmCall tools =
      run(kOllamaChat, request, body(fixture_json("ollama/chat_tools_response.json")));
  CHECK_FALSE(tools.stream);
  CHECK(tools.output_text.empty());  // the thinking is not the answer
  REQUIRE(tools.tool_calls.size() == 2);
  CHECK(tools.tool_calls[0].name == "list_files");
  CHECK(json::parse(tools.tool_calls[0].arguments) == json{{"path", "/var/log"}});
  CHECK(json::parse(tools.tool_calls[1].arguments)["lines"] == 20);
  CHECK(tools.usage.input_tokens == 184);

  const Request gen{"127.0.0.1", "/api/generate", 11434};
  const LlmCall generated = run(gen, fixture_json("ollama/generate_request.json"),
                                ndjson(fixture("ollama/generate_stream.ndjson")));
  CHECK(generated.operation == "generate");
  CHECK(generated.stream);
  CHECK(generated.system == "Only output code.");
  REQUIRE(generated.messages.size() == 1);
  CHECK(generated.messages[0].text == "Write a bash one-liner that counts lines in *.cc files.");
  CHECK(generated.output_text == "find . -name '*.cc' | xargs wc -l");
  CHECK(generated.finish_reason == "length");
  CHECK(generated.usage.output_tokens == 64);

  const Request embed{"localhost", "/api/embed", 11434};
  const LlmCall embedded =
      run(embed,
          json{{"model", "all-minilm"}, {"input", {"Why is the sky blue?", "Why is grass green?"}}},
          body(fixture_json("ollama/embed_response.json")));
  CHECK(embedded.operation == "embeddings");
  CHECK_FALSE(embedded.stream);
  CHECK(embedded.embedding_inputs == 2);
  CHECK(embedded.usage.input_tokens == 8);

  const LlmCall failed =
      run(kOllamaChat, json{{"model", "nope"}},
          body(json{{"error", "model \"nope\" not found, try pulling it first"}}));
  CHECK(failed.error == "model \"nope\" not found, try pulling it first");
}

TEST_CASE("llm: unknown adapter reads what any JSON API shares") {
  const Request cohere{"api.cohere.com", "/v2/chat"};
  const json request = json::parse(R"({"model":"command-a-03-2025","stream":false,"messages":[
    {"role":"system","content":"You are terse."},
    {"role":"user","content":[{"type":"text","text":"Hello"}]}]})");
  const json response = json::parse(R"({"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"Hi."}]},
    "usage":{"billed_units":{"input_tokens":5,"output_tokens":2},"tokens":{"input_tokens":71,"output_tokens":2}}})");
  const LlmCall call = run(cohere, request, body(response));
  CHECK(call.provider == "cohere");
  CHECK(call.api == "unknown");
  CHECK(call.operation == "unknown");
  CHECK(call.model == "command-a-03-2025");
  CHECK(call.system == "You are terse.");
  REQUIRE(call.messages.size() == 1);
  CHECK(call.messages[0].text == "Hello");
  CHECK(call.usage.input_tokens == 71);
  CHECK(call.response_id == "c14c80c3-18eb-4519-9460-6c92edd8cfb4");

  const Request models{"api.openai.com", "/v1/models", 443, "GET"};
  const LlmCall listed =
      run(models, nullptr, body(json{{"object", "list"}, {"data", json::array()}}));
  CHECK(listed.api == "unknown");
  CHECK_FALSE(listed.request_parsed);
  CHECK(listed.response_parsed);
}

TEST_CASE("llm: caps on texts and messages") {
  Request req = kOpenAiChat;
  req.limits.max_text_bytes = 24;
  req.limits.max_messages = 2;
  json request = fixture_json("openai/chat_request.json");
  const LlmCall call = run(req, request, sse(fixture("openai/chat_stream_tools.sse")));
  CHECK(call.text_truncated);
  CHECK(call.system.size() <= 24);
  REQUIRE(call.messages.size() == 2);  // the newest two
  CHECK(call.messages[0].role == "tool");
  CHECK(call.messages[1].text == "[audio]\n[file]");
  for (const ChatMessage& m : call.messages) CHECK(m.text.size() <= 24);
  for (const ToolCall& t : call.tool_calls) CHECK(t.arguments.size() <= 24);

  // A streamed text cut inside a multi-byte character stays cut: a later short piece that
  // would fit must not land after the hole.
  Request small = kOpenAiChat;
  small.limits.max_text_bytes = 8;
  const LlmCall streamed = run(small, json{{"model", "m"}}, [](ResponseAccumulator& acc) {
    for (const char* piece : {"abcdefg", "€uro", "x"}) {
      acc.on_event("", json{{"choices", {{{"index", 0}, {"delta", {{"content", piece}}}}}}});
    }
  });
  CHECK(streamed.output_text == "abcdefg");
  CHECK(streamed.text_truncated);

  Request few = kAnthropic;
  few.limits.max_messages = 0;
  const LlmCall none = run(few, fixture_json("anthropic/messages_request.json"));
  CHECK(none.messages.empty());
  CHECK(none.text_truncated);

  const LlmCall whole = run(kOpenAiChat, fixture_json("openai/chat_request.json"));
  CHECK_FALSE(whole.text_truncated);
}

namespace {

// Every node of `j`, as a JSON pointer.
void collect_pointers(const json& j, const json::json_pointer& at,
                      std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) collect_pointers(value, at / key, out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) collect_pointers(j[i], at / i, out);
  }
}

// Each node of `doc` replaced, one at a time, by a value of every other type.
std::vector<json> confused_variants(const json& doc) {
  const json odd[] = {nullptr, 7, -1.5, "x", true, json::array(), json::object(), json{1, "a"}};
  std::vector<json::json_pointer> pointers;
  collect_pointers(doc, json::json_pointer{}, pointers);
  std::vector<json> variants;
  for (const auto& p : pointers) {
    for (const json& v : odd) {
      json copy = doc;
      copy[p] = v;
      variants.push_back(std::move(copy));
    }
  }
  return variants;
}

}  // namespace

TEST_CASE("llm: type-confused payloads never throw or crash") {
  struct Case {
    Request req;
    std::string request;
    std::string response;  // .json: a body; .sse / .ndjson: events
  };
  const Request gemini{"generativelanguage.googleapis.com",
                       "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"};
  const Request cohere{"api.cohere.com", "/v2/chat"};
  const std::vector<Case> cases = {
      {kOpenAiChat, "openai/chat_request.json", "openai/chat_stream_tools.sse"},
      {kOpenAiChat, "openai/chat_request.json", "openai/chat_response_tools.json"},
      {kOpenAiResponses, "openai/responses_request.json", "openai/responses_stream.sse"},
      {kOpenAiResponses, "openai/responses_request.json", "openai/responses_response.json"},
      {Request{"api.openai.com", "/v1/embeddings"}, "openai/embeddings_request.json",
       "openai/embeddings_response.json"},
      {kAnthropic, "anthropic/messages_request.json", "anthropic/messages_stream.sse"},
      {kAnthropic, "anthropic/messages_request.json", "anthropic/messages_response.json"},
      {gemini, "gemini/generate_request.json", "gemini/generate_response.json"},
      {gemini, "gemini/vertex_request.json", "gemini/stream.sse"},
      {kOllamaChat, "ollama/chat_request.json", "ollama/chat_stream.ndjson"},
      {kOllamaChat, "ollama/chat_request.json", "ollama/chat_tools_response.json"},
      {cohere, "openai/chat_request.json", "openai/chat_response_reasoning.json"},
  };
  size_t runs = 0;
  for (const Case& c : cases) {
    CAPTURE(c.response);
    const json request = fixture_json(c.request);
    std::vector<SseEvent> events;
    json whole;
    if (c.response.ends_with(".sse")) {
      events = split_sse(fixture(c.response));
    } else if (c.response.ends_with(".ndjson")) {
      for (json& line : split_ndjson(fixture(c.response))) events.push_back({"", std::move(line)});
    } else {
      whole = fixture_json(c.response);
    }
    // The request, confused.
    for (const json& variant : confused_variants(request)) {
      run(c.req, variant);
      ++runs;
    }
    // The response, confused: the body, or each event in turn.
    if (events.empty()) {
      for (const json& variant : confused_variants(whole)) {
        run(c.req, request, body(variant));
        run(c.req, request, [&](ResponseAccumulator& acc) { acc.on_event("", variant); });
        ++runs;
      }
    }
    for (size_t i = 0; i < events.size(); ++i) {
      for (const json& variant : confused_variants(events[i].data)) {
        run(c.req, request, [&](ResponseAccumulator& acc) {
          for (size_t k = 0; k < events.size(); ++k) {
            acc.on_event(events[k].event, k == i ? variant : events[k].data);
          }
        });
        ++runs;
      }
    }
  }
  CHECK(runs > 10000);

  // Shapes a parser could still trip on.
  const Request any_adapter[] = {kOpenAiChat, kOpenAiResponses, kAnthropic,
                                 gemini,      kOllamaChat,      cohere};
  const json oddities[] = {
      json::parse(R"({"messages":"hello","usage":[1,2,3],"choices":{"0":{}}})"),
      json::parse(
          R"({"choices":[{"index":"0","delta":"text"},{"delta":{"tool_calls":[{"index":-5}]}}]})"),
      json::parse(
          R"({"choices":[{"delta":{"tool_calls":[{"index":18446744073709551615,"function":{"name":7}}]}}]})"),
      json::parse(
          R"({"usage":{"prompt_tokens":1e300,"completion_tokens":-0.5,"total_tokens":"9"}})"),
      json::parse(
          R"({"type":"content_block_delta","index":99,"delta":{"type":"input_json_delta","partial_json":{}}})"),
      json::parse(R"({"candidates":[{"content":{"parts":"text"}}],"usageMetadata":[]})"),
      json::parse(R"([[[[{"error":{}}]]]])"),
      json::parse(R"("[DONE]")"),
      json(nullptr),
  };
  json deep = json::array();
  for (int i = 0; i < 2000; ++i) {
    json block = {{"type", "tool_result"}};
    block["content"] = std::move(deep);
    deep = json::array({std::move(block)});
  }
  for (const Request& req : any_adapter) {
    CAPTURE(req.path);
    for (const json& odd : oddities) {
      CHECK_NOTHROW(run(req, odd, body(odd)));
      CHECK_NOTHROW(run(req, odd, [&](ResponseAccumulator& acc) { acc.on_event("x", odd); }));
    }
    CHECK_NOTHROW(run(req, json{{"messages", {{{"role", "user"}, {"content", deep}}}},
                                {"system", deep},
                                {"input", deep}}));
  }
}

TEST_CASE("llm: the schemas a request declares are kept, for verifying the answer") {
  const json weather = {
      {"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}};
  SUBCASE("openai chat: tool parameters and response_format json_schema") {
    const json body = {
        {"model", "gpt-4o"},
        {"messages", {{{"role", "user"}, {"content", "hi"}}}},
        {"tools",
         {{{"type", "function"},
           {"function", {{"name", "get_weather"}, {"parameters", weather}}}}}},
        {"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", "out"}, {"schema", weather}}}}}};
    const LlmCall call = run(kOpenAiChat, body);
    REQUIRE(call.tool_schemas.count("get_weather") == 1);
    CHECK(json::parse(call.tool_schemas.at("get_weather")) == weather);
    CHECK(json::parse(call.output_schema) == weather);
  }
  SUBCASE("openai responses: flat function tools and text.format") {
    const json body = {
        {"model", "gpt-4o"},
        {"input", "hi"},
        {"tools", {{{"type", "function"}, {"name", "get_weather"}, {"parameters", weather}}}},
        {"text", {{"format", {{"type", "json_schema"}, {"name", "out"}, {"schema", weather}}}}}};
    const LlmCall call = run(kOpenAiResponses, body);
    CHECK(call.tool_schemas.count("get_weather") == 1);
    CHECK(json::parse(call.output_schema) == weather);
  }
  SUBCASE("anthropic: input_schema") {
    const LlmCall call = run(kAnthropic, fixture_json("anthropic/messages_request.json"));
    CHECK_FALSE(call.tool_schemas.empty());
    for (const auto& [name, schema] : call.tool_schemas) CHECK(json::parse(schema).is_object());
  }
  SUBCASE("gemini: function parameters and responseSchema") {
    const Request req{"generativelanguage.googleapis.com",
                      "/v1beta/models/gemini-2.5-flash:generateContent"};
    const json body = {
        {"contents", {{{"role", "user"}, {"parts", {{{"text", "hi"}}}}}}},
        {"tools",
         {{{"functionDeclarations", {{{"name", "get_weather"}, {"parameters", weather}}}}}}},
        {"generationConfig", {{"responseSchema", weather}}}};
    const LlmCall call = run(req, body);
    CHECK(call.tool_schemas.count("get_weather") == 1);
    CHECK(json::parse(call.output_schema) == weather);
  }
  SUBCASE("a schema that is not an object, or too large, is left out") {
    json big = weather;
    big["description"] = std::string(kMaxSchemaBytes, 'x');
    const json body = {
        {"model", "gpt-4o"},
        {"messages", {{{"role", "user"}, {"content", "hi"}}}},
        {"tools",
         {{{"type", "function"}, {"function", {{"name", "a"}, {"parameters", big}}}},
          {{"type", "function"}, {"function", {{"name", "b"}, {"parameters", 3}}}}}}};
    const LlmCall call = run(kOpenAiChat, body);
    CHECK(call.tool_schemas.empty());
    CHECK(call.tools == std::vector<std::string>{"a", "b"});
  }
}

// Which provider serves a request and which adapter reads it.
//
// A known provider host names the provider; its path picks the API family (many providers serve
// OpenAI-compatible paths, some also Anthropic's) and any other path gets the unknown adapter.
// On any other host (gateways, local servers, test stand-ins) only a path of a known family
// makes an LLM call, and the provider is then the API family's name ("openai", "anthropic",
// "gemini", "ollama") unless the port names a local server (Ollama, vLLM, LM Studio).
#include <array>
#include <cctype>
#include <string>

#include "agent/llm/adapter.h"
#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm {
namespace {

using providers::ends_with;

enum class HostMatch : uint8_t {
  kExact,
  kSubdomain,  // {anything}.domain
  kRegional,   // domain itself or {region}-domain (Vertex AI)
};

struct KnownHost {
  std::string_view domain;
  HostMatch match;
  std::string_view provider;
};

constexpr std::array kKnownHosts = {
    KnownHost{"api.openai.com", HostMatch::kExact, "openai"},
    KnownHost{"openai.azure.com", HostMatch::kSubdomain, "azure-openai"},
    KnownHost{"cognitiveservices.azure.com", HostMatch::kSubdomain, "azure-openai"},
    KnownHost{"services.ai.azure.com", HostMatch::kSubdomain, "azure-openai"},
    KnownHost{"api.anthropic.com", HostMatch::kExact, "anthropic"},
    KnownHost{"generativelanguage.googleapis.com", HostMatch::kExact, "gemini"},
    KnownHost{"aiplatform.googleapis.com", HostMatch::kRegional, "vertex-ai"},
    KnownHost{"openrouter.ai", HostMatch::kExact, "openrouter"},
    KnownHost{"api.groq.com", HostMatch::kExact, "groq"},
    KnownHost{"api.mistral.ai", HostMatch::kExact, "mistral"},
    KnownHost{"api.deepseek.com", HostMatch::kExact, "deepseek"},
    KnownHost{"api.together.xyz", HostMatch::kExact, "together"},
    KnownHost{"api.together.ai", HostMatch::kExact, "together"},
    KnownHost{"api.fireworks.ai", HostMatch::kExact, "fireworks"},
    KnownHost{"api.x.ai", HostMatch::kExact, "xai"},
    KnownHost{"api.perplexity.ai", HostMatch::kExact, "perplexity"},
    KnownHost{"api.cohere.com", HostMatch::kExact, "cohere"},
    KnownHost{"api.cohere.ai", HostMatch::kExact, "cohere"},
    KnownHost{"ollama.com", HostMatch::kExact, "ollama"},
};

// Local servers are told apart only by their default port.
struct LocalServer {
  uint16_t port;
  std::string_view provider;
};
constexpr std::array kLocalServers = {
    LocalServer{11434, "ollama"},
    LocalServer{8000, "vllm"},
    LocalServer{1234, "lmstudio"},
};

struct Authority {
  std::string host;  // lower case, no trailing dot, no brackets, no port
  uint16_t port = 0;
};

uint16_t parse_port(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return 0;
  uint32_t port = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  return port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

// RequestView.host comes without a port; a Host header that kept one is still handled.
Authority normalize(std::string_view host, uint16_t port) {
  Authority a{{}, port};
  if (host.starts_with('[')) {  // [v6]:port
    const size_t close = host.find(']');
    if (close != std::string_view::npos) {
      if (host.substr(close + 1).starts_with(':') && a.port == 0) {
        a.port = parse_port(host.substr(close + 2));
      }
      host = host.substr(1, close - 1);
    }
  } else if (const size_t colon = host.find(':');
             colon != std::string_view::npos &&
             host.find(':', colon + 1) == std::string_view::npos) {
    if (a.port == 0) a.port = parse_port(host.substr(colon + 1));
    host = host.substr(0, colon);
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  a.host.reserve(host.size());
  for (const char c : host) {
    a.host.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return a;
}

bool host_matches(std::string_view host, const KnownHost& known) {
  switch (known.match) {
    case HostMatch::kExact:
      return host == known.domain;
    case HostMatch::kSubdomain:
      return host.size() > known.domain.size() + 1 && ends_with(host, known.domain) &&
             host[host.size() - known.domain.size() - 1] == '.';
    case HostMatch::kRegional:
      return host == known.domain ||
             (host.size() > known.domain.size() + 1 && ends_with(host, known.domain) &&
              host[host.size() - known.domain.size() - 1] == '-');
  }
  return false;
}

std::string_view known_provider(std::string_view host) {
  for (const KnownHost& known : kKnownHosts) {
    if (host_matches(host, known)) return known.provider;
  }
  return {};
}

bool is_local(std::string_view host) {
  return host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") ||
         host == "::1" || host == "0.0.0.0";
}

bool has_header(const protocol::Headers* headers, std::string_view name) {
  if (headers == nullptr) return false;
  for (const protocol::Header& h : *headers) {
    if (h.name == name) return true;
  }
  return false;
}

bool has_query_param(std::string_view path, std::string_view name) {
  const size_t q = path.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = path.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.substr(0, param.find('=')) == name) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

enum class Family : uint8_t { kNone, kOpenAi, kAnthropic, kGemini, kOllama };

// `trusted`: the host is a known provider, so the path alone decides. Elsewhere the looser
// shapes also need the marker every client of that API sends.
Family family_for(const RequestView& req, bool trusted) {
  const std::string_view path = providers::path_only(req.path);
  const providers::ModelMethod mm = providers::model_method(path);

  if (ends_with(path, "/v1/messages") || ends_with(path, "/v1/messages/count_tokens")) {
    if (trusted || has_header(req.headers, "anthropic-version")) return Family::kAnthropic;
  }
  if (path.find("/publishers/anthropic/models/") != std::string_view::npos &&
      (mm.method == "rawPredict" || mm.method == "streamRawPredict")) {
    return Family::kAnthropic;
  }
  if (mm.method == "generateContent" || mm.method == "streamGenerateContent" ||
      mm.method == "countTokens" || mm.method == "embedContent" ||
      mm.method == "batchEmbedContents") {
    // Vertex's path shape is unmistakable; the short one needs the API key's marks.
    if (trusted || path.find("/publishers/google/models/") != std::string_view::npos ||
        has_header(req.headers, "x-goog-api-key") || has_query_param(req.path, "key")) {
      return Family::kGemini;
    }
  }
  for (const std::string_view suffix :
       {"/chat/completions", "/completions", "/responses", "/embeddings"}) {
    if (ends_with(path, suffix)) return Family::kOpenAi;
  }
  for (const std::string_view ollama :
       {"/api/chat", "/api/generate", "/api/embed", "/api/embeddings"}) {
    if (path == ollama) return Family::kOllama;
  }
  return Family::kNone;
}

const Adapter* adapter_for(Family family) {
  switch (family) {
    case Family::kOpenAi:
      return &providers::openai_adapter();
    case Family::kAnthropic:
      return &providers::anthropic_adapter();
    case Family::kGemini:
      return &providers::gemini_adapter();
    case Family::kOllama:
      return &providers::ollama_adapter();
    case Family::kNone:
      break;
  }
  return nullptr;
}

}  // namespace

Route route(const RequestView& req) {
  const Authority authority = normalize(req.host, req.port);
  // Calls are POSTs; an unseen method (the agent started late) gets the benefit of the doubt.
  const bool posts = req.method.empty() || req.method == "POST";
  const std::string_view known = known_provider(authority.host);
  const Adapter* adapter = adapter_for(posts ? family_for(req, !known.empty()) : Family::kNone);
  if (!known.empty()) {
    return {std::string(known), adapter != nullptr ? adapter : &providers::unknown_adapter()};
  }
  if (adapter == nullptr) return {};
  if (is_local(authority.host)) {
    for (const LocalServer& local : kLocalServers) {
      if (local.port == authority.port) return {std::string(local.provider), adapter};
    }
  }
  return {std::string(adapter->api()), adapter};
}

const Adapter& adapter_for_provider(std::string_view provider) {
  if (provider == "anthropic") return providers::anthropic_adapter();
  if (provider == "gemini" || provider == "vertex-ai") return providers::gemini_adapter();
  if (provider == "ollama") return providers::ollama_adapter();
  if (provider == "cohere") return providers::unknown_adapter();
  // Everyone else serves the OpenAI API shape (OpenAI itself, Azure, and the compatible
  // providers).
  return providers::openai_adapter();
}

bool is_known_llm_host(std::string_view host) {
  return !known_provider(normalize(host, 0).host).empty();
}

}  // namespace agentwall::llm

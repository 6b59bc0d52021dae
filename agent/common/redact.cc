#include "agent/common/redact.h"

#include <array>
#include <cctype>
#include <string_view>

namespace agentwall {
namespace {

bool is_sep(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' || c == ',' || c == '&';
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s = s.substr(s.size() - suffix.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != suffix[i]) return false;
  }
  return true;
}

// Option, header and parameter names whose value is a credential (lower case, as the
// name ends: "--openai-api-key", "X-Api-Key:" and "api_key=" all match "api-key"/"api_key").
constexpr std::array<std::string_view, 12> kSecretNames = {
    "api-key", "api_key",       "apikey", "token", "secret",     "password",
    "passwd",  "authorization", "auth",   "key",   "access-key", "private-key"};

// Words that are keys by their shape alone.
bool looks_like_key(std::string_view w) {
  static constexpr std::array<std::string_view, 9> kPrefixes = {
      "sk-", "sk_", "AIza", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "AKIA"};
  if (w.size() < 16) return false;
  for (std::string_view p : kPrefixes) {
    if (w.starts_with(p)) return true;
  }
  return false;
}

}  // namespace

int redact_credentials(std::string& text) {
  int masked = 0;
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  bool mask_next = false;  // the previous word names a credential: mask this one
  while (i < text.size()) {
    if (is_sep(text[i])) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && !is_sep(text[j])) ++j;
    std::string_view word(text.data() + i, j - i);
    i = j;
    if (mask_next) {
      // "Authorization: Bearer X": the scheme stays, the credential goes.
      if (ends_with_ci(word, "bearer") || ends_with_ci(word, "basic")) {
        out.append(word);
        continue;
      }
      mask_next = false;
      out += kRedacted;
      ++masked;
      continue;
    }
    // name=value (also inside URLs: ?key=…&token=…) and name:value in one word.
    std::string rebuilt;
    bool any = false;
    size_t from = 0;
    for (size_t k = 0; k < word.size(); ++k) {
      const char c = word[k];
      if ((c != '=' && c != ':') || k + 1 >= word.size()) continue;
      if (c == ':' && word.substr(k + 1).starts_with("//")) continue;  // a URL scheme
      size_t b = k;
      while (b > 0 && std::string_view("?&;,:/").find(word[b - 1]) == std::string_view::npos) --b;
      const std::string_view name = word.substr(b, k - b);
      bool secret = false;
      for (std::string_view n : kSecretNames) secret = secret || ends_with_ci(name, n);
      if (!secret) continue;
      size_t e = k + 1;
      while (e < word.size() && word[e] != '&' && word[e] != ';') ++e;
      rebuilt.append(word.substr(from, k + 1 - from));
      rebuilt += kRedacted;
      ++masked;
      any = true;
      from = e;
      k = e;
    }
    if (any) {
      rebuilt.append(word.substr(std::min(from, word.size())));
      out += rebuilt;
      continue;
    }
    if (looks_like_key(word)) {
      out += kRedacted;
      ++masked;
      continue;
    }
    out.append(word);
    std::string_view bare = word;
    while (!bare.empty() && (bare.back() == ':' || bare.back() == '=')) bare.remove_suffix(1);
    if (ends_with_ci(bare, "bearer") || ends_with_ci(bare, "basic")) {
      mask_next = true;
    } else if (bare.starts_with("-") || word.back() == ':') {
      for (std::string_view n : kSecretNames) mask_next = mask_next || ends_with_ci(bare, n);
    }
  }
  text = std::move(out);
  return masked;
}

}  // namespace agentwall

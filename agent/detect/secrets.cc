#include "agent/detect/secrets.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "agent/common/ascii.h"

namespace agentwall::detect {
namespace {

constexpr uint8_t u8(char c) {
  return static_cast<uint8_t>(c);
}
using namespace ascii;

inline bool is_b64(char c) {
  return is_alnum(c) || c == '+' || c == '/';
}

// Token bytes: the base64url alphabet, which is also what every prefixed key format uses.
// Splitting the text into runs of these lets ordinary words be skipped with one table
// lookup per byte and makes "prefix inside a longer word" impossible by construction.
constexpr std::array<bool, 256> kTok = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
  return t;
}();

constexpr std::array<uint32_t, 256> kCrcTable = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}();

uint32_t crc32(std::string_view s) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : s) c = kCrcTable[(c ^ u8(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool iends_with(std::string_view s, std::string_view p) {
  if (s.size() < p.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (lower(s[s.size() - p.size() + i]) != p[i]) return false;
  return true;
}

// Whether s and p are equal, case aside.
bool iequals(std::string_view s, std::string_view p) {
  return s.size() == p.size() && std::equal(s.begin(), s.end(), p.begin(),
                                            [](char a, char b) { return lower(a) == lower(b); });
}

bool all_of(std::string_view s, bool (*f)(char)) {
  return std::all_of(s.begin(), s.end(), f);
}

// Lower-cased with '_', '-' and '.' dropped, so API_KEY, api-key and apiKey compare equal.
std::string normalize_name(std::string_view s) {
  std::string r;
  for (char c : s)
    if (c != '_' && c != '-' && c != '.') r += lower(c);
  return r;
}

// Decodes base64 or base64url, ignoring padding; false on any other byte.
bool b64_decode(std::string_view in, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (is_upper(c))
      v = c - 'A';
    else if (is_lower(c))
      v = c - 'a' + 26;
    else if (is_digit(c))
      v = c - '0' + 52;
    else if (c == '-' || c == '+')
      v = 62;
    else if (c == '_' || c == '/')
      v = 63;
    else if (c == '=')
      continue;
    else
      return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  return true;
}

struct Candidate {
  size_t begin, end;
  double confidence;
  const char* kind;
  std::string explanation;
};

// "<what> (<first n chars>…)": n is capped at 8 so a secret never appears in full.
std::string describe(std::string_view what, std::string_view secret, size_t n) {
  n = std::min({n, size_t{8}, secret.size() / 2});
  std::string r(what);
  r += " (";
  r += secret.substr(0, n);
  r += "\xE2\x80\xA6)";
  return r;
}

class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}

  std::vector<Candidate> run() {
    scan_tokens();
    scan_urls();
    scan_pem();
    return std::move(c_);
  }

 private:
  void add(size_t b, size_t e, double conf, const char* kind, std::string expl) {
    if (stand_in(kind, t_.substr(b, e - b))) return;
    c_.push_back({b, e, conf, kind, std::move(expl)});
  }

  // A key written out as a stand-in ("sk_test_xxxxxxxxxxxxxxxxxxxxxxxx", "AKIAXXXXXXXXXXXX
  // XXXX" in a .env.example or a README): its last 16 characters use two distinct ones or
  // fewer, which no issued key does. Passwords in URLs, private keys and JWTs have checks
  // of their own.
  static bool stand_in(std::string_view kind, std::string_view key) {
    if (kind == "database_url" || kind == "private_key" || kind == "jwt" || key.size() < 16)
      return false;
    const std::string_view tail = key.substr(key.size() - 16);
    const char a = tail[0];
    char other = 0;
    for (const char c : tail) {
      if (c == a || c == other) continue;
      if (other != 0) return false;
      other = c;
    }
    return true;
  }

  size_t tok_end(size_t i) const {
    while (i < t_.size() && kTok[u8(t_[i])]) ++i;
    return i;
  }

  void scan_tokens() {
    const size_t n = t_.size();
    size_t i = 0;
    while (i < n) {
      while (i < n && !kTok[u8(t_[i])]) ++i;
      const size_t b = i;
      i = tok_end(i);
      if (i - b >= 3) i = std::max(i, on_token(b, i));
    }
  }

  // Returns where token scanning resumes (past a JWT, which spans several tokens).
  size_t on_token(size_t b, size_t e) {
    const std::string_view tok = t_.substr(b, e - b);
    // Most tokens are not key names: that is decided here, before a call to key_value().
    if (key_like(tok)) key_value(tok, e);
    if (tok.size() < 16) return e;
    switch (tok[0]) {
      case 's':
        if (starts_with(tok, "sk-")) return sk_dash(tok, b), e;
        [[fallthrough]];
      case 'r':
        if ((starts_with(tok, "sk_") || starts_with(tok, "rk_")) &&
            (starts_with(tok.substr(3), "live_") || starts_with(tok.substr(3), "test_")) &&
            tok.size() >= 8 + 24 && all_of(tok.substr(8), is_alnum))
          add(b, e, 0.9, "stripe_key", describe("Stripe secret key", tok, 8));
        return e;
      case 'g':
        github(tok, b);
        gitlab(tok, b);
        return e;
      case 'x':
        if (tok.size() >= 20 && starts_with(tok, "xox") && std::strchr("baprs", tok[3]) &&
            tok[4] == '-' && std::any_of(tok.begin(), tok.end(), is_digit))
          add(b, e, 0.9, "slack_token", describe("Slack token", tok, 5));
        return e;
      case 'h':
        if (tok.size() == 37 && starts_with(tok, "hf_") && all_of(tok.substr(3), is_alpha))
          add(b, e, 0.9, "huggingface_token", describe("Hugging Face token", tok, 3));
        return e;
      case 'A':
        if (tok.size() == 20 &&
            (starts_with(tok, "AKIA") || starts_with(tok, "ASIA") || starts_with(tok, "ABIA") ||
             starts_with(tok, "ACCA")) &&
            std::all_of(tok.begin() + 4, tok.end(),
                        [](char c) { return is_upper(c) || is_digit(c); }))
          add(b, e, 0.9, "aws_access_key_id", describe("AWS access key ID", tok, 4));
        else if (tok.size() == 39 && starts_with(tok, "AIza"))
          add(b, e, 0.9, "google_api_key", describe("Google API key", tok, 4));
        return e;
      case 'e':
        if (starts_with(tok, "eyJ")) return jwt(b, e);
        return e;
    }
    return e;
  }

  void sk_dash(std::string_view tok, size_t b) {
    const size_t e = b + tok.size();
    if (starts_with(tok, "sk-ant-")) {
      if (tok.size() >= 7 + 32)
        add(b, e, 0.9, "anthropic_api_key", describe("Anthropic API key", tok, 7));
      return;
    }
    const std::string_view rest = tok.substr(3);
    // Every OpenAI key format so far embeds base64("OpenAI").
    if (rest.size() >= 32 && rest.find("T3BlbkFJ") != std::string_view::npos) {
      add(b, e, 0.95, "openai_api_key", describe("OpenAI API key", tok, 8));
      return;
    }
    for (std::string_view p : {"proj-", "svcacct-", "admin-", "None-"})
      if (starts_with(rest, p) && tok.size() >= 40) {
        add(b, e, 0.9, "openai_api_key", describe("OpenAI API key", tok, 3 + p.size()));
        return;
      }
    // Bare "sk-": only a long mixed-case alphanumeric run, not "sk-learn" or "sk-some-slug".
    if (rest.size() >= 32 && all_of(rest, is_alnum) &&
        std::any_of(rest.begin(), rest.end(), is_digit) &&
        std::any_of(rest.begin(), rest.end(), is_upper) &&
        std::any_of(rest.begin(), rest.end(), is_lower))
      add(b, e, 0.8, "openai_api_key", describe("OpenAI-style API key", tok, 3));
  }

  void github(std::string_view tok, size_t b) {
    const size_t e = b + tok.size();
    if (tok.size() == 40 && tok[0] == 'g' && tok[1] == 'h' && std::strchr("pousr", tok[2]) &&
        tok[3] == '_' && all_of(tok.substr(4), is_alnum)) {
      if (github_checksum(tok.substr(4, 30)) == tok.substr(34))
        add(b, e, 0.99, "github_token", describe("GitHub token", tok, 4));
      return;
    }
    if (starts_with(tok, "github_pat_") && tok.size() >= 11 + 50 &&
        std::all_of(tok.begin() + 11, tok.end(), [](char c) { return is_alnum(c) || c == '_'; }))
      add(b, e, 0.9, "github_token", describe("GitHub fine-grained token", tok, 7));
  }

  void gitlab(std::string_view tok, size_t b) {
    for (std::string_view p : {"glpat-", "glptt-", "gldt-", "glrt-", "gloas-"}) {
      if (!starts_with(tok, p) || tok.size() < p.size() + 20) continue;
      // Newer tokens continue with ".01.<more>"; keep those parts in the span.
      size_t e = b + tok.size();
      while (e + 1 < t_.size() && t_[e] == '.' && kTok[u8(t_[e + 1])]) e = tok_end(e + 1);
      add(b, e, 0.9, "gitlab_token", describe("GitLab token", tok, p.size()));
      return;
    }
  }

  // header.payload.signature, each base64url; the header must be JSON with "alg".
  size_t jwt(size_t b, size_t e) {
    if (e >= t_.size() || t_[e] != '.') return e;
    const size_t p2 = e + 1, q = tok_end(p2);
    if (q == p2 || q >= t_.size() || t_[q] != '.') return e;
    const size_t p3 = q + 1, r = tok_end(p3);
    if (r == p3) return e;
    std::string header;
    if (e - b > 2048 || !b64_decode(t_.substr(b, e - b), header)) return e;
    const size_t l = header.find_first_not_of(" \t\r\n");
    const size_t last = header.find_last_not_of(" \t\r\n");
    if (l == std::string::npos || header[l] != '{' || header[last] != '}') return e;
    const size_t alg = header.find("\"alg\"");
    if (alg == std::string::npos) return e;
    const size_t colon = header.find_first_not_of(" \t\r\n", alg + 5);
    if (colon == std::string::npos || header[colon] != ':') return e;
    add(b, r, 0.99, "jwt", describe("JSON Web Token", t_.substr(b, r - b), 6));
    return r;
  }

  // Is `name` a key-like word: one of the words below at its end, on a word boundary
  // (start, '_', '-', '.', or camelCase)?
  static bool key_like(std::string_view name) {
    static constexpr std::string_view kWords[] = {
        "key", "secret", "token",  "tokens",     "password",    "passwd",
        "pwd", "auth",   "apikey", "credential", "credentials", "authorization",
    };
    // Cheap reject for ordinary words: per last letter, the words above that end in it
    // (bit i: kWords[i]); a name is compared with those only, in the same order as the whole
    // list, and a name whose last letter ends none of them is rejected at once. The table is
    // built from the words themselves, so every word in the list gets through it.
    static constexpr std::array<uint16_t, 256> kEndingIn = [] {
      static_assert(std::size(kWords) <= 16);
      std::array<uint16_t, 256> t{};
      for (size_t i = 0; i < std::size(kWords); ++i) {
        const char c = kWords[i].back();  // every word is lower case
        t[u8(c)] |= uint16_t(1u << i);
        if (c >= 'a' && c <= 'z') t[u8(c) - 'a' + 'A'] |= uint16_t(1u << i);
      }
      return t;
    }();
    for (uint32_t words = kEndingIn[u8(name.back())]; words != 0; words &= words - 1) {
      const std::string_view w = kWords[std::countr_zero(words)];
      if (!iends_with(name, w)) continue;
      const size_t at = name.size() - w.size();
      if (at == 0) return true;
      const char before = name[at - 1];
      if (before == '_' || before == '-' || before == '.') return true;
      if (is_lower(before) && is_upper(name[at])) return true;
    }
    return false;
  }

  // `name = value`, `name: value`, `"name": "value"`; `name` is key_like().
  void key_value(std::string_view name, size_t p) {
    const size_t n = t_.size();
    auto skip_ws = [&] {
      while (p < n && (t_[p] == ' ' || t_[p] == '\t')) ++p;
    };
    if (p < n && (t_[p] == '"' || t_[p] == '\'')) ++p;
    skip_ws();
    if (p >= n || (t_[p] != ':' && t_[p] != '=')) return;
    if (p + 1 < n && (t_[p + 1] == '=' || t_[p + 1] == '>')) ++p;  // ":=", "=>"
    ++p;
    skip_ws();
    char quote = 0;
    if (p < n && (t_[p] == '"' || t_[p] == '\'' || t_[p] == '`')) quote = t_[p++];
    for (std::string_view scheme : {"Bearer ", "Basic ", "Token ", "bearer "})
      if (starts_with(t_.substr(p), scheme)) p += scheme.size();
    const size_t vb = p;
    while (p < n && p - vb < 1024) {
      const char c = t_[p];
      if (u8(c) <= ' ' || c == '"' || c == '\'' || c == '`' || c == ',' || c == ';' || c == '<' ||
          c == '>' || c == '(' || c == ')' || c == '[' || c == ']' || c == '{' || c == '}' ||
          (!quote && c == '&'))
        break;
      ++p;
    }
    size_t ve = p;
    if (!quote)
      while (ve > vb && t_[ve - 1] == '.') --ve;  // sentence end
    const std::string_view v = t_.substr(vb, ve - vb);
    if (v.empty()) return;
    const std::string norm = normalize_name(name);

    if (v.size() == 40 && all_of(v, is_b64) &&
        (norm.find("secretaccesskey") != std::string::npos ||
         (norm.find("aws") != std::string::npos && norm.find("secret") != std::string::npos))) {
      add(vb, ve, 0.9, "aws_secret_access_key", describe("AWS secret access key", v, 4));
      return;
    }
    const bool azure_name = norm.find("azure") != std::string::npos || norm == "accountkey" ||
                            norm == "ocpapimsubscriptionkey" ||
                            (norm == "apikey" && name.size() == 7 && name[3] == '-');
    if (azure_name &&
        ((v.size() == 32 && all_of(v, is_hex)) ||
         (v.size() == 88 && v.substr(86) == "==" && all_of(v.substr(0, 86), is_b64)))) {
      add(vb, ve, 0.8, "azure_key", describe("Azure key", v, 4));
      return;
    }
    // Generic: long, random-looking, and not a template, URL or dotted identifier.
    if (v.size() < 20 || v[0] == '$' || v[0] == '<' || v[0] == '{' || v[0] == '%' ||
        v.find("://") != std::string_view::npos)
      return;
    if (!std::any_of(v.begin(), v.end(), is_digit) || !std::any_of(v.begin(), v.end(), is_alpha))
      return;
    if (shannon_entropy(v) < 4.0) return;
    std::string what = "High-entropy value assigned to \"";
    what += name.substr(0, 40);
    what += '"';
    add(vb, ve, 0.6, "generic_high_entropy", describe(what, v, 4));
  }

  // scheme://user:password@host for the database and broker schemes below.
  void scan_urls() {
    static constexpr std::string_view kSchemes[] = {"postgres", "postgresql", "mysql", "mongodb",
                                                    "redis",    "rediss",     "amqp",  "amqps"};
    const size_t n = t_.size();
    for (size_t pos = t_.find("://"); pos != std::string_view::npos;
         pos = t_.find("://", pos + 3)) {
      size_t s = pos;
      while (s > 0 && pos - s < 32 &&
             (is_alnum(t_[s - 1]) || t_[s - 1] == '+' || t_[s - 1] == '.' || t_[s - 1] == '-'))
        --s;
      std::string scheme;
      for (size_t i = s; i < pos; ++i) scheme += lower(t_[i]);
      // "postgresql+psycopg2", "mongodb+srv": the base scheme decides.
      const std::string base = scheme.substr(0, scheme.find('+'));
      if (std::find(std::begin(kSchemes), std::end(kSchemes), base) == std::end(kSchemes)) continue;
      const size_t a = pos + 3;
      size_t limit = a;
      while (limit < n && limit - a < 512 && u8(t_[limit]) > ' ' &&
             !std::strchr("\"'`<>\\", t_[limit]))
        ++limit;
      const std::string_view auth = t_.substr(a, limit - a);
      const size_t path = auth.find_first_of("/?#");
      const size_t at = auth.substr(0, path).rfind('@');
      if (at == std::string_view::npos || at + 1 >= auth.substr(0, path).size()) continue;
      const size_t colon = auth.substr(0, at).find(':');
      if (colon == std::string_view::npos || colon + 1 == at) continue;
      const std::string_view pw = auth.substr(colon + 1, at - colon - 1);
      if (placeholder(pw)) continue;
      if (local_default(auth.substr(0, colon), pw, auth.substr(at + 1, path - at - 1))) continue;
      add(a + colon + 1, a + at, 0.9, "database_url",
          std::string(scheme) + " URL with an embedded password");
    }
  }

  // Documentation stand-ins, not real passwords.
  static bool placeholder(std::string_view pw) {
    if (pw[0] == '$' || pw[0] == '<' || pw[0] == '{' || pw[0] == '[') return true;
    if (std::all_of(pw.begin(), pw.end(), [&](char c) { return c == pw[0]; }) &&
        (pw[0] == '*' || pw[0] == 'x' || pw[0] == 'X'))
      return true;
    for (std::string_view stand_in : {"password", "pass", "passwd", "pwd", "secret"})
      if (iequals(pw, stand_in)) return true;
    return false;
  }

  // A development default on this machine: "postgres://app:app@localhost",
  // "amqp://guest:guest@127.0.0.1:5672". The password is the user name or a server's
  // well-known default, and the host is the loopback, which no one else reaches. The same
  // password on any other host is reported: reused and default passwords are how databases
  // get taken.
  static bool local_default(std::string_view user, std::string_view pw, std::string_view host) {
    // "localhost:5432", "[::1]:5432": the name without the port.
    const std::string_view name = !host.empty() && host[0] == '['
                                      ? host.substr(0, host.find(']') + 1)
                                      : host.substr(0, host.find(':'));
    if (!iequals(name, "localhost") && !name.starts_with("127.") && name != "[::1]") return false;
    for (std::string_view server_default :
         {"postgres", "root", "admin", "guest", "changeme", "example", "test"})
      if (iequals(pw, server_default)) return true;
    return iequals(pw, user);
  }

  // "-----BEGIN <label>PRIVATE KEY<...>-----" through the matching END line.
  void scan_pem() {
    static constexpr std::string_view kBegin = "-----BEGIN ";
    const size_t n = t_.size();
    for (size_t b = t_.find(kBegin); b != std::string_view::npos; b = t_.find(kBegin, b + 1)) {
      const size_t lb = b + kBegin.size();
      const size_t le = t_.find("-----", lb);
      if (le == std::string_view::npos || le - lb > 64) continue;
      const std::string_view label = t_.substr(lb, le - lb);
      if (label.find("PRIVATE KEY") == std::string_view::npos) continue;
      const size_t body = le + 5;
      std::string end_marker = "-----END ";
      end_marker += label;
      end_marker += "-----";
      const size_t em = t_.substr(0, std::min(n, body + 65536)).find(end_marker, body);
      size_t e, b64 = 0;
      double conf;
      if (em != std::string_view::npos) {
        e = em + end_marker.size();
        for (size_t i = body; i < em; ++i) b64 += is_b64(t_[i]);
        conf = 0.99;
      } else {
        // Truncated block: the base64 body (JSON may carry "\n" escapes) is still the key.
        e = body;
        while (e < n && (is_b64(t_[e]) || t_[e] == '=' || u8(t_[e]) <= ' ' || t_[e] == '\\'))
          b64 += is_b64(t_[e++]);
        conf = 0.9;
      }
      if (b64 < 64) continue;
      add(b, e, conf, "private_key", "Private key block (" + std::string(label) + ")");
      b = e - 1;
    }
  }

  std::string_view t_;
  std::vector<Candidate> c_;
};

}  // namespace

std::string github_checksum(std::string_view body30) {
  static constexpr char kB62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint32_t v = crc32(body30);
  std::string r(6, '0');
  for (int i = 5; i >= 0 && v; --i, v /= 62) r[i] = kB62[v % 62];
  return r;
}

double shannon_entropy(std::string_view s) {
  if (s.empty()) return 0;
  std::array<uint32_t, 256> count{};
  for (char c : s) ++count[u8(c)];
  double h = 0;
  const double n = double(s.size());
  for (uint32_t k : count)
    if (k) h -= (k / n) * std::log2(k / n);
  return h;
}

void SecretsDetector::scan(std::string_view text, Source, std::vector<Finding>& out) const {
  std::vector<Candidate> c = Scanner(text).run();
  if (c.empty()) return;
  // The same bytes are reported once: the most confident (most specific) reading wins.
  std::stable_sort(c.begin(), c.end(), [](const Candidate& x, const Candidate& y) {
    if (x.confidence != y.confidence) return x.confidence > y.confidence;
    return x.begin < y.begin;
  });
  std::vector<const Candidate*> kept;
  for (const Candidate& x : c) {
    const bool overlaps = std::any_of(kept.begin(), kept.end(), [&](const Candidate* k) {
      return x.begin < k->end && k->begin < x.end;
    });
    if (!overlaps) kept.push_back(&x);
  }
  std::sort(kept.begin(), kept.end(),
            [](const Candidate* x, const Candidate* y) { return x->begin < y->begin; });
  for (const Candidate* k : kept) {
    Finding f;
    f.detector = std::string("secret.") + k->kind;
    f.category = Category::kSecret;
    f.confidence = k->confidence;
    f.spans.push_back({k->begin, k->end});
    f.explanation = k->explanation;
    out.push_back(std::move(f));
  }
}

std::unique_ptr<Detector> make_secrets_detector() {
  return std::make_unique<SecretsDetector>();
}

}  // namespace agentwall::detect

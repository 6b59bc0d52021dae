// Credentials found in LLM traffic: every kind from its format, near-misses left alone.
#include <doctest/doctest.h>

#include <cctype>
#include <string>
#include <vector>

#include "agent/detect/secrets.h"

using agentwall::detect::Finding;
using agentwall::detect::github_checksum;
using agentwall::detect::make_secrets_detector;
using agentwall::detect::Source;

namespace {

std::vector<Finding> scan(std::string_view text) {
  std::vector<Finding> out;
  make_secrets_detector()->scan(text, Source::kUser, out);
  return out;
}

std::string b64url(std::string_view in) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string r;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 8) | uint8_t(c);
    bits += 8;
    while (bits >= 6) r += kA[(acc >> (bits -= 6)) & 63];
  }
  if (bits) r += kA[(acc << (6 - bits)) & 63];
  return r;
}

std::string github_token(std::string_view prefix, std::string_view body30) {
  return std::string(prefix) + std::string(body30) + github_checksum(body30);
}

// Exactly one finding of `detector` whose span is `secret` inside `text`; its explanation
// must not carry more than 8 characters of the secret.
void expect_one(const std::string& text, const std::string& secret, const std::string& detector) {
  CAPTURE(text);
  const auto f = scan(text);
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == detector);
  CHECK(f[0].category == agentwall::detect::Category::kSecret);
  REQUIRE(f[0].spans.size() == 1);
  const size_t at = text.find(secret);
  CHECK(f[0].spans[0].begin == at);
  CHECK(f[0].spans[0].end == at + secret.size());
  CHECK(f[0].explanation.find(secret.substr(0, 9)) == std::string::npos);
  CHECK(!f[0].explanation.empty());
}

// Random-looking base62 of length n (deterministic).
std::string rnd(size_t n, uint32_t seed = 1) {
  static constexpr char kA[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string r;
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    r += kA[(seed >> 16) % 62];
  }
  return r;
}

std::string upper_alnum(size_t n, uint32_t seed = 7) {
  std::string r;
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    const uint32_t v = (seed >> 16) % 36;
    r += char(v < 26 ? 'A' + v : '0' + v - 26);
  }
  return r;
}

std::string letters(size_t n, uint32_t seed = 3) {
  std::string r;
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    const uint32_t v = (seed >> 16) % 52;
    r += char(v < 26 ? 'A' + v : 'a' + v - 26);
  }
  return r;
}

const char kProse[] =
    "The committee met on Tuesday to discuss the risk-free rate, the task-force report and "
    "the new password policy. Everyone agreed that the token economy was overrated, that a "
    "key insight was missing, and that the secret to success is patience. Authentication "
    "matters; authors should ask-first before sharing anything. See section 4.2 for details "
    "and remember: the best skiing is in February, when the slopes are quiet.\n";

}  // namespace

TEST_CASE("secrets: GitHub checksum is CRC-32 in base62") {
  CHECK(github_checksum("123456789") == "3jZRME");  // CRC-32("123456789") = 0xCBF43926
  CHECK(github_checksum("a") == "4GEHKN");
}

TEST_CASE("secrets: GitHub tokens with a valid checksum, not with a wrong one") {
  const std::string body = rnd(30, 11);
  for (const char* p : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    const std::string tok = github_token(p, body);
    expect_one("export GH=" + tok + " && git push", tok, "secret.github_token");
    CHECK(scan("export GH=" + tok)[0].confidence == doctest::Approx(0.99));
  }
  std::string bad = github_token("ghp_", body);
  bad.back() = bad.back() == 'A' ? 'B' : 'A';
  CHECK(scan("token " + bad).empty());
  CHECK(scan("ghp_" + rnd(30)).empty());                        // too short
  CHECK(scan("xghp_" + body + github_checksum(body)).empty());  // inside a longer word
  const std::string pat = "github_pat_" + rnd(22, 5) + "_" + rnd(59, 6);
  expect_one("use " + pat + " please", pat, "secret.github_token");
}

TEST_CASE("secrets: OpenAI and Anthropic keys") {
  const std::string proj = "sk-proj-" + rnd(60, 2) + "T3BlbkFJ" + rnd(60, 3);
  expect_one("OPENAI_API_KEY=" + proj, proj, "secret.openai_api_key");
  const std::string legacy = "sk-" + rnd(20, 4) + "T3BlbkFJ" + rnd(20, 5);
  expect_one("key is " + legacy + ".", legacy, "secret.openai_api_key");
  const std::string svc = "sk-svcacct-" + rnd(40, 6);
  expect_one("\"" + svc + "\"", svc, "secret.openai_api_key");
  const std::string ant = "sk-ant-api03-" + rnd(80, 7) + "-" + rnd(12, 8) + "AA";
  expect_one("x-api-key: " + ant, ant, "secret.anthropic_api_key");
  CHECK(scan(kProse).empty());  // risk-free, task-force, ask-first, skiing
  CHECK(scan("pip install sk-learn; sk-test-agentwall-0002; sk-ant-short").empty());
  CHECK(scan("mask-proj-" + rnd(60)).empty());
}

TEST_CASE("secrets: cloud provider keys") {
  const std::string akia = "AKIA" + upper_alnum(16);
  expect_one("aws_access_key_id = " + akia, akia, "secret.aws_access_key_id");
  const std::string asia = "ASIA" + upper_alnum(16, 9);
  expect_one("id " + asia + " ok", asia, "secret.aws_access_key_id");
  CHECK(scan("AKIA" + upper_alnum(15)).empty());
  CHECK(scan("AKIA" + upper_alnum(17)).empty());
  CHECK(scan("XAKIA" + upper_alnum(16)).empty());

  const std::string aws_secret = rnd(20, 12) + "/" + rnd(9, 13) + "+" + rnd(9, 14);
  REQUIRE(aws_secret.size() == 40);
  expect_one("aws_secret_access_key = " + aws_secret, aws_secret, "secret.aws_secret_access_key");

  const std::string google = "AIzaSy" + rnd(33, 15);
  expect_one("https://maps.example/api?key=" + google + "&q=x", google, "secret.google_api_key");
  CHECK(scan("AIzaSy" + rnd(32)).empty());

  const std::string hex32 = "3f2a9c1b7e4d5a6f8b0c1d2e3f4a5b6c";
  expect_one("AZURE_OPENAI_KEY=" + hex32, hex32, "secret.azure_key");
  expect_one("api-key: " + hex32, hex32, "secret.azure_key");
  expect_one("Api-Key: " + hex32, hex32, "secret.azure_key");
  const std::string account = rnd(86, 16) + "==";
  expect_one("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + account +
                 ";EndpointSuffix=core.windows.net",
             account, "secret.azure_key");
  CHECK(scan("commit " + hex32).empty());  // 32 hex without key context
}

TEST_CASE("secrets: SaaS tokens") {
  const std::string gl = "glpat-" + rnd(20, 17);
  expect_one("GITLAB_TOKEN=" + gl, gl, "secret.gitlab_token");
  CHECK(scan("glpat-" + rnd(19)).empty());
  const std::string slack = "xoxb-123456789012-1234567890123-" + rnd(24, 18);
  expect_one("slack: " + slack, slack, "secret.slack_token");
  CHECK(scan("xoxq-123456789012-1234567890123-abc").empty());
  const std::string stripe = "sk_live_" + rnd(24, 19);
  expect_one("Stripe.api_key = '" + stripe + "'", stripe, "secret.stripe_key");
  const std::string rk = "rk_test_" + rnd(30, 20);
  expect_one(rk, rk, "secret.stripe_key");
  CHECK(scan("pk_live_" + rnd(24)).empty());  // publishable keys are public
  const std::string hf = "hf_" + letters(34);
  expect_one("HF_TOKEN=" + hf, hf, "secret.huggingface_token");
  CHECK(scan("hf_" + letters(33)).empty());
  CHECK(scan("hf_" + letters(33) + "1").empty());
}

TEST_CASE("secrets: a key written out as a stand-in is no secret") {
  // .env.example files and READMEs, read by an agent's tool, show where a key goes with
  // one character repeated; no issued key ends in 16 characters of two or fewer.
  for (const std::string text : {
           "STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx",
           "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
           "HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
           "ANTHROPIC_API_KEY=sk-ant-api03-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
           "GITLAB_TOKEN=glpat-xxxxxxxxxxxxxxxxxxxx",
           "api_token = \"0000000000000000000000000000\"",
           "stripe: sk_live_x0x0x0x0x0x0x0x0x0x0x0x0",
       }) {
    CAPTURE(text);
    CHECK(scan(text).empty());
  }
  // A real-looking key beside it still is one; so is AWS's own documented example.
  const std::string stripe = "sk_live_" + rnd(24, 21);
  expect_one("sk_test_xxxxxxxxxxxxxxxxxxxxxxxx then " + stripe, stripe, "secret.stripe_key");
  expect_one("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "secret.aws_access_key_id");
}

TEST_CASE("secrets: private keys") {
  std::string body;
  for (int i = 0; i < 5; ++i) body += rnd(64, 30 + i) + "\n";
  const std::string pem =
      "-----BEGIN RSA PRIVATE KEY-----\n" + body + "-----END RSA PRIVATE KEY-----";
  expect_one("here:\n" + pem + "\nthanks", pem, "secret.private_key");
  CHECK(scan(pem)[0].confidence == doctest::Approx(0.99));
  const std::string ssh =
      "-----BEGIN OPENSSH PRIVATE KEY-----\n" + body + "-----END OPENSSH PRIVATE KEY-----";
  expect_one(ssh, ssh, "secret.private_key");
  // Truncated: still a key, less sure.
  const std::string cut = "-----BEGIN PRIVATE KEY-----\n" + body;
  const auto f = scan(cut + "\n");
  REQUIRE(f.size() == 1);
  CHECK(f[0].confidence == doctest::Approx(0.9));
  // Public keys and certificates are not secrets; an empty block is not a key.
  CHECK(scan("-----BEGIN PUBLIC KEY-----\n" + body + "-----END PUBLIC KEY-----").empty());
  CHECK(scan("-----BEGIN CERTIFICATE-----\n" + body + "-----END CERTIFICATE-----").empty());
  CHECK(scan("-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----").empty());
}

TEST_CASE("secrets: JWTs built from real JSON") {
  const std::string jwt = b64url(R"({"alg":"HS256","typ":"JWT"})") + "." +
                          b64url(R"({"sub":"1234567890","name":"Jo","iat":1516239022})") + "." +
                          b64url(rnd(32, 40));
  CHECK(jwt.substr(0, 3) == "eyJ");
  expect_one("Authorization: Bearer " + jwt, jwt, "secret.jwt");
  CHECK(scan(jwt)[0].confidence == doctest::Approx(0.99));
  // Header without "alg", two parts only, header not JSON.
  const std::string noalg = b64url(R"({"typ":"JWT"})") + "." + b64url("{}") + "." + rnd(20);
  CHECK(scan(noalg).empty());
  CHECK(scan(b64url(R"({"alg":"HS256"})") + "." + b64url("{}")).empty());
  CHECK(scan("eyJ" + rnd(30) + "." + rnd(20) + "." + rnd(20)).empty());
}

TEST_CASE("secrets: database URLs report the password only") {
  for (const char* scheme :
       {"postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "redis", "amqp"}) {
    const std::string url = std::string(scheme) + "://app:S3cr3t-pw@db.internal:5432/prod";
    expect_one("DATABASE_URL=" + url, "S3cr3t-pw", "secret.database_url");
  }
  expect_one("postgresql+psycopg2://u:hunter2@h/db", "hunter2", "secret.database_url");
  CHECK(scan("postgres://app@db.internal/prod").empty());        // no password
  CHECK(scan("postgres://app:@db.internal/prod").empty());       // empty password
  CHECK(scan("postgres://user:password@localhost/db").empty());  // placeholder
  CHECK(scan("postgres://u:${DB_PASSWORD}@h/db").empty());
  // A development default on the loopback: the user name again, or a server's default.
  CHECK(scan("postgres://app:app@localhost/app_dev").empty());
  CHECK(scan("amqp://guest:guest@127.0.0.1:5672/").empty());
  CHECK(scan("redis://default:changeme@[::1]:6379").empty());
  // The same passwords anywhere else, and a real one on the loopback, are reported.
  for (const std::string url :
       {"postgres://app:app@db.internal/app", "amqp://guest:guest@mq.example.com:5672/"}) {
    CAPTURE(url);
    const auto f = scan(url);
    REQUIRE(f.size() == 1);
    CHECK(f[0].detector == "secret.database_url");
    CHECK(f[0].spans[0].begin == url.find(':', url.find("://") + 3) + 1);
    CHECK(f[0].spans[0].end == url.find('@'));
  }
  expect_one("postgres://app:Vq7-pLm2x@localhost/app", "Vq7-pLm2x", "secret.database_url");
  CHECK(scan("https://user:pw123@example.com/").empty());  // not a database scheme
  CHECK(scan("see postgres://db.internal:5432/prod").empty());
  // A JWT used as the password is reported once, as the more specific JWT.
  const std::string jwt =
      b64url(R"({"alg":"RS256"})") + "." + b64url(R"({"sub":"x"})") + "." + rnd(40, 41);
  const auto f = scan("redis://default:" + jwt + "@cache:6379");
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == "secret.jwt");
}

TEST_CASE("secrets: high-entropy values after key-like names") {
  const std::string v = rnd(32, 50);
  expect_one("api_key = " + v, v, "secret.generic_high_entropy");
  expect_one("{\"client_secret\": \"" + v + "\"}", v, "secret.generic_high_entropy");
  expect_one("password: " + v, v, "secret.generic_high_entropy");
  expect_one("const apiKey = '" + v + "';", v, "secret.generic_high_entropy");
  expect_one("AUTH_TOKEN=" + v + "\n", v, "secret.generic_high_entropy");
  CHECK(scan("api_key = " + v)[0].confidence < 0.9);
  // Decided: a short or low-entropy password ("hunter2") next to a key word is not reported;
  // it cannot be told apart from prose like "password: see the vault". Database URLs are
  // the exception (their structure says it is a password).
  CHECK(scan("password: hunter2").empty());
  CHECK(scan("token: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1").empty());
  CHECK(scan("api_key = process.env.OPENAI_API_KEY").empty());
  CHECK(scan("api_key: ${{ secrets.OPENAI_API_KEY }}").empty());
  CHECK(scan("monkey = " + v).empty());  // "key" inside a word
  CHECK(scan("value = " + v).empty());   // no key-like name
  // A UUID, a git sha, a base64 image: not secrets without context.
  CHECK(scan("request_id: 123e4567-e89b-12d3-a456-426614174000").empty());
  CHECK(scan("token: 123e4567-e89b-12d3-a456-426614174000").empty());  // entropy < 4
  CHECK(scan("commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904 fixed it").empty());
  CHECK(scan("<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA"
             "DUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\">")
            .empty());
  // A specific key after a key-like name is reported once, as the specific kind.
  const std::string akia = "AKIA" + upper_alnum(16);
  const auto f = scan("secret_key: " + akia);
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == "secret.aws_access_key_id");
}

TEST_CASE("secrets: every key word names a key, whatever letter it ends in") {
  // The quick reject by last letter once passed only "ytsdnh", so "credential" (l) never
  // reached the comparison. Each word of the list, alone, as a suffix and in camelCase.
  const std::string v = rnd(32, 51);
  for (std::string w : {"key", "secret", "token", "tokens", "password", "passwd", "pwd", "auth",
                        "apikey", "credential", "credentials", "authorization"}) {
    CAPTURE(w);
    expect_one(w + " = " + v, v, "secret.generic_high_entropy");
    expect_one("db_" + w + ": " + v, v, "secret.generic_high_entropy");
    std::string upper = w;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    expect_one("APP-" + upper + "=" + v, v, "secret.generic_high_entropy");
    std::string camel = w;
    camel[0] = char(std::toupper(static_cast<unsigned char>(camel[0])));
    expect_one("{\"user" + camel + "\": \"" + v + "\"}", v, "secret.generic_high_entropy");
  }
  // Still whole words at the end of the name only.
  CHECK(scan("potential = " + v).empty());  // "credential"'s last letters, not the word
  CHECK(scan("credentially = " + v).empty());
}

TEST_CASE("secrets: several secrets in one text, in order") {
  const std::string gh = github_token("ghp_", rnd(30, 60));
  const std::string ant = "sk-ant-api03-" + rnd(90, 61);
  const std::string akia = "AKIA" + upper_alnum(16, 62);
  const std::string text = "Deploy with GH=" + gh + " and ANTHROPIC_API_KEY=" + ant +
                           "\nand aws key " + akia + " and mysql://root:Tr0ub4dor@db/x done";
  const auto f = scan(text);
  REQUIRE(f.size() == 4);
  CHECK(f[0].detector == "secret.github_token");
  CHECK(f[1].detector == "secret.anthropic_api_key");
  CHECK(f[2].detector == "secret.aws_access_key_id");
  CHECK(f[3].detector == "secret.database_url");
  for (const auto& x : f) {
    const std::string_view s(text.data() + x.spans[0].begin, x.spans[0].end - x.spans[0].begin);
    CHECK(x.explanation.find(s) == std::string::npos);
  }
}

TEST_CASE("secrets: every truncation of a text is scanned safely") {
  const std::string pem =
      "-----BEGIN EC PRIVATE KEY-----\n" + rnd(80, 70) + "\n-----END EC PRIVATE KEY-----";
  const std::string jwt = b64url(R"({"alg":"none"})") + "." + b64url("{}") + "." + rnd(8, 71);
  const std::string text = "api_key=\"" + rnd(24, 72) + "\" " + jwt + " postgres://a:b@c " + pem +
                           " " + github_token("ghs_", rnd(30, 73)) + " sk-ant-" + rnd(40, 74);
  CHECK(scan(text).size() == 6);
  for (size_t n = 0; n <= text.size(); ++n) scan(std::string(text.substr(0, n)));
  for (size_t n = 0; n <= text.size(); ++n) scan(std::string(text.substr(n)));
}

TEST_CASE("secrets: prose and code without secrets give nothing") {
  CHECK(scan("").empty());
  CHECK(scan(kProse).empty());
  const char* code = R"(
def get_client(api_key: str, timeout: float = 30.0):
    token = os.environ["GITHUB_TOKEN"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": api_key}
    password = getpass.getpass("password: ")
    url = "https://api.example.com/v1/chat/completions?stream=true"
    return Client(headers=headers, secret_key=settings.SECRET_KEY, key=None)
)";
  CHECK(scan(code).empty());
}

TEST_CASE("secrets: a megabyte of English prose holds no secret") {
  std::string text;
  while (text.size() < (1u << 20)) text += kProse;
  const auto d = make_secrets_detector();
  std::vector<Finding> out;
  const int kRounds = 5;
  for (int i = 0; i < kRounds; ++i) d->scan(text, Source::kUser, out);
  CHECK(out.empty());
}

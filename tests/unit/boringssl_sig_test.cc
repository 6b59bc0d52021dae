// agent/elf/boringssl_sig: the signature matcher on excerpts of three releases of Claude Code's
// native binary (tests/fixtures/elf/README.md says where they come from), the whole-file lookup
// on files without BoringSSL, and OpenSSL 3 linked in: a client built here with gcc and
// Debian's libssl.a, stripped, located at the addresses of its unstripped build's symbols.
#include "agent/elf/boringssl_sig.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "agent/elf/symbols.h"
#include "temp_dir.h"

namespace {

using agentwall::elf::Call;
using agentwall::elf::ErrorSite;
using agentwall::elf::find_error_sites;
using agentwall::elf::match_ssl_functions;
using agentwall::elf::SslFunctions;

struct Release {
  const char* file;
  uint64_t address;    // of the excerpt's first byte
  uint64_t file_name;  // of "…/ssl/ssl_lib.cc"
  uint64_t ssl_write;  // found by reading the disassembly (objdump) by hand
  uint64_t ssl_read;
  std::vector<Call> calls;  // direct calls into SSL_write/SSL_read from outside the excerpt
};

const Release kReleases[] = {
    {"claude-2.1.110-ssl_lib.bin",
     0x51f6cc0,
     0x32d15b,
     0x51f7960,
     0x51f6d00,
     {{0x3635e63, 0x51f7960}, {0x3770688, 0x51f7960}, {0x3844480, 0x51f6d00}}},
    {"claude-2.1.220-ssl_lib.bin",
     0x3177b00,
     0x2959d4,
     0x3177ed0,
     0x3177b40,
     {{0x1fd453f, 0x3177ed0}, {0x1fd489c, 0x3177b40}}},
    {"claude-2.1.332-ssl_lib.bin",
     0x35312c0,
     0xd47d7f,
     0x3531300,
     0x35314b0,
     {{0x3581a1c, 0x3531300}, {0x3581e28, 0x35314b0}}},
};

std::vector<uint8_t> read_fixture(const std::string& name) {
  std::ifstream in(std::string(AGENTWALL_FIXTURES) + "/elf/" + name, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("BoringSSL signature: SSL_write and SSL_read in three releases of Claude Code") {
  for (const Release& r : kReleases) {
    CAPTURE(r.file);
    const std::vector<uint8_t> code = read_fixture(r.file);
    const SslFunctions f = match_ssl_functions(code, r.address, r.file_name, r.calls);
    CHECK(f.why == "");
    CHECK(f.write == r.ssl_write);
    CHECK(f.read == r.ssl_read);
    // SSL_write's own reports: its four reasons, whatever the argument order of the build
    // (2.1.110 and 2.1.220 pass ERR_put_error 4 arguments, 2.1.332 5).
    std::set<uint32_t> write_reasons;
    for (const ErrorSite& s : find_error_sites(code, r.address, r.file_name))
      if (s.address > r.ssl_write && s.address < r.ssl_write + 0x1a0)
        write_reasons.insert(s.reason);
    CHECK(write_reasons == std::set<uint32_t>{66, 111, 215, 226});
  }
}

TEST_CASE("BoringSSL signature: no direct call into SSL_write, no match") {
  const Release& r = kReleases[2];
  const std::vector<uint8_t> code = read_fixture(r.file);
  const SslFunctions f = match_ssl_functions(code, r.address, r.file_name, {});
  CHECK(f.write == 0);
  CHECK(f.read == 0);
  CHECK(f.why.find("not entered by a direct call") != std::string::npos);
}

TEST_CASE("BoringSSL signature: a changed reason code or file name finds nothing") {
  for (const Release& r : kReleases) {
    CAPTURE(r.file);
    std::vector<uint8_t> code = read_fixture(r.file);
    // The wrong file name: no error report is recognised.
    CHECK(find_error_sites(code, r.address, r.file_name + 1).empty());
    // SSL_R_BAD_LENGTH (111) no longer raised: SSL_write looks like a second ssl_read_impl.
    size_t changed = 0;
    for (size_t i = 0; i + 5 <= code.size(); ++i) {
      if ((code[i] == 0xba || code[i] == 0xbe) && code[i + 1] == 111 && code[i + 2] == 0 &&
          code[i + 3] == 0 && code[i + 4] == 0) {
        code[i + 1] = 112;
        ++changed;
      }
    }
    CHECK(changed == 1);
    const SslFunctions f = match_ssl_functions(code, r.address, r.file_name, r.calls);
    CHECK(f.write == 0);
    CHECK(f.read == 0);
    CHECK(f.why != "");
  }
}

TEST_CASE("BoringSSL signature: truncated and hostile bytes are never read out of bounds") {
  const Release& r = kReleases[1];
  const std::vector<uint8_t> code = read_fixture(r.file);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, code.size() / 2}) {
    const std::vector<uint8_t> part(code.begin(), code.begin() + static_cast<long>(n));
    const SslFunctions f = match_ssl_functions(part, r.address, r.file_name, r.calls);
    CHECK(f.write == 0);
  }
  std::vector<uint8_t> noise(4096);
  uint32_t x = 12345;
  for (uint8_t& b : noise) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  CHECK(match_ssl_functions(noise, 0x1000, 0x2000, {}).write == 0);
}

TEST_CASE("BoringSSL signature: files without BoringSSL") {
  const auto none = agentwall::elf::find_ssl_by_signature("/proc/self/exe");
  CHECK(none.error == "");
  CHECK_FALSE(none.boringssl);
  CHECK_FALSE(none.found());
  const std::vector<uint8_t> text = {'n', 'o', 't', ' ', 'E', 'L', 'F'};
  const auto bad = agentwall::elf::find_ssl_by_signature_in_image(text, "junk");
  CHECK(bad.error.find("not an ELF file") != std::string::npos);
  CHECK_FALSE(bad.found());
  CHECK(agentwall::elf::find_ssl_by_signature("/nonexistent/file").error != "");
}

TEST_CASE("OpenSSL 3 linked in and stripped: SSL_write and SSL_read where the symbols say") {
  REQUIRE_MESSAGE(std::system("command -v cc >/dev/null 2>&1") == 0, "no C compiler");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  std::ofstream(d + "/client.c") << R"(#include <openssl/ssl.h>
#ifdef INDIRECT
int (*volatile ssl_write)(SSL*, const void*, int) = SSL_write;
int (*volatile ssl_read)(SSL*, void*, int) = SSL_read;
#else
#define ssl_write SSL_write
#define ssl_read SSL_read
#endif
int main(void) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  char buf[16];
  int n = ssl_write(ssl, "x", 1) + ssl_read(ssl, buf, sizeof(buf));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return n == 0;
}
)";
  const auto build = [&](const std::string& out, const std::string& flags) {
    const std::string cmd = "cc -O1 -o " + d + "/" + out + " " + d + "/client.c " + flags +
                            " -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -pthread";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
    return d + "/" + out;
  };
  const std::string plain = build("plain", "");
  const std::string stripped = build("stripped", "-s");
  const std::string indirect = build("indirect", "-s -DINDIRECT");
  const auto syms = agentwall::elf::find_functions(plain, {"SSL_write", "SSL_read"});
  REQUIRE(syms.offsets.count("SSL_write") == 1);
  REQUIRE(syms.offsets.count("SSL_read") == 1);
  CHECK(agentwall::elf::find_functions(stripped, {"SSL_write"}).offsets.empty());
  const auto r = agentwall::elf::find_ssl_by_signature(stripped);
  CHECK(r.openssl);
  CHECK_FALSE(r.boringssl);
  CHECK(r.detail != "");
  CHECK(r.write_offset == syms.offsets.at("SSL_write"));
  CHECK(r.read_offset == syms.offsets.at("SSL_read"));
  // Called through pointers only: no direct call gives the entry, nothing is located.
  const auto i = agentwall::elf::find_ssl_by_signature(indirect);
  CHECK(i.openssl);
  CHECK_FALSE(i.found());
  CHECK(i.detail.find("no direct call") != std::string::npos);
}

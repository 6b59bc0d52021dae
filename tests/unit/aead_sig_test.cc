// agent/elf/boringssl_sig's AEAD locator (rustls over aws-lc in a stripped Rust executable) on
// a stand-in of our own (tests/fixtures/elf/aead_shape.c: the error reports of aws-lc's
// cipher/aead.c and rustls's aws-lc-rs source path), compiled here with clang and LLD (int3
// padding, as Rust executables are linked), stripped and located at the addresses of its
// unstripped build's symbols; the negative cases on variants of it. The real Codex binary is
// checked by integration.test_codex.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "agent/elf/boringssl_sig.h"
#include "agent/elf/symbols.h"
#include "temp_dir.h"

namespace {

bool have(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

std::string build(const std::string& dir, const std::string& out, const std::string& flags) {
  const std::string src = std::string(AGENTWALL_FIXTURES) + "/elf/aead_shape.c";
  const std::string path = dir + "/" + out;
  const std::string cmd =
      "clang -O2 -fuse-ld=lld -ffunction-sections -o " + path + " " + src + " " + flags;
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  return path;
}

}  // namespace

TEST_CASE("AEAD signature: the stand-in, stripped, located where its symbols say") {
  REQUIRE_MESSAGE((have("clang") && have("ld.lld")), "clang and ld.lld are needed");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  const std::string plain = build(d, "plain", "");
  const std::string stripped = build(d, "stripped", "-s");
  const auto syms = agentwall::elf::find_functions(
      plain, {"EVP_AEAD_CTX_seal", "EVP_AEAD_CTX_open", "EVP_AEAD_CTX_seal_scatter"});
  REQUIRE(syms.offsets.size() == 3);
  CHECK(agentwall::elf::find_functions(stripped, {"EVP_AEAD_CTX_seal"}).offsets.empty());
  const auto r = agentwall::elf::find_aead_by_signature(stripped);
  CHECK(r.error == "");
  CHECK(r.rustls_aws_lc);
  CHECK(r.detail.find("EVP_AEAD_CTX_seal at ") == 0);
  CHECK(r.seal_offset == syms.offsets.at("EVP_AEAD_CTX_seal"));
  CHECK(r.open_offset == syms.offsets.at("EVP_AEAD_CTX_open"));
  // seal_scatter (TLS 1.2) raises INVALID_OPERATION and OUTPUT_ALIASES_INPUT; open_gather,
  // OUTPUT_ALIASES_INPUT and CTRL_NOT_IMPLEMENTED, is taken for nothing.
  CHECK(r.seal_scatter_offset == syms.offsets.at("EVP_AEAD_CTX_seal_scatter"));
  CHECK(r.detail.find(", EVP_AEAD_CTX_seal_scatter at ") != std::string::npos);
  CHECK(r.found());
}

TEST_CASE("AEAD signature: not looked for without rustls's aws-lc-rs provider") {
  REQUIRE_MESSAGE((have("clang") && have("ld.lld")), "clang and ld.lld are needed");
  const agentwall::test::TempDir dir;
  const auto r = agentwall::elf::find_aead_by_signature(
      build(dir.path.string(), "no-provider", "-s -DNO_PROVIDER"));
  CHECK(r.error == "");
  CHECK_FALSE(r.rustls_aws_lc);
  CHECK_FALSE(r.found());
  CHECK(r.detail == "aws-lc's aead.c without rustls's aws-lc-rs provider");
}

TEST_CASE("AEAD signature: two functions raising seal's errors, nothing located") {
  REQUIRE_MESSAGE((have("clang") && have("ld.lld")), "clang and ld.lld are needed");
  const agentwall::test::TempDir dir;
  const auto r = agentwall::elf::find_aead_by_signature(
      build(dir.path.string(), "two-seals", "-s -DTWO_SEALS"));
  CHECK(r.rustls_aws_lc);
  CHECK_FALSE(r.found());
  CHECK(r.detail.find("2 functions raise EVP_AEAD_CTX_seal's errors") == 0);
}

TEST_CASE("AEAD signature: files without aws-lc, and files that are not ELF") {
  const agentwall::test::TempDir dir;
  const auto none = agentwall::elf::find_aead_by_signature("/bin/true");
  CHECK(none.error == "");
  CHECK_FALSE(none.rustls_aws_lc);
  CHECK(none.detail == "no aws-lc cipher/aead.c");
  const std::string text =
      "not an ELF file /crypto/fipsmodule/cipher/aead.c /src/crypto/aws_lc_rs/";
  const auto bad = agentwall::elf::find_aead_by_signature_in_image(
      {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "made-up");
  CHECK(bad.error.find("made-up: ") == 0);
  CHECK_FALSE(bad.found());
}

// agent/elf/boringssl_sig: BoringSSL's signature on a stand-in of our own
// (tests/fixtures/elf/boringssl_shape.c: the error reports of ssl/ssl_lib.cc's SSL_write,
// ssl_read_impl, SSL_read and SSL_set_tlsext_host_name, and decoys), compiled here, stripped and
// located at the addresses of its unstripped build's symbols; the negative cases on variants of
// that build and on bytes made up here; OpenSSL 3 linked in: a client built here with Debian's
// libssl.a, likewise. Real Claude Code releases are checked by integration.test_claude_code, not
// here.
#include "agent/elf/boringssl_sig.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/elf/image.h"
#include "agent/elf/symbols.h"
#include "temp_dir.h"

namespace {

using agentwall::elf::Call;
using agentwall::elf::ErrorSite;
using agentwall::elf::find_error_sites;
using agentwall::elf::find_ssl_by_signature;
using agentwall::elf::find_ssl_by_signature_in_image;
using agentwall::elf::match_ssl_functions;
using agentwall::elf::SslFunctions;

bool have(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

// Compiles the stand-in with `compiler` and `flags` into `dir`/`out`.
std::string build_shape(const std::string& dir, const std::string& compiler, const std::string& out,
                        const std::string& flags) {
  const std::string src = std::string(AGENTWALL_FIXTURES) + "/elf/boringssl_shape.c";
  const std::string path = dir + "/" + out;
  const std::string cmd = compiler + " -O2 -o " + path + " " + src + " " + flags;
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  return path;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A build's .text and the address of its "…/ssl/ssl_lib.cc" string, read the way the locator
// reads them, for the tests of its parts.
struct Text {
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
  uint64_t file_name = 0;
};

Text text_of(const std::vector<uint8_t>& image) {
  namespace d = agentwall::elf::detail;
  d::Layout layout;
  REQUIRE(d::read_layout(image, layout) == "");
  Text t;
  const auto text = d::find_section(image, layout, ".text");
  REQUIRE(text.has_value());
  const Elf64_Shdr& s = layout.sections[*text];
  REQUIRE(d::in_bounds(image, s.sh_offset, s.sh_size));
  t.address = s.sh_addr;
  t.bytes.assign(image.begin() + static_cast<long>(s.sh_offset),
                 image.begin() + static_cast<long>(s.sh_offset + s.sh_size));
  const auto rodata = d::find_section(image, layout, ".rodata");
  REQUIRE(rodata.has_value());
  const Elf64_Shdr& r = layout.sections[*rodata];
  REQUIRE(d::in_bounds(image, r.sh_offset, r.sh_size));
  const std::string_view data(reinterpret_cast<const char*>(image.data() + r.sh_offset), r.sh_size);
  const size_t end = data.find(std::string_view("/ssl/ssl_lib.cc\0", 16));
  REQUIRE(end != std::string_view::npos);
  const size_t start = data.rfind('\0', end) + 1;  // npos + 1 == 0
  t.file_name = r.sh_addr + start;
  return t;
}

struct Variant {
  const char* name;
  const char* compiler;
  const char* flags;
  bool int3_padding() const { return std::string_view(compiler) == "clang"; }
};

// How the stand-in is built: gcc (the system's cc) bounds functions by direct call targets
// only (it pads with nops); clang with LLD and a section per function pads with int3, as the
// BoringSSL of Bun is built. PIE loads the file name with `lea`, non-PIE with `mov`.
const Variant kVariants[] = {
    {"cc, PIE", "cc", ""},
    {"cc, non-PIE", "cc", "-no-pie"},
    {"cc, ERR_put_error with 4 arguments", "cc", "-DPUT_ERROR_4_ARGS"},
    {"cc, SSL_peek's QUIC check inlined into SSL_read", "cc", "-DSSL_READ_QUIC_CHECK"},
    {"clang+lld, PIE", "clang", "-fuse-ld=lld -ffunction-sections"},
    {"clang+lld, non-PIE, 4 arguments", "clang",
     "-fuse-ld=lld -ffunction-sections -no-pie -DPUT_ERROR_4_ARGS"},
    {"clang+lld, SSL_set_tlsext_host_name reports a malloc failure too", "clang",
     "-fuse-ld=lld -ffunction-sections -DHOST_NAME_MALLOC_REPORT"},
};

constexpr const char* kClangFlags = "-fuse-ld=lld -ffunction-sections";

// Rewrites `mov edx, from` (the reason of a 5-argument report) into `mov edx, to` in the image
// bytes [first, last); how many it rewrote.
size_t patch_reason(std::vector<uint8_t>& image, uint64_t first, uint64_t last, uint8_t from,
                    uint8_t to) {
  REQUIRE(last <= image.size());
  size_t changed = 0;
  for (uint64_t i = first; i + 5 <= last; ++i) {
    if (image[i] == 0xba && image[i + 1] == from && image[i + 2] == 0 && image[i + 3] == 0 &&
        image[i + 4] == 0) {
      image[i + 1] = to;
      ++changed;
    }
  }
  return changed;
}

// SSL_write and SSL_read located, SSL_set_tlsext_host_name not, for the reason `why`.
void check_without_host_name(const agentwall::elf::SslSignatureLookup& r, const std::string& why) {
  CHECK(r.found());
  CHECK(r.host_name_offset == 0);
  CHECK(r.detail.find("; SSL_set_tlsext_host_name not located (no SNI): " + why) !=
        std::string::npos);
}

// Made-up x86-64 code at kBase, each function after int3 padding: SSL_write's four reports,
// ssl_read_impl's two, an SSL_read that calls it, an ERR_put_error that returns, and a caller
// of SSL_write and SSL_read when asked. `adjacent`: ssl_read_impl comes first and ends on a
// 16-byte boundary, SSL_write follows with no padding (only a call into it bounds it).
constexpr uint64_t kBase = 0x401000;
constexpr uint64_t kFileName = 0x402345;

struct Synthetic {
  std::vector<uint8_t> code;
  uint64_t write = 0;
  uint64_t read = 0;
};

Synthetic synthetic(bool call_write, bool call_read, bool adjacent = false) {
  Synthetic s;
  std::vector<uint8_t>& c = s.code;
  const auto here = [&] { return kBase + c.size(); };
  const auto imm32 = [&](uint64_t v) {
    for (int k = 0; k < 4; ++k) c.push_back(static_cast<uint8_t>(v >> (8 * k)));
  };
  const auto call = [&](uint64_t to) {
    c.push_back(0xe8);
    imm32(to - (here() + 4));
  };
  const auto pad = [&] {
    do c.push_back(0xcc);
    while (here() % 16 != 0);
  };
  const uint64_t err = kBase + 0x400;  // ERR_put_error, placed below
  const auto report = [&](uint32_t reason) {
    c.insert(c.end(), {0x48, 0x8d, 0x0d});  // lea rcx, [rip + file name]
    imm32(kFileName - (here() + 4));
    c.push_back(0xba);  // mov edx, reason
    imm32(reason);
    c.insert(c.end(), {0x31, 0xf6});  // xor esi, esi
    c.push_back(0xbf);                // mov edi, 16
    imm32(16);
    call(err);
  };
  const auto write = [&] {
    s.write = here();
    for (uint32_t r : {66u, 226u, 215u, 111u}) report(r);
    c.push_back(0xc3);
    pad();
  };
  pad();  // what precedes
  if (!adjacent) write();
  const uint64_t read_impl = here();
  report(226);
  report(215);
  if (adjacent) {
    while ((here() + 1) % 16 != 0) c.push_back(0x90);  // nop
    c.push_back(0xc3);
    write();
  } else {
    c.push_back(0xc3);
    pad();
  }
  s.read = here();
  c.push_back(0x53);  // push rbx: a call is never a function's first instruction
  call(read_impl);
  c.insert(c.end(), {0x5b, 0xc3});  // pop rbx; ret
  pad();
  while (here() < err) c.push_back(0xcc);
  c.push_back(0xc3);
  pad();
  if (call_write) call(s.write);
  if (call_read) call(s.read);
  c.push_back(0xc3);
  pad();
  return s;
}

}  // namespace

TEST_CASE("BoringSSL signature: our stand-in, stripped, located where its symbols say") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
  const bool clang = have("clang") && have("ld.lld");
  if (!clang) MESSAGE("clang or ld.lld missing: the int3-padded builds are not tried");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  int n = 0;
  for (const Variant& v : kVariants) {
    if (std::string_view(v.compiler) == "clang" && !clang) continue;
    CAPTURE(v.name);
    const std::string tag = std::to_string(n++);
    const std::string plain = build_shape(d, v.compiler, "plain" + tag, v.flags);
    const std::string stripped =
        build_shape(d, v.compiler, "stripped" + tag, std::string(v.flags) + " -s");
    const auto syms = agentwall::elf::find_functions(
        plain,
        {"SSL_write", "SSL_read", "SSL_set_tlsext_host_name", "SSL_fixture_set_host_other_file"});
    REQUIRE(syms.offsets.size() == 4);
    CHECK(agentwall::elf::find_functions(stripped, {"SSL_write"}).offsets.empty());

    const auto r = find_ssl_by_signature(stripped);
    CHECK(r.error == "");
    CHECK(r.boringssl);
    CHECK_FALSE(r.openssl);
    CHECK(r.detail.find("SSL_write at ") == 0);
    CHECK(r.write_offset == syms.offsets.at("SSL_write"));
    CHECK(r.read_offset == syms.offsets.at("SSL_read"));
    // SSL_set_tlsext_host_name where int3 padding bounds it; gcc's nops do not: not taken.
    if (v.int3_padding()) {
      CHECK(r.host_name_offset == syms.offsets.at("SSL_set_tlsext_host_name"));
      CHECK(r.detail.find(", SSL_set_tlsext_host_name at ") != std::string::npos);
    } else {
      check_without_host_name(r, "SSL_set_tlsext_host_name is not bounded by int3 padding");
    }

    // SSL_write's own reports: its four reasons, read from the file name's load whichever
    // register carries the reason.
    const Text t = text_of(read_file(stripped));
    std::set<uint32_t> write_reasons;
    for (const ErrorSite& s : find_error_sites(t.bytes, t.address, t.file_name))
      if (s.address > r.write_address && s.address < r.write_address + syms.sizes.at("SSL_write"))
        write_reasons.insert(s.reason);
    CHECK(write_reasons == std::set<uint32_t>{66, 111, 215, 226});
    // One report of SSL3_EXT_INVALID_SERVERNAME: the decoy's names another file.
    std::vector<ErrorSite> host_name_reports;
    for (const ErrorSite& s : find_error_sites(t.bytes, t.address, t.file_name))
      if (s.reason == agentwall::elf::kInvalidServerName) host_name_reports.push_back(s);
    REQUIRE(host_name_reports.size() == 1);
    if (v.int3_padding()) CHECK(host_name_reports[0].function == r.host_name_address);
    const SslFunctions f = match_ssl_functions(t.bytes, t.address, t.file_name);
    CHECK(f.why == "");
    CHECK(f.write == r.write_address);
    CHECK(f.read == r.read_address);
    CHECK(f.host_name == r.host_name_address);
    // Another address than the file name's: no error report is recognised.
    CHECK(find_error_sites(t.bytes, t.address, t.file_name + 1).empty());
  }
}

TEST_CASE("BoringSSL signature: a changed reason code in SSL_write finds nothing") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  const std::string plain = build_shape(d, "cc", "plain", "");
  const std::string stripped = build_shape(d, "cc", "stripped", "-s");
  const auto syms = agentwall::elf::find_functions(plain, {"SSL_write"});
  REQUIRE(syms.offsets.count("SSL_write") == 1);
  std::vector<uint8_t> image = read_file(stripped);
  REQUIRE(find_ssl_by_signature_in_image(image, "stand-in").found());
  // SSL_R_BAD_LENGTH (111) becomes 112 in SSL_write's `mov edx, 111`: SSL_write looks like a
  // second ssl_read_impl.
  const uint64_t first = syms.offsets.at("SSL_write");
  REQUIRE(patch_reason(image, first, first + syms.sizes.at("SSL_write"), 111, 112) == 1);
  const auto r = find_ssl_by_signature_in_image(image, "stand-in");
  CHECK(r.error == "");
  CHECK(r.boringssl);
  CHECK_FALSE(r.found());
  CHECK(r.detail.find("0 functions raise SSL_write's errors") == 0);
}

TEST_CASE("BoringSSL signature: SSL_set_tlsext_host_name's reason changed, nothing for it") {
  if (!have("clang") || !have("ld.lld")) {
    MESSAGE("clang or ld.lld missing: SSL_set_tlsext_host_name is located in int3-padded builds");
    return;
  }
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  const std::string plain = build_shape(d, "clang", "plain", kClangFlags);
  const std::string stripped =
      build_shape(d, "clang", "stripped", std::string(kClangFlags) + " -s");
  const auto syms = agentwall::elf::find_functions(plain, {"SSL_set_tlsext_host_name"});
  REQUIRE(syms.offsets.count("SSL_set_tlsext_host_name") == 1);
  std::vector<uint8_t> image = read_file(stripped);
  REQUIRE(find_ssl_by_signature_in_image(image, "stand-in").host_name_offset ==
          syms.offsets.at("SSL_set_tlsext_host_name"));
  // SSL_R_SSL3_EXT_INVALID_SERVERNAME (213) becomes 212: SSL_write and SSL_read are still
  // found, SSL_set_tlsext_host_name is not.
  const uint64_t first = syms.offsets.at("SSL_set_tlsext_host_name");
  REQUIRE(patch_reason(image, first, first + syms.sizes.at("SSL_set_tlsext_host_name"), 213, 212) ==
          1);
  check_without_host_name(find_ssl_by_signature_in_image(image, "stand-in"),
                          "0 functions raise SSL3_EXT_INVALID_SERVERNAME");
}

TEST_CASE("BoringSSL signature: SSL_set_tlsext_host_name called through a pointer, or ambiguous") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  // gcc: the last call target before the report is an earlier function that raises nothing
  // (ERR_put_error itself in this build); without int3 padding nothing is taken.
  check_without_host_name(
      find_ssl_by_signature(build_shape(d, "cc", "indirect", "-s -DINDIRECT_HOST_NAME")),
      "SSL_set_tlsext_host_name is not bounded by int3 padding");
  if (!have("clang") || !have("ld.lld")) {
    MESSAGE("clang or ld.lld missing: the int3-padded builds are not tried");
    return;
  }
  const std::string flags = std::string(kClangFlags) + " -s";
  check_without_host_name(find_ssl_by_signature(build_shape(d, "clang", "indirect-padded",
                                                            flags + " -DINDIRECT_HOST_NAME")),
                          "SSL_set_tlsext_host_name is not entered by a direct call");
  // A second function of ssl_lib.cc raising 213 (with 111): which one is unknown.
  check_without_host_name(find_ssl_by_signature(build_shape(
                              d, "clang", "two", flags + " -DSERVER_NAME_CHECK_ELSEWHERE")),
                          "2 functions raise SSL3_EXT_INVALID_SERVERNAME");
}

TEST_CASE("BoringSSL signature: no direct call, or two candidates for SSL_read, no match") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  // SSL_write and SSL_read called through pointers only.
  const auto indirect = find_ssl_by_signature(build_shape(d, "cc", "indirect", "-s -DINDIRECT"));
  CHECK(indirect.boringssl);
  CHECK_FALSE(indirect.found());
  CHECK(indirect.detail != "");
  if (have("clang") && have("ld.lld")) {
    // With int3 padding SSL_write is bounded without a call into it; none enters it.
    const auto padded = find_ssl_by_signature(build_shape(
        d, "clang", "indirect-padded", "-fuse-ld=lld -ffunction-sections -s -DINDIRECT"));
    CHECK(padded.boringssl);
    CHECK_FALSE(padded.found());
    CHECK(padded.detail.find("not entered by a direct call") != std::string::npos);
  }
  // SSL_peek out of line: a second caller of ssl_read_impl that raises nothing else.
  const auto peek = find_ssl_by_signature(build_shape(d, "cc", "peek", "-s -DWITH_SSL_PEEK"));
  CHECK(peek.boringssl);
  CHECK_FALSE(peek.found());
  CHECK(peek.detail.find("2 callers of ssl_read_impl look like SSL_read") == 0);
}

TEST_CASE("BoringSSL signature: truncated and hostile bytes are never read out of bounds") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
  const agentwall::test::TempDir dir;
  const std::string d = dir.path.string();
  const std::vector<uint8_t> image = read_file(build_shape(d, "cc", "stripped", "-s"));
  const auto whole = find_ssl_by_signature_in_image(image, "stand-in");
  REQUIRE(whole.found());
  // The file cut anywhere: its section headers are at the end, so nothing is found (and
  // nothing is read past the cut: run under ASan to see it).
  for (size_t n = 0; n < image.size(); n += 97) {
    const std::vector<uint8_t> part(image.begin(), image.begin() + static_cast<long>(n));
    CHECK_FALSE(find_ssl_by_signature_in_image(part, "cut").found());
  }
  // .text cut before SSL_write's reports, or anywhere (no claim on what is found there).
  const Text t = text_of(image);
  const size_t into_write = whole.write_address - t.address + 8;
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, into_write}) {
    const std::vector<uint8_t> part(t.bytes.begin(), t.bytes.begin() + static_cast<long>(n));
    CHECK(match_ssl_functions(part, t.address, t.file_name).write == 0);
  }
  for (size_t n = 0; n < t.bytes.size(); n += 31) {
    const std::vector<uint8_t> part(t.bytes.begin(), t.bytes.begin() + static_cast<long>(n));
    const SslFunctions f = match_ssl_functions(part, t.address, t.file_name);
    CHECK((f.write == 0 || f.write < t.address + n));
  }
  std::vector<uint8_t> noise(4096);
  uint32_t x = 12345;
  for (uint8_t& b : noise) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  CHECK(match_ssl_functions(noise, 0x1000, 0x2000, {}).write == 0);
}

TEST_CASE("BoringSSL signature: made-up code, entered by direct calls or not") {
  const Synthetic none = synthetic(false, false);
  const SslFunctions a = match_ssl_functions(none.code, kBase, kFileName);
  CHECK(a.write == 0);
  CHECK(a.why == "SSL_write is not entered by a direct call (inlined?)");
  const Synthetic write_only = synthetic(true, false);
  const SslFunctions b = match_ssl_functions(write_only.code, kBase, kFileName);
  CHECK(b.write == 0);
  CHECK(b.why == "SSL_read is not entered by a direct call (inlined?)");
  const Synthetic both = synthetic(true, true);
  const SslFunctions c = match_ssl_functions(both.code, kBase, kFileName);
  CHECK(c.why == "");
  CHECK(c.write == both.write);
  CHECK(c.read == both.read);
  // SSL_write right after ssl_read_impl, no int3 between: bounded by the call into it.
  const Synthetic adjacent = synthetic(true, true, true);
  REQUIRE(adjacent.code[adjacent.write - kBase - 1] == 0xc3);  // ssl_read_impl's ret
  const SslFunctions d = match_ssl_functions(adjacent.code, kBase, kFileName);
  CHECK(d.why == "");
  CHECK(d.write == adjacent.write);
  CHECK(d.read == adjacent.read);
  const SslFunctions u = match_ssl_functions(synthetic(false, true, true).code, kBase, kFileName);
  CHECK(u.write == 0);
  CHECK(u.why.find("0 functions raise ssl_read_impl's errors") == 0);
  // The calls may come from elsewhere (another section): `extra_calls`.
  const Call calls[] = {{0x9000, none.write}, {0x9010, none.read}};
  const SslFunctions e = match_ssl_functions(none.code, kBase, kFileName, calls);
  CHECK(e.write == none.write);
  CHECK(e.read == none.read);
}

TEST_CASE("BoringSSL signature: files without BoringSSL") {
  const auto none = find_ssl_by_signature("/proc/self/exe");
  CHECK(none.error == "");
  CHECK_FALSE(none.boringssl);
  CHECK_FALSE(none.found());
  const std::vector<uint8_t> text = {'n', 'o', 't', ' ', 'E', 'L', 'F'};
  const auto bad = find_ssl_by_signature_in_image(text, "junk");
  CHECK(bad.error.find("not an ELF file") != std::string::npos);
  CHECK_FALSE(bad.found());
  CHECK(find_ssl_by_signature("/nonexistent/file").error != "");
}

TEST_CASE("OpenSSL 3 linked in and stripped: SSL_write and SSL_read where the symbols say") {
  REQUIRE_MESSAGE(have("cc"), "no C compiler");
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
  const auto r = find_ssl_by_signature(stripped);
  CHECK(r.openssl);
  CHECK_FALSE(r.boringssl);
  CHECK(r.detail != "");
  CHECK(r.write_offset == syms.offsets.at("SSL_write"));
  CHECK(r.read_offset == syms.offsets.at("SSL_read"));
  // Called through pointers only: no direct call gives the entry, nothing is located.
  const auto i = find_ssl_by_signature(indirect);
  CHECK(i.openssl);
  CHECK_FALSE(i.found());
  CHECK(i.detail.find("no direct call") != std::string::npos);
}

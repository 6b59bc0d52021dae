// agent/elf/gopclntab: Go executables built here, with Debian's Go (golang-go), read by symbol
// and by .gopclntab, their RETs checked against Go's own disassembler (go tool objdump).
#include "agent/elf/gopclntab.h"

#include <doctest/doctest.h>
#include <stdio.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "agent/elf/symbols.h"
#include "temp_dir.h"

namespace {

using agentwall::elf::find_go_functions;
using agentwall::elf::find_go_functions_in_image;
using agentwall::elf::find_returns_x86_64;
using agentwall::elf::GoFunction;
using agentwall::elf::GoLookup;
using agentwall::elf::GoSource;

const std::string kWrite = "crypto/tls.(*Conn).Write";
const std::string kRead = "crypto/tls.(*Conn).Read";
const std::string kClose = "crypto/tls.(*Conn).Close";
const std::vector<std::string> kNames = {kWrite, kRead, kClose};

constexpr const char* kProgram = R"(package main

import (
	"crypto/tls"
	"os"
)

func main() {
	c, err := tls.Dial("tcp", os.Args[1], &tls.Config{})
	if err != nil {
		os.Exit(1)
	}
	c.Write([]byte("hello"))
	b := make([]byte, 64)
	c.Read(b)
	c.Close()
}
)";

std::string run(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(command.c_str(), "r"), pclose);
  REQUIRE_MESSAGE(p, command);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p.get())) > 0) out.append(buf, n);
  return out;
}

// The program built twice (as is, and with -ldflags=-s -w: no symbol table) once per run.
struct GoBinaries {
  agentwall::test::TempDir dir;
  std::string plain, stripped, env;
  GoBinaries() {
    REQUIRE_MESSAGE(std::system("command -v go >/dev/null 2>&1") == 0,
                    "go not found: run scripts/install-deps.sh --test (package golang-go)");
    const std::string d = dir.path.string();
    std::ofstream(d + "/main.go") << kProgram;
    env = "cd " + d + " && HOME=" + d + " GOCACHE=" + d + "/cache GOPATH=" + d +
          "/gopath GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 ";
    plain = d + "/client";
    stripped = d + "/client-stripped";
    REQUIRE(std::system((env + "go build -o " + plain + " main.go").c_str()) == 0);
    REQUIRE(std::system((env + "go build -ldflags='-s -w' -o " + stripped + " main.go").c_str()) ==
            0);
  }
  static GoBinaries& get() {
    static GoBinaries b;
    return b;
  }
};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Go's disassembler: the address of the function's first instruction and of each RET.
struct ObjdumpView {
  uint64_t entry = 0;
  std::vector<uint64_t> rets;
};
ObjdumpView objdump(const std::string& binary, const std::string& function) {
  // -s takes a regular expression: escape the parentheses and the star, anchor both ends.
  std::string re;
  for (char c : function) {
    if (c == '(' || c == ')' || c == '*' || c == '.') re += '\\';
    re += c;
  }
  const std::string out =
      run(GoBinaries::get().env + "go tool objdump -s '^" + re + "$' " + binary);
  ObjdumpView v;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    const std::string line = out.substr(pos, eol - pos);
    pos = eol + 1;
    // "  conn.go:1133\t\t0x583be0\t\t4c8d642498\t\tLEAQ -0x68(SP), R12"
    const size_t at = line.find("\t0x");
    if (at == std::string::npos) continue;
    const uint64_t address = std::strtoull(line.c_str() + at + 1, nullptr, 16);
    if (v.entry == 0) v.entry = address;
    const size_t last_tab = line.find_last_of('\t', line.find_last_not_of(" \t"));
    if (line.compare(last_tab + 1, 3, "RET") == 0) v.rets.push_back(address);
  }
  return v;
}

}  // namespace

TEST_CASE("Go executable: crypto/tls functions by symbol and by .gopclntab agree") {
  const GoBinaries& b = GoBinaries::get();
  const GoLookup by_symbol = find_go_functions(b.plain, kNames);
  const GoLookup by_table = find_go_functions(b.plain, kNames, GoSource::kPclntabOnly);
  REQUIRE_MESSAGE(by_symbol.ok(), by_symbol.error);
  REQUIRE_MESSAGE(by_table.ok(), by_table.error);
  CHECK(by_symbol.is_go);
  CHECK((by_table.pclntab_version == "1.18" || by_table.pclntab_version == "1.20"));
  std::string version = run(b.env + "go env GOVERSION");
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) version.pop_back();
  CHECK(by_symbol.go_version == version);
  for (const std::string& name : kNames) {
    CAPTURE(name);
    REQUIRE(by_symbol.functions.count(name));
    REQUIRE(by_table.functions.count(name));
    const GoFunction& s = by_symbol.functions.at(name);
    const GoFunction& t = by_table.functions.at(name);
    CHECK_FALSE(s.from_pclntab);
    CHECK(t.from_pclntab);
    CHECK(s.offset == t.offset);
    // The table's extent runs to the next function: the symbol's, plus alignment padding.
    CHECK(t.size >= s.size);
    CHECK(t.size - s.size < 64);
    CHECK(s.returns == t.returns);
    CHECK_FALSE(s.returns.empty());
  }
}

TEST_CASE("Go executable: every RET found is one Go's disassembler shows, and none is missed") {
  const GoBinaries& b = GoBinaries::get();
  const GoLookup found = find_go_functions(b.plain, kNames, GoSource::kPclntabOnly);
  REQUIRE_MESSAGE(found.ok(), found.error);
  const std::vector<uint8_t> image = read_file(b.plain);
  for (const std::string& name : kNames) {
    CAPTURE(name);
    const GoFunction& f = found.functions.at(name);
    const ObjdumpView o = objdump(b.plain, name);
    REQUIRE(o.entry != 0);
    std::vector<uint64_t> want;
    for (const uint64_t r : o.rets) want.push_back(r - o.entry + f.offset);
    CHECK(f.returns == want);
    for (const uint64_t r : f.returns) CHECK(image.at(r) == 0xc3);
  }
  // Counting 0xc3 bytes would find more: they occur inside other instructions too.
  const GoFunction& w = found.functions.at(kWrite);
  const auto c3 = std::count(image.begin() + long(w.offset),
                             image.begin() + long(w.offset + w.size), uint8_t{0xc3});
  MESSAGE("(*Conn).Write: ", w.returns.size(), " RET instructions, ", c3, " 0xc3 bytes");
}

TEST_CASE("Go executable built with -ldflags=-s -w: no symbols, found in .gopclntab") {
  const GoBinaries& b = GoBinaries::get();
  const agentwall::elf::LookupResult syms = agentwall::elf::find_functions(b.stripped, kNames);
  REQUIRE(syms.ok());
  CHECK(syms.offsets.empty());
  const GoLookup stripped = find_go_functions(b.stripped, kNames);
  const GoLookup plain = find_go_functions(b.plain, kNames, GoSource::kPclntabOnly);
  REQUIRE_MESSAGE(stripped.ok(), stripped.error);
  CHECK(stripped.is_go);
  for (const std::string& name : kNames) {
    CAPTURE(name);
    REQUIRE(stripped.functions.count(name));
    CHECK(stripped.functions.at(name).from_pclntab);
    // Dropping the symbol table and DWARF leaves the code where it was.
    CHECK(stripped.functions.at(name).offset == plain.functions.at(name).offset);
    CHECK(stripped.functions.at(name).returns == plain.functions.at(name).returns);
  }
}

TEST_CASE("Go executable with a damaged .gopclntab: an error or nothing, never a bad read") {
  const GoBinaries& b = GoBinaries::get();
  const std::vector<uint8_t> image = read_file(b.stripped);
  // The table's header: its magic, two zero bytes, the instruction quantum (1), pointer size 8.
  size_t at = std::string::npos;
  for (const uint8_t m : {0xf0, 0xf1}) {
    const uint8_t header[] = {m, 0xff, 0xff, 0xff, 0, 0, 1, 8};
    const auto it = std::search(image.begin(), image.end(), std::begin(header), std::end(header));
    if (it != image.end()) at = size_t(it - image.begin());
  }
  REQUIRE(at != std::string::npos);
  SUBCASE("unknown magic") {
    std::vector<uint8_t> bad = image;
    bad[at] = 0x12;
    const GoLookup r = find_go_functions_in_image(bad, kNames, "bad");
    CHECK(r.is_go);
    CHECK(r.error.find("not a Go function table") != std::string::npos);
    CHECK(r.functions.empty());
  }
  SUBCASE("function count past the end") {
    std::vector<uint8_t> bad = image;
    std::memset(&bad[at + 8], 0x7f, 8);
    const GoLookup r = find_go_functions_in_image(bad, kNames, "bad");
    CHECK(r.error.find("truncated .gopclntab function table") != std::string::npos);
  }
  SUBCASE("offsets past the end") {
    for (const int word : {3, 7}) {
      std::vector<uint8_t> bad = image;
      std::memset(&bad[at + 8 + 8 * size_t(word)], 0xee, 8);
      CHECK_FALSE(find_go_functions_in_image(bad, kNames, "bad").ok());
    }
  }
  SUBCASE("every header byte flipped, one at a time") {
    for (size_t i = 0; i < 72; ++i) {
      std::vector<uint8_t> bad = image;
      bad[at + i] ^= 0xa5;
      const GoLookup r = find_go_functions_in_image(bad, kNames, "bad");
      CHECK(r.is_go);  // whatever it finds, it read nothing outside the image (ASan build)
    }
  }
  SUBCASE("the file cut inside the table") {
    const std::vector<uint8_t> cut(image.begin(), image.begin() + long(at + 4096));
    CHECK_FALSE(find_go_functions_in_image(cut, kNames, "cut").ok());
  }
}

TEST_CASE("A Go executable built before Go 1.17 (stack ABI) is refused") {
  const GoBinaries& b = GoBinaries::get();
  std::vector<uint8_t> image = read_file(b.stripped);
  const GoLookup good = find_go_functions_in_image(image, kNames, "good");
  REQUIRE(good.go_version.starts_with("go1."));
  // The version string in .go.buildinfo, rewritten to an older minor of the same length.
  const std::string& v = good.go_version;
  const std::string_view text = "\xff Go buildinf:";
  const std::vector<uint8_t> magic(text.begin(), text.end());
  const auto info = std::search(image.begin(), image.end(), magic.begin(), magic.end());
  REQUIRE(info != image.end());
  const auto it = std::search(info, image.end(), v.begin(), v.end());
  REQUIRE(it != image.end());
  std::string old = "go1.16" + v.substr(v.find('.', 4));
  if (old.size() != v.size()) old = "go1.6" + v.substr(v.find('.', 4));
  REQUIRE(old.size() == v.size());
  std::copy(old.begin(), old.end(), it);
  const GoLookup r = find_go_functions_in_image(image, kNames, "old");
  CHECK(r.is_go);
  CHECK(r.go_version == old);
  CHECK(r.error.find("passes arguments on the stack") != std::string::npos);
  CHECK(r.functions.empty());
}

TEST_CASE("A file that is not a Go executable is not an error") {
  const GoLookup r = find_go_functions("/proc/self/exe", kNames);
  CHECK(r.ok());
  CHECK_FALSE(r.is_go);
  CHECK(r.functions.empty());
}

TEST_CASE("find_returns_x86_64 decodes instruction lengths") {
  std::vector<uint64_t> rets;
  // mov rax, 0xc3 (a 0xc3 byte inside an instruction); ret; ret 8; int3 padding.
  const std::vector<uint8_t> code = {0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00,
                                     0xc3, 0xc2, 0x08, 0x00, 0xcc, 0xcc};
  CHECK(find_returns_x86_64(code, 0x1000, rets) == "");
  CHECK(rets == std::vector<uint64_t>{0x1007, 0x1008});
  // An instruction cut at the end, followed by something other than padding.
  rets.clear();
  const std::vector<uint8_t> cut = {0xc3, 0x48, 0xc7};
  CHECK(find_returns_x86_64(cut, 0, rets).find("cannot decode the instruction at 0x1") == 0);
}

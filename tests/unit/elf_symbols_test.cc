#include "agent/elf/symbols.h"

#include <doctest/doctest.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <unordered_set>

namespace {

using agentwall::elf::find_functions;
using agentwall::elf::find_functions_in_image;
using agentwall::elf::LookupResult;

// ---- a minimal x86-64 shared object, built in memory --------------------------------------
//
// Layout: ELF header, one PT_LOAD R+X segment mapping kTextSize bytes of int3 at kTextOffset
// to kTextAddress, then .dynsym, .dynstr, .symtab, .strtab, then the section header table.
// The segment's memory size exceeds its file size, as with a .bss tail. Nothing after the text
// is aligned, on purpose.

constexpr uint64_t kTextOffset = 0x200;
constexpr uint64_t kTextAddress = 0x401200;
constexpr uint64_t kTextSize = 0x100;

enum Section : uint16_t { kNull, kText, kDynsym, kDynstr, kSymtab, kStrtab, kSectionCount };

struct TestSymbol {
  std::string name;
  uint64_t address;
  unsigned char type = STT_FUNC;
  uint16_t section = kText;
};

template <class T>
void append(std::vector<uint8_t>& out, const T* data, size_t count) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + count * sizeof(T));
}

class TinyElf {
 public:
  TinyElf(const std::vector<TestSymbol>& dynamic, const std::vector<TestSymbol>& local) {
    bytes_.assign(kTextOffset, 0);
    bytes_.resize(kTextOffset + kTextSize, 0xcc);
    std::array<Elf64_Shdr, kSectionCount> sections{};
    sections[kText] = {.sh_type = SHT_PROGBITS,
                       .sh_flags = SHF_ALLOC | SHF_EXECINSTR,
                       .sh_addr = kTextAddress,
                       .sh_offset = kTextOffset,
                       .sh_size = kTextSize};
    append_symbol_table(dynamic, SHT_DYNSYM, kDynsym, kDynstr, sections);
    append_symbol_table(local, SHT_SYMTAB, kSymtab, kStrtab, sections);
    const uint64_t section_headers = bytes_.size();
    append(bytes_, sections.data(), sections.size());

    Elf64_Ehdr header{};
    std::memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = ET_DYN;
    header.e_machine = EM_X86_64;
    header.e_version = EV_CURRENT;
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_shoff = section_headers;
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = 1;
    header.e_shentsize = sizeof(Elf64_Shdr);
    header.e_shnum = kSectionCount;
    header.e_shstrndx = SHN_UNDEF;
    std::memcpy(bytes_.data(), &header, sizeof(header));

    const Elf64_Phdr text{.p_type = PT_LOAD,
                          .p_flags = PF_R | PF_X,
                          .p_offset = kTextOffset,
                          .p_vaddr = kTextAddress,
                          .p_paddr = kTextAddress,
                          .p_filesz = kTextSize,
                          .p_memsz = kTextSize + 0x1000,  // a .bss tail: not in the file
                          .p_align = 0x1000};
    std::memcpy(bytes_.data() + header.e_phoff, &text, sizeof(text));
  }

  std::vector<uint8_t>& bytes() { return bytes_; }

  LookupResult find(const std::vector<std::string>& names) const {
    return find_functions_in_image(bytes_, names, "tiny.so");
  }

  template <class T>
  void set_header(T Elf64_Ehdr::*field, T value) {
    patch<Elf64_Ehdr>(0, field, value);
  }
  template <class T>
  void set_section(Section index, T Elf64_Shdr::*field, T value) {
    patch<Elf64_Shdr>(header().e_shoff + index * sizeof(Elf64_Shdr), field, value);
  }
  Elf64_Shdr section(Section index) const {
    return read<Elf64_Shdr>(header().e_shoff + index * sizeof(Elf64_Shdr));
  }

 private:
  Elf64_Ehdr header() const { return read<Elf64_Ehdr>(0); }

  template <class T>
  T read(uint64_t offset) const {
    T value;
    std::memcpy(&value, bytes_.data() + offset, sizeof(T));
    return value;
  }
  template <class Struct, class T>
  void patch(uint64_t offset, T Struct::*field, T value) {
    Struct entry = read<Struct>(offset);
    entry.*field = value;
    std::memcpy(bytes_.data() + offset, &entry, sizeof(entry));
  }

  void append_symbol_table(const std::vector<TestSymbol>& symbols, uint32_t type, Section table,
                           Section strings, std::array<Elf64_Shdr, kSectionCount>& sections) {
    std::vector<uint8_t> names(1, 0);
    std::vector<Elf64_Sym> entries(1);  // entry 0 is the null symbol
    for (const TestSymbol& symbol : symbols) {
      entries.push_back(
          {.st_name = static_cast<uint32_t>(names.size()),
           .st_info = static_cast<unsigned char>(ELF64_ST_INFO(STB_GLOBAL, symbol.type)),
           .st_shndx = symbol.section,
           .st_value = symbol.address,
           .st_size = 1});
      names.insert(names.end(), symbol.name.begin(), symbol.name.end());
      names.push_back(0);
    }
    sections[table] = {.sh_type = type,
                       .sh_flags = SHF_ALLOC,
                       .sh_offset = bytes_.size(),
                       .sh_size = entries.size() * sizeof(Elf64_Sym),
                       .sh_link = strings,
                       .sh_info = 1,
                       .sh_entsize = sizeof(Elf64_Sym)};
    append(bytes_, entries.data(), entries.size());
    sections[strings] = {
        .sh_type = SHT_STRTAB, .sh_offset = bytes_.size(), .sh_size = names.size()};
    append(bytes_, names.data(), names.size());
  }

  std::vector<uint8_t> bytes_;
};

TinyElf tiny_with_write_and_read() {
  return TinyElf({{"SSL_write", kTextAddress + 0x10}}, {{"SSL_read", kTextAddress + 0x40}});
}

// ---- real files ------------------------------------------------------------------------------

std::vector<uint8_t> read_file(const std::string& path, uint64_t offset = 0,
                               uint64_t length = std::numeric_limits<uint64_t>::max()) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  REQUIRE(offset <= size);
  std::vector<uint8_t> bytes(std::min(length, size - offset));
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(in);
  return bytes;
}

// Whether `offset` lies in the file range of an executable PT_LOAD segment of `path`.
bool in_executable_segment(const std::string& path, uint64_t offset) {
  const std::vector<uint8_t> start = read_file(path, 0, sizeof(Elf64_Ehdr));
  REQUIRE(start.size() == sizeof(Elf64_Ehdr));
  Elf64_Ehdr header;
  std::memcpy(&header, start.data(), sizeof(header));
  const std::vector<uint8_t> table =
      read_file(path, header.e_phoff, uint64_t{header.e_phnum} * header.e_phentsize);
  for (size_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment;
    std::memcpy(&segment, table.data() + i * header.e_phentsize, sizeof(segment));
    if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) && offset >= segment.p_offset &&
        offset - segment.p_offset < segment.p_filesz) {
      return true;
    }
  }
  return false;
}

}  // namespace

// The probe target for the /proc/self/exe test: a global function, so it is in .symtab.
extern "C" __attribute__((used, noinline)) int agentwall_elf_test_probe_target(int x) {
  return x * 7 + 3;
}

// ---- well-formed input ------------------------------------------------------------------------

TEST_CASE("elf: finds functions in a minimal image at file offsets, not addresses") {
  const LookupResult result = tiny_with_write_and_read().find({"SSL_write", "SSL_read"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.size() == 2);
  CHECK(result.offsets.at("SSL_write") == kTextOffset + 0x10);
  CHECK(result.offsets.at("SSL_read") == kTextOffset + 0x40);
}

TEST_CASE("elf: .dynsym wins over .symtab") {
  const TinyElf elf({{"SSL_write", kTextAddress + 0x10}},
                    {{"SSL_write", kTextAddress + 0x20}, {"helper", kTextAddress + 0x30}});
  const LookupResult result = elf.find({"SSL_write", "helper"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.at("SSL_write") == kTextOffset + 0x10);
  CHECK(result.offsets.at("helper") == kTextOffset + 0x30);
}

TEST_CASE("elf: only defined functions with a mapped, non-zero address match") {
  const TinyElf elf(
      {
          {"undefined", kTextAddress + 0x10, STT_FUNC, SHN_UNDEF},
          {"object", kTextAddress + 0x10, STT_OBJECT},
          {"no_type", kTextAddress + 0x10, STT_NOTYPE},
          {"zero", 0},
          {"unmapped", kTextAddress + kTextSize},  // one past the segment's file range
          {"below", kTextAddress - 1},
          {"resolver", kTextAddress + 0x50, STT_GNU_IFUNC},
          // The first definition of a name is skipped for not being a function; the second
          // one counts.
          {"twice", kTextAddress + 0x60, STT_OBJECT},
          {"twice", kTextAddress + 0x70},
      },
      {});
  const LookupResult result = elf.find(
      {"undefined", "object", "no_type", "zero", "unmapped", "below", "resolver", "twice"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.size() == 2);
  CHECK(result.offsets.at("resolver") == kTextOffset + 0x50);
  CHECK(result.offsets.at("twice") == kTextOffset + 0x70);
}

TEST_CASE("elf: names match exactly and unknown names are absent, not errors") {
  const LookupResult result =
      tiny_with_write_and_read().find({"SSL_writ", "SSL_write_ex", "ssl_write", "", "nothing"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.empty());
  CHECK(tiny_with_write_and_read().find({}).offsets.empty());
}

TEST_CASE("elf: an out-of-range section name string table index does not matter") {
  TinyElf elf = tiny_with_write_and_read();
  elf.set_header(&Elf64_Ehdr::e_shstrndx, uint16_t{0xfff0});
  const LookupResult result = elf.find({"SSL_write"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.at("SSL_write") == kTextOffset + 0x10);
}

// ---- hostile input -------------------------------------------------------------------------

namespace {

void check_error(const TinyElf& elf, const std::string& expected) {
  const LookupResult result = elf.find({"SSL_write", "SSL_read"});
  CHECK_FALSE(result.ok());
  CHECK(result.offsets.empty());
  CHECK_MESSAGE(result.error.find(expected) != std::string::npos, result.error);
  CHECK_MESSAGE(result.error.starts_with("tiny.so: "), result.error);
}

void check_image_error(std::span<const uint8_t> image, const std::string& expected) {
  const LookupResult result = find_functions_in_image(image, {"SSL_write"}, "blob");
  CHECK_FALSE(result.ok());
  CHECK_MESSAGE(result.error == "blob: " + expected, result.error);
}

}  // namespace

TEST_CASE("elf: rejects what is not a little-endian 64-bit ELF object for x86-64 or AArch64") {
  TinyElf elf = tiny_with_write_and_read();
  const std::vector<uint8_t> good = elf.bytes();
  SUBCASE("empty") {
    check_image_error({}, "empty file, not an ELF file");
  }
  SUBCASE("not ELF") {
    const std::string text = "#!/bin/sh\necho hello\n";
    check_image_error({reinterpret_cast<const uint8_t*>(text.data()), text.size()},
                      "not an ELF file");
  }
  SUBCASE("shorter than the magic") {
    check_image_error(std::span(good).first(3), "not an ELF file");
  }
  SUBCASE("truncated identification") {
    check_image_error(std::span(good).first(EI_CLASS + 1), "truncated ELF header");
  }
  SUBCASE("truncated header") {
    check_image_error(std::span(good).first(sizeof(Elf64_Ehdr) - 1), "truncated ELF header");
  }
  SUBCASE("32-bit") {
    elf.bytes()[EI_CLASS] = ELFCLASS32;
    check_error(elf, "32-bit ELF not supported");
  }
  SUBCASE("invalid class") {
    elf.bytes()[EI_CLASS] = 7;
    check_error(elf, "invalid ELF class 7");
  }
  SUBCASE("big-endian") {
    elf.bytes()[EI_DATA] = ELFDATA2MSB;
    check_error(elf, "big-endian ELF not supported");
  }
  SUBCASE("invalid data encoding") {
    elf.bytes()[EI_DATA] = 0;
    check_error(elf, "invalid ELF data encoding 0");
  }
  SUBCASE("other machine") {
    elf.set_header(&Elf64_Ehdr::e_machine, Elf64_Half{EM_RISCV});
    check_error(elf, "unsupported machine 243");
  }
  SUBCASE("AArch64 is read") {
    elf.set_header(&Elf64_Ehdr::e_machine, Elf64_Half{EM_AARCH64});
    CHECK(elf.find({"SSL_write"}).offsets.at("SSL_write") == kTextOffset + 0x10);
  }
  SUBCASE("relocatable object") {
    elf.set_header(&Elf64_Ehdr::e_type, Elf64_Half{ET_REL});
    check_error(elf, "not an executable or shared object (e_type 1)");
  }
}

TEST_CASE("elf: rejects header tables that are missing or outside the file") {
  TinyElf elf = tiny_with_write_and_read();
  const auto size = static_cast<Elf64_Off>(elf.bytes().size());
  SUBCASE("no section headers") {
    elf.set_header(&Elf64_Ehdr::e_shoff, Elf64_Off{0});
    check_error(elf, "no section header table");
  }
  SUBCASE("section headers start past the end") {
    elf.set_header(&Elf64_Ehdr::e_shoff, size + 1);
    check_error(elf, "truncated section header table");
  }
  SUBCASE("section headers end past the end") {
    elf.set_header(&Elf64_Ehdr::e_shoff, size - sizeof(Elf64_Shdr));
    check_error(elf, "truncated section header table");
  }
  SUBCASE("section header offset near 2^64") {
    elf.set_header(&Elf64_Ehdr::e_shoff, std::numeric_limits<Elf64_Off>::max() - 8);
    check_error(elf, "truncated section header table");
  }
  SUBCASE("too many sections") {
    elf.set_header(&Elf64_Ehdr::e_shnum, Elf64_Half{0xffff});
    check_error(elf, "truncated section header table");
  }
  SUBCASE("extended section count near 2^64") {
    elf.set_header(&Elf64_Ehdr::e_shnum, Elf64_Half{0});
    elf.set_section(kNull, &Elf64_Shdr::sh_size, std::numeric_limits<Elf64_Xword>::max());
    check_error(elf, "truncated section header table");
  }
  SUBCASE("extended section count is honoured") {
    elf.set_header(&Elf64_Ehdr::e_shnum, Elf64_Half{0});
    elf.set_section(kNull, &Elf64_Shdr::sh_size, Elf64_Xword{kSectionCount});
    CHECK(elf.find({"SSL_read"}).offsets.at("SSL_read") == kTextOffset + 0x40);
  }
  SUBCASE("section header entries too small") {
    elf.set_header(&Elf64_Ehdr::e_shentsize, Elf64_Half{sizeof(Elf64_Shdr) - 1});
    check_error(elf, "section header table entry size 63 is smaller than 64");
  }
  SUBCASE("no program headers") {
    elf.set_header(&Elf64_Ehdr::e_phnum, Elf64_Half{0});
    check_error(elf, "no program headers");
  }
  SUBCASE("program headers past the end") {
    elf.set_header(&Elf64_Ehdr::e_phoff, size);
    check_error(elf, "truncated program header table");
  }
  SUBCASE("extended program header count past the end") {
    elf.set_header(&Elf64_Ehdr::e_phnum, Elf64_Half{PN_XNUM});
    elf.set_section(kNull, &Elf64_Shdr::sh_info, Elf64_Word{0xffffffff});
    check_error(elf, "truncated program header table");
  }
  SUBCASE("program header entries too small") {
    elf.set_header(&Elf64_Ehdr::e_phentsize, Elf64_Half{1});
    check_error(elf, "program header table entry size 1 is smaller than 56");
  }
}

TEST_CASE("elf: rejects symbol tables with bad links or bounds") {
  TinyElf elf = tiny_with_write_and_read();
  const auto size = static_cast<Elf64_Off>(elf.bytes().size());
  SUBCASE("string table index out of range") {
    elf.set_section(kDynsym, &Elf64_Shdr::sh_link, Elf64_Word{kSectionCount});
    check_error(elf, "symbol table (section 2) links to string table section 6, out of range");
  }
  SUBCASE("string table index far out of range") {
    elf.set_section(kSymtab, &Elf64_Shdr::sh_link, Elf64_Word{0xffffffff});
    check_error(elf, "symbol table (section 4) links to string table section 4294967295");
  }
  SUBCASE("link to a section that is not a string table") {
    elf.set_section(kDynsym, &Elf64_Shdr::sh_link, Elf64_Word{kText});
    check_error(elf, "links to section 1, which is not a string table");
  }
  SUBCASE("symbols past the end") {
    elf.set_section(kDynsym, &Elf64_Shdr::sh_size, Elf64_Xword{size});
    check_error(elf, "symbol table (section 2) extends past the end of the file");
  }
  SUBCASE("symbol offset plus size overflows") {
    elf.set_section(kDynsym, &Elf64_Shdr::sh_offset, std::numeric_limits<Elf64_Off>::max());
    check_error(elf, "symbol table (section 2) extends past the end of the file");
  }
  SUBCASE("strings past the end") {
    elf.set_section(kDynstr, &Elf64_Shdr::sh_offset, size - 1);
    check_error(elf, "string table (section 3) extends past the end of the file");
  }
  SUBCASE("symbol entries too small") {
    elf.set_section(kSymtab, &Elf64_Shdr::sh_entsize, Elf64_Xword{8});
    check_error(elf, "symbol table (section 4) entry size 8 is smaller than 24");
  }
}

TEST_CASE("elf: names outside their string table never match") {
  TinyElf elf = tiny_with_write_and_read();
  const Elf64_Shdr dynstr = elf.section(kDynstr);
  SUBCASE("name offset past the end of the string table") {
    Elf64_Sym symbol;
    const uint64_t entry = elf.section(kDynsym).sh_offset + sizeof(Elf64_Sym);
    std::memcpy(&symbol, elf.bytes().data() + entry, sizeof(symbol));
    symbol.st_name = static_cast<Elf64_Word>(dynstr.sh_size + 100);
    std::memcpy(elf.bytes().data() + entry, &symbol, sizeof(symbol));
  }
  SUBCASE("name runs off the end of the string table") {
    // Drop the terminating NUL of the last name: "SSL_write" is no longer terminated.
    elf.set_section(kDynstr, &Elf64_Shdr::sh_size, dynstr.sh_size - 1);
  }
  const LookupResult result = elf.find({"SSL_write", "SSL_read"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.count("SSL_write") == 0);
  CHECK(result.offsets.at("SSL_read") == kTextOffset + 0x40);
}

TEST_CASE("elf: a segment whose file range is past the end maps nothing") {
  TinyElf elf = tiny_with_write_and_read();
  Elf64_Phdr text;
  std::memcpy(&text, elf.bytes().data() + sizeof(Elf64_Ehdr), sizeof(text));
  text.p_offset = elf.bytes().size() - 0x20;  // SSL_write (+0x10) fits, SSL_read (+0x40) does not
  std::memcpy(elf.bytes().data() + sizeof(Elf64_Ehdr), &text, sizeof(text));
  const LookupResult result = elf.find({"SSL_write", "SSL_read"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  CHECK(result.offsets.at("SSL_write") == text.p_offset + 0x10);
  CHECK(result.offsets.count("SSL_read") == 0);
}

TEST_CASE("elf: every truncation and random corruption is an error or an in-file offset") {
  const std::vector<uint8_t> good = tiny_with_write_and_read().bytes();
  const std::vector<std::string> names = {"SSL_write", "SSL_read"};
  const auto check_sane = [&](std::span<const uint8_t> image) {
    const LookupResult result = find_functions_in_image(image, names, "fuzz");
    if (!result.ok()) {
      CHECK(result.offsets.empty());
      return;
    }
    for (const auto& [name, offset] : result.offsets) CHECK(offset < image.size());
  };

  for (size_t length = 0; length <= good.size(); ++length)
    check_sane(std::span(good).first(length));

  std::mt19937_64 random(20240601);
  const std::array<uint64_t, 6> extremes = {
      0, 1, good.size(), good.size() - 1, 0x7fffffffffffffff, 0xffffffffffffffff};
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> image = good;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int edit = 0; edit < edits; ++edit) {
      const size_t at = random() % image.size();
      if (random() % 2 == 0) {
        image[at] = static_cast<uint8_t>(random());
      } else {
        // An extreme 1-, 2-, 4- or 8-byte field value, which is what breaks size arithmetic.
        const uint64_t value = extremes[random() % extremes.size()];
        const size_t width = std::min<size_t>(size_t{1} << (random() % 4), image.size() - at);
        std::memcpy(image.data() + at, &value, width);
      }
    }
    check_sane(image);
  }
}

// ---- real files ------------------------------------------------------------------------------

TEST_CASE("elf: libssl.so.3 exports the SSL entry points inside executable code") {
  const std::string path = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  const std::vector<std::string> names = {"SSL_write",   "SSL_read", "SSL_write_ex",
                                          "SSL_read_ex", "SSL_ctrl", "SSL_free"};
  const LookupResult result = find_functions(path, names);
  REQUIRE_MESSAGE(result.ok(), result.error);
  REQUIRE(result.offsets.size() == names.size());
  std::unordered_set<uint64_t> distinct;
  for (const std::string& name : names) {
    const uint64_t offset = result.offsets.at(name);
    CHECK_MESSAGE(in_executable_segment(path, offset), name << " at " << offset);
    distinct.insert(offset);
  }
  CHECK(distinct.size() == names.size());

  // Cut copies of the real file: an error, or offsets that lie in the part that is left.
  const std::vector<uint8_t> image = read_file(path);
  const LookupResult whole = find_functions_in_image(image, names, path);
  CHECK(whole.offsets == result.offsets);
  for (const size_t length : {size_t{64}, size_t{4096}, image.size() / 2, image.size() - 1}) {
    const LookupResult cut = find_functions_in_image(std::span(image).first(length), names, path);
    for (const auto& [name, offset] : cut.offsets) CHECK(offset < length);
  }
}

TEST_CASE("elf: the .gnu.hash lookup finds what a scan of .dynsym finds") {
  // The same real file twice: as it is (looked up through .gnu.hash), and with the hash
  // section's type cleared (scanned).
  const std::vector<std::string> names = {
      "SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex", "SSL_ctrl",          "SSL_free",
      "malloc",    "free",     "printf",       "no_such_fn",  "gnutls_record_send"};
  for (const std::string path : {"/usr/lib/x86_64-linux-gnu/libssl.so.3",
                                 "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/node"}) {
    if (!std::filesystem::exists(path)) continue;
    CAPTURE(path);
    std::vector<uint8_t> image = read_file(path);
    const LookupResult hashed = find_functions_in_image(image, names, path);
    REQUIRE_MESSAGE(hashed.ok(), hashed.error);
    Elf64_Ehdr header;
    std::memcpy(&header, image.data(), sizeof(header));
    bool cleared = false;
    for (size_t i = 0; i < header.e_shnum; ++i) {
      Elf64_Shdr section;
      const size_t at = header.e_shoff + i * header.e_shentsize;
      std::memcpy(&section, image.data() + at, sizeof(section));
      if (section.sh_type != SHT_GNU_HASH) continue;
      section.sh_type = SHT_NULL;
      std::memcpy(image.data() + at, &section, sizeof(section));
      cleared = true;
    }
    REQUIRE(cleared);
    const LookupResult scanned = find_functions_in_image(image, names, path);
    REQUIRE_MESSAGE(scanned.ok(), scanned.error);
    CHECK(!hashed.offsets.empty());
    CHECK(hashed.offsets == scanned.offsets);
    CHECK(hashed.sizes == scanned.sizes);
  }
}

TEST_CASE("elf: a .dynsym with a .gnu.hash but a broken string table is an error, as scanned") {
  const std::string path = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  const std::vector<uint8_t> real = read_file(path);
  Elf64_Ehdr header;
  std::memcpy(&header, real.data(), sizeof(header));
  // The header offset of .dynsym's string table.
  size_t strings_at = 0;
  for (size_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    const size_t at = header.e_shoff + i * header.e_shentsize;
    std::memcpy(&section, real.data() + at, sizeof(section));
    if (section.sh_type == SHT_DYNSYM)
      strings_at = header.e_shoff + section.sh_link * header.e_shentsize;
  }
  REQUIRE(strings_at != 0);
  const auto broken = [&](auto change) {
    std::vector<uint8_t> image = real;
    Elf64_Shdr strings;
    std::memcpy(&strings, image.data() + strings_at, sizeof(strings));
    change(strings);
    std::memcpy(image.data() + strings_at, &strings, sizeof(strings));
    return find_functions_in_image(image, {"SSL_write"}, path);
  };
  const LookupResult not_strings = broken([](Elf64_Shdr& s) { s.sh_type = SHT_PROGBITS; });
  CHECK_FALSE(not_strings.ok());
  CHECK(not_strings.error.find("is not a string table") != std::string::npos);
  const LookupResult outside = broken([&](Elf64_Shdr& s) { s.sh_offset = real.size(); });
  CHECK_FALSE(outside.ok());
  CHECK(outside.error.find("extends past the end of the file") != std::string::npos);
}

TEST_CASE("elf: finds a function of this test binary at the bytes that run") {
  const std::string name = "agentwall_elf_test_probe_target";
  const LookupResult result = find_functions("/proc/self/exe", {name});
  REQUIRE_MESSAGE(result.ok(), result.error);
  REQUIRE(result.offsets.count(name) == 1);
  const uint64_t offset = result.offsets.at(name);
  CHECK(in_executable_segment("/proc/self/exe", offset));

  // The text is not relocated, so the file holds exactly the bytes the CPU executes.
  constexpr size_t kCompared = 8;
  const std::vector<uint8_t> in_file = read_file("/proc/self/exe", offset, kCompared);
  const auto* in_memory = reinterpret_cast<const uint8_t*>(&agentwall_elf_test_probe_target);
  REQUIRE(in_file.size() == kCompared);
  CHECK(std::equal(in_file.begin(), in_file.end(), in_memory));
  CHECK(agentwall_elf_test_probe_target(1) == 10);
}

TEST_CASE("elf: /usr/bin/node exports SSL_write and SSL_read") {
  const std::string path = "/usr/bin/node";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " is absent (the /proc/self/exe test covers .symtab)");
    return;
  }
  // Debian's own nodejs links the shared libssl (its name is in .dynstr as a DT_NEEDED
  // entry): then SSL_write is an import, not a definition, and there is nothing to find.
  {
    std::ifstream in(path, std::ios::binary);
    std::string head(8 << 20, '\0');  // .dynstr sits near the start of the file
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.find(std::string("libssl.so.") + '3') != std::string::npos ||
        head.find("libssl.so.1.1") != std::string::npos) {
      MESSAGE("skipped: " << path << " links the shared libssl");
      return;
    }
  }
  const LookupResult result = find_functions(path, {"SSL_write", "SSL_read"});
  REQUIRE_MESSAGE(result.ok(), result.error);
  REQUIRE(result.offsets.size() == 2);
  for (const auto& found : result.offsets) {  // not a structured binding: clang 14 cannot
    CHECK_MESSAGE(in_executable_segment(path, found.second),  // capture one (CHECK_MESSAGE)
                  found.first << " at " << found.second);
  }
}

TEST_CASE("elf: file errors name the path") {
  SUBCASE("missing") {
    const std::string path = "/nonexistent/agentwall/libssl.so";
    const LookupResult result = find_functions(path, {"SSL_write"});
    CHECK(result.error == path + ": cannot open: " + std::strerror(ENOENT));
  }
  SUBCASE("directory") {
    const LookupResult result = find_functions("/usr/lib", {"SSL_write"});
    CHECK(result.error == "/usr/lib: not a regular file");
  }
  SUBCASE("empty file") {
    const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                       ("agentwall-elf-empty-" + std::to_string(::getpid()));
    std::ofstream(path).close();
    const LookupResult result = find_functions(path.string(), {"SSL_write"});
    std::filesystem::remove(path);
    CHECK(result.error == path.string() + ": empty file, not an ELF file");
  }
  SUBCASE("not ELF") {
    const LookupResult result = find_functions("/etc/passwd", {"SSL_write"});
    CHECK(result.error == "/etc/passwd: not an ELF file");
  }
}

#include "agent/elf/gopclntab.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "agent/elf/image.h"
#include "agent/elf/symbols.h"

namespace agentwall::elf {
namespace {

using namespace detail;

constexpr uint32_t kMagic116 = 0xfffffffa;  // Go 1.16, 1.17
constexpr uint32_t kMagic118 = 0xfffffff0;  // Go 1.18, 1.19
constexpr uint32_t kMagic120 = 0xfffffff1;  // Go 1.20 and later
constexpr uint32_t kMagic12 = 0xfffffffb;   // Go 1.2 to 1.15: not read

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

class Disassembler {
 public:
  Disassembler() { ok_ = cs_open(CS_ARCH_X86, CS_MODE_64, &handle_) == CS_ERR_OK; }
  ~Disassembler() {
    if (insn_) cs_free(insn_, 1);
    if (ok_) cs_close(&handle_);
  }
  Disassembler(const Disassembler&) = delete;
  Disassembler& operator=(const Disassembler&) = delete;
  cs_insn* insn() {
    if (ok_ && !insn_) insn_ = cs_malloc(handle_);
    return insn_;
  }
  csh handle() const { return handle_; }

 private:
  csh handle_ = 0;
  bool ok_ = false;
  cs_insn* insn_ = nullptr;
};

}  // namespace

std::string read_pclntab(std::span<const uint8_t> table, uint64_t text_start, std::string& version,
                         const std::function<void(std::string_view, uint64_t, uint64_t)>& each) {
  const std::optional<uint32_t> magic = read_at<uint32_t>(table, 0);
  if (!magic || table.size() < 8) return "truncated .gopclntab header";
  if (*magic == kMagic12) return "Go 1.2 to 1.15 function tables are not read";
  if (*magic != kMagic116 && *magic != kMagic118 && *magic != kMagic120)
    return "not a Go function table (magic " + hex(*magic) + ")";
  if (table[4] != 0 || table[5] != 0 || table[7] != 8)
    return "unsupported .gopclntab header (pointer size " + std::to_string(table[7]) + ")";
  const bool new_layout = *magic != kMagic116;
  version = *magic == kMagic116 ? "1.16" : *magic == kMagic118 ? "1.18" : "1.20";
  const auto word = [&](int i) { return read_at<uint64_t>(table, 8 + 8 * uint64_t(i)); };
  // Go 1.18: nfunc, nfiles, textStart, funcname, cu, filetab, pctab, functab.
  // Go 1.16: nfunc, nfiles, funcname, cu, filetab, pctab, functab.
  const std::optional<uint64_t> nfunc = word(0);
  const std::optional<uint64_t> names_off = word(new_layout ? 3 : 2);
  const std::optional<uint64_t> functab_off = word(new_layout ? 7 : 6);
  if (!nfunc || !names_off || !functab_off) return "truncated .gopclntab header";
  if (*names_off > table.size() || *functab_off > table.size())
    return ".gopclntab header points past its end";
  const Bytes names = table.subspan(*names_off);
  const Bytes functab = table.subspan(*functab_off);
  // Entries: (entry, funcoff) pairs of 4 bytes each from Go 1.18 on (entry from text_start),
  // of 8 bytes before (entry absolute); then the end of the last function.
  const uint64_t field = new_layout ? 4 : 8;
  if (*nfunc > functab.size() / (2 * field) || !in_bounds(functab, 0, (2 * *nfunc + 1) * field))
    return "truncated .gopclntab function table (" + std::to_string(*nfunc) + " functions)";
  const auto field_at = [&](uint64_t index) -> uint64_t {
    return new_layout ? *read_at<uint32_t>(functab, index * 4)
                      : *read_at<uint64_t>(functab, index * 8);
  };
  const auto address = [&](uint64_t value) { return new_layout ? text_start + value : value; };
  PageRelease pages(table);
  for (uint64_t i = 0; i < *nfunc; ++i) {
    pages.read(4 * field);
    const uint64_t entry = address(field_at(2 * i));
    const uint64_t func_off = field_at(2 * i + 1);
    const uint64_t end = address(field_at(2 * i + 2));
    // _func: entry (4 bytes from Go 1.18 on, 8 before), then nameOff (int32).
    const std::optional<int32_t> name_off = read_at<int32_t>(functab, func_off + field);
    if (!name_off || *name_off < 0 || end < entry) continue;
    const std::optional<std::string_view> name = string_at(names, uint64_t(*name_off));
    if (!name) continue;
    pages.read(name->size());
    each(*name, entry, end);
  }
  return "";
}

std::string read_buildinfo_version(
    std::span<const uint8_t> image, std::span<const uint8_t> info,
    const std::function<std::optional<uint64_t>(uint64_t)>& to_offset) {
  // "\xff Go buildinf:", pointer size, flags (2: strings inline), then at 16 either two
  // pointers (to the version's and the module info's string headers) or, inline, the version
  // as a varint length and its bytes at 32.
  static constexpr char kMagic[] = "\xff Go buildinf:";
  if (info.size() < 32 || std::memcmp(info.data(), kMagic, 14) != 0) return "";
  const uint8_t ptr_size = info[14];
  const uint8_t flags = info[15];
  if (flags & 2) {
    uint64_t len = 0;
    size_t at = 32;
    for (int shift = 0; at < info.size() && shift < 63; shift += 7) {
      const uint8_t b = info[at++];
      len |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (len > 64 || !in_bounds(info, at, len)) return "";
    return std::string(reinterpret_cast<const char*>(info.data() + at), len);
  }
  if (ptr_size != 8 || (flags & 1)) return "";  // 64-bit little-endian only
  const std::optional<uint64_t> header_addr = read_at<uint64_t>(info, 16);
  if (!header_addr) return "";
  const std::optional<uint64_t> header = to_offset(*header_addr);
  if (!header) return "";
  const std::optional<uint64_t> str_addr = read_at<uint64_t>(image, *header);
  const std::optional<uint64_t> len = read_at<uint64_t>(image, *header + 8);
  if (!str_addr || !len || *len > 64) return "";
  const std::optional<uint64_t> str = to_offset(*str_addr);
  if (!str || !in_bounds(image, *str, *len)) return "";
  return std::string(reinterpret_cast<const char*>(image.data() + *str), *len);
}

namespace {

// True when `version` ("go1.17", "go1.19.8", "go1.21rc2") is Go 1.17 or later: the register ABI.
bool register_abi(std::string_view version) {
  if (!version.starts_with("go1.")) return !version.empty();  // "devel ...": a recent tree
  int minor = 0;
  for (size_t i = 4; i < version.size() && version[i] >= '0' && version[i] <= '9'; ++i)
    minor = minor * 10 + (version[i] - '0');
  return minor >= 17;
}

}  // namespace

std::string find_returns_x86_64(std::span<const uint8_t> code, uint64_t address,
                                std::vector<uint64_t>& returns) {
  Disassembler d;
  cs_insn* insn = d.insn();
  if (!insn) return "cannot start the x86-64 disassembler (capstone)";
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t at = address;
  while (left > 0) {
    if (!cs_disasm_iter(d.handle(), &p, &left, &at, insn)) {
      // Alignment padding after the last instruction need not decode.
      if (std::all_of(p, p + left, [](uint8_t b) { return b == 0xcc || b == 0x00; })) break;
      return "cannot decode the instruction at " + hex(at);
    }
    if (insn->id == X86_INS_RET) returns.push_back(insn->address);
  }
  return "";
}

GoLookup find_go_functions_in_image(std::span<const uint8_t> image,
                                    const std::vector<std::string>& names,
                                    const std::string& display_name, GoSource source) {
  GoLookup r;
  const auto fail = [&](const std::string& what) {
    r.functions.clear();
    r.error = display_name + ": " + what;
    return r;
  };
  Layout layout;
  if (std::string error = read_layout(image, layout); !error.empty()) return fail(error);
  std::optional<size_t> pcln = find_section(image, layout, ".gopclntab");
  if (!pcln) pcln = find_section(image, layout, ".data.rel.ro.gopclntab");
  const std::optional<size_t> buildinfo = find_section(image, layout, ".go.buildinfo");
  if (!pcln && !buildinfo) return r;
  r.is_go = true;
  if (layout.header.e_machine != EM_X86_64)
    return fail("a Go executable for machine " + std::to_string(layout.header.e_machine) +
                ": only x86-64 is supported");
  // The register ABI (arguments in RAX, RBX, RCX; the goroutine in R14) came with Go 1.17.
  if (buildinfo) {
    r.go_version = read_buildinfo_version(
        image, section_bytes(image, layout.sections[*buildinfo]),
        [&](uint64_t address) { return file_offset(layout.loads, address, image.size()); });
  }
  const std::optional<uint32_t> magic =
      pcln ? read_at<uint32_t>(section_bytes(image, layout.sections[*pcln]), 0) : std::nullopt;
  if (!r.go_version.empty() && !register_abi(r.go_version))
    return fail(r.go_version + " passes arguments on the stack (Go 1.17 and later only)");
  if (r.go_version.empty() && (!magic || *magic == kMagic116))
    return fail("a Go executable of unknown version (Go 1.17 and later only)");

  if (source == GoSource::kSymbolsFirst) {
    const LookupResult syms = find_functions_in_image(image, names, display_name);
    if (!syms.ok()) return fail(syms.error.substr(display_name.size() + 2));
    for (const auto& [name, offset] : syms.offsets) {
      const auto size = syms.sizes.find(name);
      if (size != syms.sizes.end() && size->second > 0)
        r.functions[name] = {offset, size->second, {}, false};
    }
  }
  std::unordered_set<std::string_view> missing;
  for (const std::string& n : names)
    if (!r.functions.count(n)) missing.insert(n);
  if (!missing.empty()) {
    if (!pcln) return fail("no .gopclntab section");
    const std::optional<size_t> text = find_section(image, layout, ".text");
    if (!text) return fail("no .text section");
    const Elf64_Shdr& t = layout.sections[*text];
    const Bytes table = section_bytes(image, layout.sections[*pcln]);
    if (table.empty()) return fail(".gopclntab extends past the end of the file");
    // Go 1.18 and later give the text start in the header; it may be left for a dynamic
    // relocation to fill (position-independent builds): then .text's address serves.
    uint64_t text_start = t.sh_addr;
    if (const auto header = read_at<uint64_t>(table, 24);
        header && *header >= t.sh_addr && *header - t.sh_addr < t.sh_size)
      text_start = *header;
    std::string error = read_pclntab(
        table, text_start, r.pclntab_version,
        [&](std::string_view name, uint64_t entry, uint64_t end) {
          const auto it = missing.find(name);
          if (it == missing.end()) return;
          const std::optional<uint64_t> offset = file_offset(layout.loads, entry, image.size());
          if (!offset) return;
          r.functions[std::string(name)] = {*offset, end - entry, {}, true};
          missing.erase(it);
        });
    if (!error.empty()) return fail(error);
  }
  for (auto it = r.functions.begin(); it != r.functions.end();) {
    GoFunction& f = it->second;
    if (!in_bounds(image, f.offset, f.size)) return fail(it->first + " extends past the end");
    const std::string error =
        find_returns_x86_64(image.subspan(f.offset, f.size), f.offset, f.returns);
    if (!error.empty()) return fail(it->first + ": " + error);
    // A function that never returns (only tail calls) cannot be probed at its returns.
    if (f.returns.empty()) {
      r.without_returns.push_back(it->first);
      it = r.functions.erase(it);
    } else {
      ++it;
    }
  }
  return r;
}

GoLookup find_go_functions(const std::string& path, const std::vector<std::string>& names,
                           GoSource source) {
  const MappedFile file(path);
  if (!file.error().empty()) {
    GoLookup r;
    r.error = path + ": " + file.error();
    return r;
  }
  return find_go_functions_in_image(file.bytes(), names, path, source);
}

}  // namespace agentwall::elf

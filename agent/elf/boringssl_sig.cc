#include "agent/elf/boringssl_sig.h"

#include <capstone/capstone.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>

#include "agent/elf/image.h"

namespace agentwall::elf {
namespace {

using namespace detail;

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// capstone with operand details, one instruction buffer.
class Decoder {
 public:
  Decoder() {
    ok_ = cs_open(CS_ARCH_X86, CS_MODE_64, &handle_) == CS_ERR_OK &&
          cs_option(handle_, CS_OPT_DETAIL, CS_OPT_ON) == CS_ERR_OK;
    if (ok_) insn_ = cs_malloc(handle_);
  }
  ~Decoder() {
    if (insn_) cs_free(insn_, 1);
    if (ok_) cs_close(&handle_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  bool ok() const { return ok_ && insn_; }
  // Decodes the instruction at `at` (inside `code`, which starts at `base`); null when it
  // does not decode.
  const cs_insn* decode(std::span<const uint8_t> code, uint64_t base, uint64_t at) {
    if (at < base || at - base >= code.size()) return nullptr;
    const uint8_t* p = code.data() + (at - base);
    size_t left = code.size() - (at - base);
    uint64_t a = at;
    return cs_disasm_iter(handle_, &p, &left, &a, insn_) ? insn_ : nullptr;
  }

 private:
  csh handle_ = 0;
  bool ok_ = false;
  cs_insn* insn_ = nullptr;
};

// The general-purpose registers that carry the first five integer arguments, by their
// number in the x86-64 encoding (rdi 7, rsi 6, rdx 2, rcx 1, r8 8); -1 for anything else.
int register_number(unsigned reg) {
  switch (reg) {
    case X86_REG_RDI:
    case X86_REG_EDI:
      return 7;
    case X86_REG_RSI:
    case X86_REG_ESI:
      return 6;
    case X86_REG_RDX:
    case X86_REG_EDX:
      return 2;
    case X86_REG_RCX:
    case X86_REG_ECX:
      return 1;
    case X86_REG_R8:
    case X86_REG_R8D:
      return 8;
    default:
      return -1;
  }
}

// System V argument order.
constexpr std::array<int, 5> kArgRegs = {7, 6, 2, 1, 8};

int argument_index(int reg) {
  for (size_t i = 0; i < kArgRegs.size(); ++i)
    if (kArgRegs[i] == reg) return static_cast<int>(i);
  return -1;
}

bool ends_run(const cs_insn* insn) {
  for (uint8_t i = 0; i < insn->detail->groups_count; ++i) {
    const uint8_t g = insn->detail->groups[i];
    if (g == CS_GRP_JUMP || g == CS_GRP_CALL || g == CS_GRP_RET || g == CS_GRP_INT) return true;
  }
  return false;
}

// Applies one instruction to the known register constants `regs` (index: register number,
// value: the constant, or nothing). Returns false for an instruction that is not a plain
// register load (used to bound the run looked at before the file name's load).
bool apply(const cs_insn* insn, std::array<std::optional<uint64_t>, 16>& regs) {
  const cs_x86& x = insn->detail->x86;
  if (insn->id == X86_INS_MOV && x.op_count == 2 && x.operands[0].type == X86_OP_REG) {
    const int reg = register_number(x.operands[0].reg);
    if (x.operands[1].type == X86_OP_IMM) {
      if (reg >= 0) regs[reg] = static_cast<uint64_t>(x.operands[1].imm) & 0xffffffffu;
      return true;
    }
    if (reg >= 0) regs[reg].reset();
    return x.operands[1].type == X86_OP_REG;
  }
  if (insn->id == X86_INS_XOR && x.op_count == 2 && x.operands[0].type == X86_OP_REG &&
      x.operands[1].type == X86_OP_REG && x.operands[0].reg == x.operands[1].reg) {
    if (const int reg = register_number(x.operands[0].reg); reg >= 0) regs[reg] = 0;
    return true;
  }
  if (insn->id == X86_INS_LEA && x.op_count == 2 && x.operands[0].type == X86_OP_REG) {
    const int reg = register_number(x.operands[0].reg);
    if (reg < 0) return true;
    const x86_op_mem& m = x.operands[1].mem;
    if (x.operands[1].type == X86_OP_MEM && m.base == X86_REG_RIP && m.index == X86_REG_INVALID)
      regs[reg] = insn->address + insn->size + static_cast<uint64_t>(m.disp);  // an address
    else
      regs[reg].reset();
    return true;
  }
  // Anything else may write an argument register: forget what it overwrites.
  if (x.op_count >= 1 && x.operands[0].type == X86_OP_REG)
    if (const int reg = register_number(x.operands[0].reg); reg >= 0) regs[reg].reset();
  return false;
}

using Registers = std::array<std::optional<uint64_t>, 16>;

// The constants (immediates, RIP-relative addresses) in the argument registers around the
// instruction at `at`: the straight run of register loads before it, then it and what
// follows up to a call or jump.
Registers registers_around(Decoder& d, std::span<const uint8_t> code, uint64_t base, uint64_t at) {
  Registers regs{};
  // Backwards: the longest run of plain register loads (up to 32 bytes) that ends exactly at
  // the file name's load. x86 cannot be decoded backwards, so each start is tried.
  const uint64_t lowest = at - std::min<uint64_t>(32, at - base);
  for (uint64_t start = lowest; start < at; ++start) {
    Registers trial{};
    uint64_t pc = start;
    bool plain = true;
    while (pc < at && plain) {
      const cs_insn* insn = d.decode(code, base, pc);
      if (!insn) break;
      plain = apply(insn, trial);
      pc += insn->size;
    }
    if (pc == at && plain) {
      regs = trial;
      break;
    }
  }
  // Forwards, from the load itself to the call (or the jump to a shared call).
  uint64_t pc = at;
  for (int n = 0; n < 12; ++n) {
    const cs_insn* insn = d.decode(code, base, pc);
    if (!insn || ends_run(insn)) break;
    apply(insn, regs);
    pc += insn->size;
  }
  return regs;
}

// The reason passed with the file name loaded into `file_reg` by the instruction at `at`,
// when the run around it also loads ERR_LIB_SSL as the first argument.
std::optional<uint32_t> reason_at(Decoder& d, std::span<const uint8_t> code, uint64_t base,
                                  uint64_t at, int file_reg, uint32_t library) {
  const int file_arg = argument_index(file_reg);
  if (file_arg < 2) return std::nullopt;  // lib, [unused,] reason come before the file
  const Registers regs = registers_around(d, code, base, at);
  const std::optional<uint64_t> lib = regs[kArgRegs[0]];
  const std::optional<uint64_t> reason = regs[kArgRegs[static_cast<size_t>(file_arg - 1)]];
  if (!lib || *lib != library || !reason || *reason > 0xffff) return std::nullopt;
  return static_cast<uint32_t>(*reason);
}

}  // namespace

uint64_t function_start(std::span<const uint8_t> code, uint64_t address, uint64_t at) {
  if (at < address || at - address >= code.size()) return 0;
  const uint64_t i = at - address;
  const uint64_t lowest = i > 65536 ? i - 65536 : 0;
  for (uint64_t k = i; k > lowest; --k) {
    if (code[k - 1] == 0xcc && code[k] != 0xcc && (address + k) % 16 == 0) return address + k;
  }
  return 0;
}

namespace {

// The instructions in `code` that load `target` into a register: `mov r32, imm32` (b8+r;
// non-PIE) or `lea r64, [rip + disp32]` (48/4c 8d, mod 00, r/m 101; PIE).
std::set<uint64_t> loads_of(std::span<const uint8_t> code, uint64_t address, uint64_t target) {
  std::set<uint64_t> loads;
  if (code.size() < 8) return loads;
  PageRelease pages(code);
  if (target <= 0xffffffffu) {
    uint8_t needle[4];
    const uint32_t a32 = static_cast<uint32_t>(target);
    std::memcpy(needle, &a32, 4);
    const std::string_view imm(reinterpret_cast<const char*>(needle), 4);
    for (const uint8_t* p = code.data() + 1; (p = find_bytes(code, p, imm, pages)); ++p)
      if (p[-1] >= 0xb8 && p[-1] <= 0xbf) loads.insert(address + (p - code.data()) - 1);
  }
  for (uint64_t i = 0; i + 7 <= code.size(); ++i) {
    if ((i & 4095) == 0) pages.read(4096);
    if (code[i + 1] != 0x8d || (code[i] & 0xfb) != 0x48 || (code[i + 2] & 0xc7) != 0x05) continue;
    int32_t disp;
    std::memcpy(&disp, &code[i + 3], 4);
    if (address + i + 7 + static_cast<uint64_t>(static_cast<int64_t>(disp)) == target)
      loads.insert(address + i);
  }
  return loads;
}

}  // namespace

std::vector<ErrorSite> find_error_sites(std::span<const uint8_t> code, uint64_t address,
                                        uint64_t file_address, uint32_t library) {
  std::vector<ErrorSite> sites;
  Decoder d;
  if (!d.ok() || code.size() < 8) return sites;
  const std::set<uint64_t> loads = loads_of(code, address, file_address);
  for (const uint64_t at : loads) {
    const cs_insn* insn = d.decode(code, address, at);
    if (!insn || insn->detail->x86.op_count < 1 || insn->detail->x86.operands[0].type != X86_OP_REG)
      continue;
    const int file_reg = register_number(insn->detail->x86.operands[0].reg);
    if (file_reg < 0) continue;
    if (const std::optional<uint32_t> reason = reason_at(d, code, address, at, file_reg, library))
      sites.push_back({at, *reason, function_start(code, address, at)});
  }
  return sites;
}

std::vector<Call> direct_calls(std::span<const uint8_t> code, uint64_t address,
                               const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::vector<Call> out;
  if (ranges.empty() || code.size() < 5) return out;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& [a, b] : ranges) lo = std::min(lo, a), hi = std::max(hi, b);
  const uint8_t* p = code.data();
  const uint8_t* const end = code.data() + code.size() - 4;
  PageRelease pages(code);
  while (p < end) {
    const uint8_t* const from = p;
    p = static_cast<const uint8_t*>(memchr(p, 0xe8, static_cast<size_t>(end - p)));
    pages.read(static_cast<uint64_t>((p ? p : end) - from));
    if (!p) break;
    int32_t rel;
    std::memcpy(&rel, p + 1, 4);
    const uint64_t at = address + static_cast<uint64_t>(p - code.data());
    const uint64_t target = at + 5 + static_cast<uint64_t>(static_cast<int64_t>(rel));
    if (target >= lo && target <= hi) {
      for (const auto& [a, b] : ranges)
        if (target >= a && target <= b) {
          out.push_back({at, target});
          break;
        }
    }
    ++p;
  }
  return out;
}

SslFunctions match_ssl_functions(std::span<const uint8_t> code, uint64_t address,
                                 uint64_t file_address, std::span<const Call> extra_calls) {
  SslFunctions out;
  const std::vector<ErrorSite> sites = find_error_sites(code, address, file_address);
  if (sites.empty()) {
    out.why = "no ERR_put_error(ERR_LIB_SSL, ...) naming ssl_lib.cc";
    return out;
  }
  // Direct calls into the stretch before each report, back to the padding: their targets are
  // function entries, also where a function ends exactly on a 16-byte boundary and the next
  // one starts with no padding.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const ErrorSite& s : sites)
    ranges.emplace_back(s.function ? s.function : s.address - std::min<uint64_t>(s.address, 65536),
                        s.address);
  std::vector<Call> calls = direct_calls(code, address, ranges);
  calls.insert(calls.end(), extra_calls.begin(), extra_calls.end());
  std::vector<uint64_t> entries;
  for (const Call& c : calls) entries.push_back(c.to);
  const auto add_entries_in = [&](uint64_t lo, uint64_t hi) {
    for (const Call& c : direct_calls(code, address, {{lo, hi}})) {
      calls.push_back(c);
      entries.push_back(c.to);
    }
  };
  const auto sort_entries = [&] {
    std::sort(entries.begin(), entries.end());
    entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  };
  sort_entries();
  // The function holding `at`: the later of the padding boundary and the last entry at or
  // before it.
  const auto function_of = [&](uint64_t at) -> uint64_t {
    uint64_t start = function_start(code, address, at);
    const auto it = std::upper_bound(entries.begin(), entries.end(), at);
    if (it != entries.begin() && *std::prev(it) > start) start = *std::prev(it);
    return start;
  };
  const auto is_entry = [&](uint64_t a) {
    return std::binary_search(entries.begin(), entries.end(), a);
  };
  struct Function {
    std::set<uint32_t> reasons;
  };
  std::map<uint64_t, Function> functions;
  for (const ErrorSite& s : sites)
    if (const uint64_t f = function_of(s.address)) functions[f].reasons.insert(s.reason);
  const auto has = [](const Function& f, uint32_t r) { return f.reasons.count(r) > 0; };
  // SSL_set_tlsext_host_name: the one function raising SSL3_EXT_INVALID_SERVERNAME, with at
  // most a malloc failure besides; optional, so looked for before SSL_write can fail.
  const auto host_name = [&]() -> uint64_t {
    std::vector<uint64_t> raising;
    for (const auto& [start, f] : functions)
      if (has(f, kInvalidServerName)) raising.push_back(start);
    if (raising.size() != 1) {
      out.host_name_why =
          std::to_string(raising.size()) + " functions raise SSL3_EXT_INVALID_SERVERNAME";
      return 0;
    }
    const uint64_t start = raising[0];
    const std::set<uint32_t>& reasons = functions[start].reasons;
    if (!std::all_of(reasons.begin(), reasons.end(),
                     [](uint32_t r) { return r == kInvalidServerName || r == kMallocFailure; })) {
      out.host_name_why = "the function raising SSL3_EXT_INVALID_SERVERNAME raises others";
      return 0;
    }
    if (!is_entry(start)) {
      out.host_name_why = "SSL_set_tlsext_host_name is not entered by a direct call (inlined?)";
      return 0;
    }
    // One reason is a weaker signature than SSL_write's three: the function must also be
    // bounded by int3 padding (clang/LLD, as Bun is built). Without it the last call target
    // before the report may be an earlier function that raises nothing (this one called
    // through pointers only), and nop padding between functions cannot be told from the
    // alignment of jump targets inside one. A wrong probe would misname the host the gate
    // checks; a missing one only leaves the connection without SNI.
    for (const ErrorSite& s : sites) {
      if (s.reason == kInvalidServerName && function_start(code, address, s.address) != start) {
        out.host_name_why = "SSL_set_tlsext_host_name is not bounded by int3 padding";
        return 0;
      }
    }
    return start;
  };
  out.host_name = host_name();
  std::vector<uint64_t> writes, read_impls;
  for (const auto& [start, f] : functions) {
    if (has(f, kUninitialized) && has(f, kHandshakeFailure) && has(f, kBadLength))
      writes.push_back(start);
    else if (has(f, kUninitialized) && has(f, kHandshakeFailure))
      read_impls.push_back(start);
  }
  const std::string counts = " (" + std::to_string(sites.size()) + " error reports in " +
                             std::to_string(functions.size()) + " functions)";
  if (writes.size() != 1) {
    out.why = std::to_string(writes.size()) + " functions raise SSL_write's errors" + counts;
    return out;
  }
  if (read_impls.size() != 1) {
    out.why =
        std::to_string(read_impls.size()) + " functions raise ssl_read_impl's errors" + counts;
    return out;
  }
  const uint64_t write = writes[0];
  const uint64_t read_impl = read_impls[0];
  if (!is_entry(write)) {
    out.why = "SSL_write is not entered by a direct call (inlined?)";
    return out;
  }
  // SSL_read: calls ssl_read_impl; raises nothing itself but SSL_peek's QUIC check.
  std::vector<uint64_t> callers;
  for (const Call& c : calls)
    if (c.to == read_impl) callers.push_back(c.from);
  for (const uint64_t from : callers) {
    const uint64_t pad = function_start(code, address, from);
    if (pad && from - pad > 0) add_entries_in(pad, from);
  }
  sort_entries();
  std::set<uint64_t> readers;
  for (const uint64_t from : callers) {
    const uint64_t start = function_of(from);
    if (start == 0 || start == write || start == read_impl) continue;
    const auto it = functions.find(start);
    const bool only_quic_check =
        it == functions.end() ||
        std::all_of(it->second.reasons.begin(), it->second.reasons.end(),
                    [](uint32_t r) { return r == kShouldNotHaveBeenCalled; });
    if (only_quic_check) readers.insert(start);
  }
  if (readers.size() != 1) {
    out.why =
        std::to_string(readers.size()) + " callers of ssl_read_impl look like SSL_read" + counts;
    return out;
  }
  const uint64_t read = *readers.begin();
  if (!is_entry(read)) {
    out.why = "SSL_read is not entered by a direct call (inlined?)";
    return out;
  }
  out.write = write;
  out.read = read;
  return out;
}

namespace {

// True when `at` (16-byte aligned) follows function padding: int3, or one of the nop forms
// compilers fill with (90, 66 90, 0f 1f /0 with its displacements, 66 2e 0f 1f 84 ...).
bool after_padding(std::span<const uint8_t> code, uint64_t i) {
  if (i == 0 || i > code.size()) return false;
  const uint8_t last = code[i - 1];
  if (last == 0xcc || last == 0x90) return true;
  static constexpr std::array<std::string_view, 7> kNops = {
      std::string_view("\x0f\x1f\x00", 3),
      std::string_view("\x0f\x1f\x40\x00", 4),
      std::string_view("\x0f\x1f\x44\x00\x00", 5),
      std::string_view("\x0f\x1f\x80\x00\x00\x00\x00", 7),
      std::string_view("\x0f\x1f\x84\x00\x00\x00\x00\x00", 8),
      std::string_view("\x2e\x0f\x1f\x84\x00\x00\x00\x00\x00", 9),
      std::string_view("\x66\x0f\x1f\x44\x00\x00", 6)};
  for (const std::string_view nop : kNops) {
    if (i < nop.size()) continue;
    if (std::memcmp(code.data() + i - nop.size(), nop.data(), nop.size()) == 0) return true;
  }
  return false;
}

}  // namespace

uint64_t match_openssl_function(std::span<const uint8_t> code, uint64_t address,
                                uint64_t file_address, uint64_t name_address, std::string& why) {
  Decoder d;
  if (!d.ok()) {
    why = "cannot start the x86-64 disassembler (capstone)";
    return 0;
  }
  std::vector<uint64_t> sites;
  for (const uint64_t at : loads_of(code, address, name_address)) {
    const cs_insn* insn = d.decode(code, address, at);
    if (!insn || insn->detail->x86.op_count < 1 || insn->detail->x86.operands[0].type != X86_OP_REG)
      continue;
    if (register_number(insn->detail->x86.operands[0].reg) != kArgRegs[2]) continue;  // func
    const Registers regs = registers_around(d, code, address, at);
    if (regs[kArgRegs[0]] == file_address) sites.push_back(at);  // ERR_set_debug(file, ., func)
  }
  if (sites.size() != 1) {
    why = std::to_string(sites.size()) + " ERR_set_debug calls name the function";
    return 0;
  }
  const uint64_t site = sites[0];
  const uint64_t lo = site - std::min<uint64_t>(site - address, 4096);
  uint64_t entry = 0;
  for (const Call& c : direct_calls(code, address, {{lo, site}})) entry = std::max(entry, c.to);
  if (!entry) {
    why = "no direct call enters the function (inlined, or called through a pointer only)";
    return 0;
  }
  // No other function may start between that entry and the report: else the entry found is
  // a function before, and the one wanted is not called directly.
  for (uint64_t a = (entry + 16) & ~uint64_t{15}; a <= site; a += 16) {
    if (after_padding(code, a - address)) {
      why = "no direct call enters the function (the last call target before it is another)";
      return 0;
    }
  }
  return entry;
}

namespace {

// The virtual address of the first NUL-terminated string in an allocated, non-executable
// section that ends with `suffix` (NUL included in the match) and, when `whole`, is nothing
// but `suffix`; the whole string in `text`.
std::optional<uint64_t> find_string(Bytes image, const Layout& layout, std::string_view suffix,
                                    bool whole, std::string* text = nullptr) {
  for (const Elf64_Shdr& s : layout.sections) {
    if (!(s.sh_flags & SHF_ALLOC) || (s.sh_flags & SHF_EXECINSTR) || s.sh_type != SHT_PROGBITS)
      continue;
    const Bytes bytes = section_bytes(image, s);
    const std::string_view with_nul(suffix.data(), suffix.size() + 1);  // suffix is a literal
    PageRelease pages(bytes);
    for (const uint8_t* p = bytes.data();
         const uint8_t* h = find_bytes(bytes, p, with_nul, pages);) {
      p = h + 1;
      const uint8_t* start = h;
      while (start > bytes.data() && start[-1] != 0 && h - start < 256) --start;
      if (whole && start != h) continue;
      if (start > bytes.data() && start[-1] != 0) continue;  // longer than 256: not a name
      if (text)
        *text = std::string(reinterpret_cast<const char*>(start),
                            static_cast<size_t>(h - start) + suffix.size());
      return s.sh_addr + static_cast<uint64_t>(start - bytes.data());
    }
  }
  return std::nullopt;
}

}  // namespace

SslSignatureLookup find_ssl_by_signature_in_image(std::span<const uint8_t> image,
                                                  const std::string& display_name) {
  SslSignatureLookup r;
  Layout layout;
  if (std::string error = read_layout(image, layout); !error.empty()) {
    r.error = display_name + ": " + error;
    return r;
  }
  // The file name: "<build dir>/vendor/boringssl/ssl/ssl_lib.cc" (BoringSSL) or
  // "<...>ssl/ssl_lib.c" (OpenSSL).
  std::string file_name;
  std::optional<uint64_t> file_address =
      find_string(image, layout, "/ssl/ssl_lib.cc", false, &file_name);
  r.boringssl = file_address && file_name.find("boringssl") != std::string::npos;
  if (!r.boringssl) {
    file_address = find_string(image, layout, "ssl/ssl_lib.c", false, &file_name);
    r.openssl = file_address.has_value();
  }
  if (!r.boringssl && !r.openssl) {
    r.detail = "no BoringSSL or OpenSSL ssl_lib.c(c)";
    return r;
  }
  const char* const flavour = r.boringssl ? "BoringSSL" : "OpenSSL";
  if (layout.header.e_machine != EM_X86_64) {
    r.detail = std::string(flavour) + " for machine " + std::to_string(layout.header.e_machine) +
               ": signatures are read on x86-64 only";
    return r;
  }
  std::optional<uint64_t> write_name, read_name;
  if (r.openssl) {
    write_name = find_string(image, layout, "SSL_write", true);
    read_name = find_string(image, layout, "SSL_read", true);
    if (!write_name || !read_name) {
      r.detail = "OpenSSL without the names SSL_write/SSL_read in its error reports";
      return r;
    }
  }
  std::vector<std::string> why;
  for (const Elf64_Shdr& s : layout.sections) {
    if (!(s.sh_flags & SHF_EXECINSTR) || s.sh_type != SHT_PROGBITS || s.sh_size < 4096) continue;
    const Bytes code = section_bytes(image, s);
    if (code.empty()) continue;
    SslFunctions f;
    if (r.boringssl) {
      f = match_ssl_functions(code, s.sh_addr, *file_address);
    } else {
      std::string w_why, r_why;
      f.write = match_openssl_function(code, s.sh_addr, *file_address, *write_name, w_why);
      f.read = match_openssl_function(code, s.sh_addr, *file_address, *read_name, r_why);
      if (!f.write)
        f.why = "SSL_write: " + w_why;
      else if (!f.read)
        f.why = "SSL_read: " + r_why;
    }
    if (!f.write || !f.read) {
      if (!f.why.empty()) why.push_back(f.why);
      continue;
    }
    const auto w = file_offset(layout.loads, f.write, image.size());
    const auto rd = file_offset(layout.loads, f.read, image.size());
    if (!w || !rd) {
      why.push_back("located functions lie outside the file's segments");
      continue;
    }
    r.write_address = f.write;
    r.read_address = f.read;
    r.write_offset = *w;
    r.read_offset = *rd;
    r.detail = "SSL_write at " + hex(f.write) + ", SSL_read at " + hex(f.read);
    if (!r.boringssl) return r;
    const auto h = file_offset(layout.loads, f.host_name, image.size());
    if (f.host_name && h) {
      r.host_name_address = f.host_name;
      r.host_name_offset = *h;
      r.detail += ", SSL_set_tlsext_host_name at " + hex(f.host_name);
    } else {
      r.detail += "; SSL_set_tlsext_host_name not located (no SNI): " +
                  (f.host_name ? "outside the file's segments" : f.host_name_why);
    }
    return r;
  }
  r.detail = why.empty() ? "no executable section" : why.front();
  return r;
}

AeadFunctions match_aead_functions(std::span<const uint8_t> code, uint64_t address,
                                   uint64_t file_address) {
  AeadFunctions out;
  const std::vector<ErrorSite> sites = find_error_sites(code, address, file_address, kErrLibCipher);
  if (sites.empty()) {
    out.why = "no ERR_put_error(ERR_LIB_CIPHER, ...) naming cipher/aead.c";
    return out;
  }
  std::map<uint64_t, std::set<uint32_t>> functions;
  for (const ErrorSite& s : sites) {
    // Bounds from int3 padding only: a wrong entry would read a wrong function's arguments.
    if (!s.function) {
      out.why = "an error report of aead.c outside an int3-padded function";
      return out;
    }
    functions[s.function].insert(s.reason);
  }
  std::vector<uint64_t> seals, opens, scatters;
  for (const auto& [start, reasons] : functions) {
    const bool too_large = reasons.count(kCipherTooLarge) > 0;
    const bool too_small = reasons.count(kCipherBufferTooSmall) > 0;
    if (too_large && too_small)
      seals.push_back(start);
    else if (!too_large && too_small && reasons.count(kCipherBadDecrypt))
      opens.push_back(start);
    else if (!too_small && reasons.count(kCipherInvalidOperation) &&
             reasons.count(kCipherOutputAliasesInput))
      scatters.push_back(start);
  }
  const std::string counts = " (" + std::to_string(sites.size()) + " error reports in " +
                             std::to_string(functions.size()) + " functions)";
  if (seals.size() != 1) {
    out.why = std::to_string(seals.size()) + " functions raise EVP_AEAD_CTX_seal's errors" + counts;
    return out;
  }
  if (opens.size() != 1) {
    out.why = std::to_string(opens.size()) + " functions raise EVP_AEAD_CTX_open's errors" + counts;
    return out;
  }
  out.seal = seals[0];
  out.open = opens[0];
  if (scatters.size() == 1) out.seal_scatter = scatters[0];
  return out;
}

AeadSignatureLookup find_aead_by_signature_in_image(std::span<const uint8_t> image,
                                                    const std::string& display_name) {
  AeadSignatureLookup r;
  Layout layout;
  if (std::string error = read_layout(image, layout); !error.empty()) {
    r.error = display_name + ": " + error;
    return r;
  }
  const std::optional<uint64_t> file_address =
      find_string(image, layout, "/crypto/fipsmodule/cipher/aead.c", false);
  if (!file_address) {
    r.detail = "no aws-lc cipher/aead.c";
    return r;
  }
  // rustls's aws-lc-rs provider: its source paths sit in panic locations (not NUL-ended).
  bool provider = false;
  for (const Elf64_Shdr& s : layout.sections) {
    if (!(s.sh_flags & SHF_ALLOC) || (s.sh_flags & SHF_EXECINSTR) || s.sh_type != SHT_PROGBITS)
      continue;
    const Bytes bytes = section_bytes(image, s);
    PageRelease pages(bytes);
    if (find_bytes(bytes, bytes.data(), "/src/crypto/aws_lc_rs/", pages)) {
      provider = true;
      break;
    }
  }
  if (!provider) {
    r.detail = "aws-lc's aead.c without rustls's aws-lc-rs provider";
    return r;
  }
  r.rustls_aws_lc = true;
  if (layout.header.e_machine != EM_X86_64) {
    r.detail = "rustls/aws-lc for machine " + std::to_string(layout.header.e_machine) +
               ": signatures are read on x86-64 only";
    return r;
  }
  std::vector<std::string> why;
  for (const Elf64_Shdr& s : layout.sections) {
    if (!(s.sh_flags & SHF_EXECINSTR) || s.sh_type != SHT_PROGBITS || s.sh_size < 4096) continue;
    const Bytes code = section_bytes(image, s);
    if (code.empty()) continue;
    const AeadFunctions f = match_aead_functions(code, s.sh_addr, *file_address);
    if (!f.seal || !f.open) {
      why.push_back(f.why);
      continue;
    }
    const auto seal = file_offset(layout.loads, f.seal, image.size());
    const auto open = file_offset(layout.loads, f.open, image.size());
    if (!seal || !open) {
      why.push_back("located functions lie outside the file's segments");
      continue;
    }
    r.seal_address = f.seal;
    r.open_address = f.open;
    r.seal_offset = *seal;
    r.open_offset = *open;
    r.detail = "EVP_AEAD_CTX_seal at " + hex(f.seal) + ", EVP_AEAD_CTX_open at " + hex(f.open);
    const auto scatter =
        f.seal_scatter ? file_offset(layout.loads, f.seal_scatter, image.size()) : std::nullopt;
    if (scatter) {
      r.seal_scatter_address = f.seal_scatter;
      r.seal_scatter_offset = *scatter;
      r.detail += ", EVP_AEAD_CTX_seal_scatter at " + hex(f.seal_scatter);
    } else {
      r.detail += "; EVP_AEAD_CTX_seal_scatter not located (TLS 1.2 records out are not seen)";
    }
    return r;
  }
  r.detail = why.empty() ? "no executable section" : why.front();
  return r;
}

namespace {
// `in_image` over the file at `path`, mapped read-only; a file that cannot be mapped is the
// lookup's error.
template <typename Lookup>
Lookup on_file(const std::string& path,
               Lookup (*in_image)(std::span<const uint8_t>, const std::string&)) {
  const MappedFile file(path);
  if (!file.error().empty()) {
    Lookup r;
    r.error = path + ": " + file.error();
    return r;
  }
  return in_image(file.bytes(), path);
}
}  // namespace

AeadSignatureLookup find_aead_by_signature(const std::string& path) {
  return on_file(path, &find_aead_by_signature_in_image);
}

SslSignatureLookup find_ssl_by_signature(const std::string& path) {
  return on_file(path, &find_ssl_by_signature_in_image);
}

namespace {
std::mutex located_mu;
std::set<std::pair<uint64_t, uint64_t>>& located() {
  static std::set<std::pair<uint64_t, uint64_t>> files;
  return files;
}
}  // namespace

void remember_located(uint64_t dev, uint64_t ino) {
  const std::lock_guard<std::mutex> lock(located_mu);
  if (located().size() >= 4096) located().clear();
  located().insert({dev, ino});
}

bool was_located(uint64_t dev, uint64_t ino) {
  const std::lock_guard<std::mutex> lock(located_mu);
  return located().count({dev, ino}) > 0;
}

}  // namespace agentwall::elf

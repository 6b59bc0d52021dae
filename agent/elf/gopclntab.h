// Go executables: where crypto/tls's functions are, and where they return.
//
// A Go executable names its functions twice: in the ELF symbol table (gone when it is built
// with -ldflags=-s or stripped) and in its own function table, .gopclntab, which the Go
// runtime needs and which no strip removes. Functions are looked up in the symbol table first,
// then in .gopclntab (the layouts of Go 1.16/1.17, magic 0xfffffffa, of Go 1.18/1.19,
// 0xfffffff0, and of Go 1.20 and later, 0xfffffff1).
//
// Return probes (uretprobes) cannot be used in Go programs: the runtime moves goroutine
// stacks, and the return address the kernel planted goes with them. A function's returns are
// instead found by disassembling its body (capstone, x86-64 only): a uprobe on each RET
// instruction sees the results in the registers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace agentwall::elf {

struct GoFunction {
  uint64_t offset = 0;            // file offset of its first instruction
  uint64_t size = 0;              // bytes of code: its symbol's size, or up to the next entry
  std::vector<uint64_t> returns;  // file offsets of its RET instructions (x86-64)
  bool from_pclntab = false;      // found in .gopclntab, not in the symbol table
};

struct GoLookup {
  // The file is a Go executable: it has a .gopclntab (or .data.rel.ro.gopclntab) or a
  // .go.buildinfo section. Nothing else is looked at when it is not.
  bool is_go = false;
  std::string pclntab_version;  // "1.16", "1.18", "1.20"; empty when not read
  std::string go_version;       // from .go.buildinfo ("go1.19.8"); empty when not found
  // Name -> where it is, for the names found whose returns could all be located.
  std::unordered_map<std::string, GoFunction> functions;
  // Names found but left out of `functions` because their code has no RET instruction (a
  // function that only tail-calls): they cannot be probed at their returns.
  std::vector<std::string> without_returns;
  // Empty on success; otherwise "<file>: <what is wrong>", and `functions` is empty.
  std::string error;
  bool ok() const { return error.empty(); }
};

// The functions of crypto/tls the agent probes in a Go executable: the entry and every RET of
// Write and Read, the entry of Close.
inline const std::string kGoConnWrite = "crypto/tls.(*Conn).Write";
inline const std::string kGoConnRead = "crypto/tls.(*Conn).Read";
inline const std::string kGoConnClose = "crypto/tls.(*Conn).Close";
// The SNI: makeClientHello's receiver is the connection, and it passes the name it will send
// to hostnameInSNI, on the same goroutine (both optional: no SNI without them).
inline const std::string kGoMakeClientHello = "crypto/tls.(*Conn).makeClientHello";
inline const std::string kGoHostnameInSni = "crypto/tls.hostnameInSNI";

enum class GoSource {
  kSymbolsFirst,  // the ELF symbol table, then .gopclntab for what it lacks
  kPclntabOnly,   // .gopclntab only (what a stripped binary offers; tests compare both)
};

// Looks up `names` (Go's own spelling: "crypto/tls.(*Conn).Write") in a Go executable for
// x86-64, with the RET instructions of each. A file that is not a Go executable is not an
// error: is_go is false. A Go executable for another machine is, and so is one built by a Go
// before 1.17 (arguments on the stack, not in registers), or of unknown version with a Go
// 1.16/1.17 function table.
GoLookup find_go_functions_in_image(std::span<const uint8_t> image,
                                    const std::vector<std::string>& names,
                                    const std::string& display_name,
                                    GoSource source = GoSource::kSymbolsFirst);
GoLookup find_go_functions(const std::string& path, const std::vector<std::string>& names,
                           GoSource source = GoSource::kSymbolsFirst);

// ---- the parts, for tests ---------------------------------------------------------------

// Calls `each` with the name, entry address and end address (the next function's entry) of
// every function in the .gopclntab bytes `table`, whose code starts at `text_start` (used by
// Go 1.18 and later, whose entries are offsets from it). Returns "" or what is wrong, and the
// layout's version in `version`.
std::string read_pclntab(
    std::span<const uint8_t> table, uint64_t text_start, std::string& version,
    const std::function<void(std::string_view name, uint64_t entry, uint64_t end)>& each);

// The Go version recorded in a .go.buildinfo section ("go1.19.8"), or "" when it cannot be
// read. Go 1.18 and later store the string inline; before, a pointer to it (resolved through
// the PT_LOAD segments `loads` of the image).
std::string read_buildinfo_version(
    std::span<const uint8_t> image, std::span<const uint8_t> buildinfo,
    const std::function<std::optional<uint64_t>(uint64_t)>& to_offset);

// Decodes `code` (x86-64, at virtual address `address`) instruction by instruction and appends
// the address of every RET to `returns`. Returns "" or where decoding failed; trailing int3 or
// zero padding that does not decode is accepted.
std::string find_returns_x86_64(std::span<const uint8_t> code, uint64_t address,
                                std::vector<uint64_t>& returns);

}  // namespace agentwall::elf

// Function-symbol lookup in ELF64 files, for placing uprobes.
//
// Only little-endian ELF64 executables and shared objects for x86-64 and AArch64 are read.
// Every offset, size and index read from the file is bounds-checked: a truncated or hostile
// file yields an error (or simply no match), never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace agentwall::elf {

struct LookupResult {
  // Name -> file offset of the function's first instruction (what a perf uprobe is attached at).
  // Names that were not found are absent.
  std::unordered_map<std::string, uint64_t> offsets;
  // Name -> the symbol's st_size (0 when the symbol does not say), for each name found.
  std::unordered_map<std::string, uint64_t> sizes;
  // Empty on success; otherwise "<file>: <what is wrong>". Offsets and sizes are empty on error.
  std::string error;
  bool ok() const { return error.empty(); }
};

// Maps the file read-only and looks up each name (see find_functions_in_image).
LookupResult find_functions(const std::string& path, const std::vector<std::string>& names);

// Looks up each name among the defined STT_FUNC / STT_GNU_IFUNC symbols with a non-zero
// address, in .dynsym first and then .symtab; the first match wins. Names match exactly.
// A symbol's address becomes a file offset through the PT_LOAD segment whose file-backed
// part contains it; a symbol outside every such segment is not a match. `display_name`
// prefixes error messages.
LookupResult find_functions_in_image(std::span<const uint8_t> image,
                                     const std::vector<std::string>& names,
                                     const std::string& display_name);

}  // namespace agentwall::elf

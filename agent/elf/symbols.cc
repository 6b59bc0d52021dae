#include "agent/elf/symbols.h"

#include <elf.h>

#include <optional>
#include <string_view>
#include <unordered_set>

#include "agent/elf/image.h"

namespace agentwall::elf {
namespace {

using namespace detail;

bool is_defined_function(const Elf64_Sym& symbol) {
  const unsigned type = ELF64_ST_TYPE(symbol.st_info);
  return symbol.st_shndx != SHN_UNDEF && symbol.st_value != 0 &&
         (type == STT_FUNC || type == STT_GNU_IFUNC);
}

// Moves every name of `wanted` defined in symbol table section `index` into `found`.
std::string scan_symbols(Bytes image, const std::vector<Elf64_Shdr>& sections, size_t index,
                         const std::vector<Elf64_Phdr>& loads,
                         std::unordered_set<std::string_view>& wanted, LookupResult& found) {
  const Elf64_Shdr& symbols = sections[index];
  const std::string label = "symbol table (section " + std::to_string(index) + ")";
  if (symbols.sh_link >= sections.size()) {
    return label + " links to string table section " + std::to_string(symbols.sh_link) +
           ", out of range (" + std::to_string(sections.size()) + " sections)";
  }
  const Elf64_Shdr& strings = sections[symbols.sh_link];
  if (strings.sh_type != SHT_STRTAB) {
    return label + " links to section " + std::to_string(symbols.sh_link) +
           ", which is not a string table";
  }
  if (!in_bounds(image, symbols.sh_offset, symbols.sh_size)) {
    return label + " extends past the end of the file";
  }
  if (!in_bounds(image, strings.sh_offset, strings.sh_size)) {
    return "string table (section " + std::to_string(symbols.sh_link) +
           ") extends past the end of the file";
  }
  const uint64_t stride = symbols.sh_entsize == 0 ? sizeof(Elf64_Sym) : symbols.sh_entsize;
  if (stride < sizeof(Elf64_Sym)) {
    return label + " entry size " + std::to_string(stride) + " is smaller than " +
           std::to_string(sizeof(Elf64_Sym));
  }

  const Bytes names = image.subspan(strings.sh_offset, strings.sh_size);
  const uint64_t count = symbols.sh_size / stride;
  PageRelease pages(image);
  for (uint64_t i = 0; i < count && !wanted.empty(); ++i) {
    const Elf64_Sym symbol = *read_at<Elf64_Sym>(image, symbols.sh_offset + i * stride);
    pages.read(stride);
    if (!is_defined_function(symbol)) continue;
    const std::optional<std::string_view> name = string_at(names, symbol.st_name);
    if (!name) continue;
    pages.read(name->size());
    const auto wanted_name = wanted.find(*name);
    if (wanted_name == wanted.end()) continue;
    const std::optional<uint64_t> offset = file_offset(loads, symbol.st_value, image.size());
    if (!offset) continue;
    found.offsets.emplace(std::string(*name), *offset);
    found.sizes.emplace(std::string(*name), symbol.st_size);
    wanted.erase(wanted_name);
  }
  return "";
}

// GNU's symbol hash (the dynamic linker's): h * 33 + c from 5381.
uint32_t gnu_hash(std::string_view name) {
  uint32_t h = 5381;
  for (const char c : name) h = h * 33 + static_cast<uint8_t>(c);
  return h;
}

// Looks `wanted` up in dynamic symbol table section `index` through the .gnu.hash section
// that indexes it, as the dynamic linker does: a few pages read per name, where a scan reads the
// whole table and its names in hash order (7 MB of /usr/bin/node, all resident while it runs).
// False when there is no such hash section or it does not fit the file (then scan).
bool hash_lookup(Bytes image, const std::vector<Elf64_Shdr>& sections, size_t index,
                 const std::vector<Elf64_Phdr>& loads, std::unordered_set<std::string_view>& wanted,
                 LookupResult& found) {
  const Elf64_Shdr& symbols = sections[index];
  const Elf64_Shdr* hash = nullptr;
  for (const Elf64_Shdr& s : sections)
    if (s.sh_type == SHT_GNU_HASH && s.sh_link == index) hash = &s;
  if (!hash || symbols.sh_link >= sections.size() || symbols.sh_entsize != sizeof(Elf64_Sym) ||
      sections[symbols.sh_link].sh_type != SHT_STRTAB)
    return false;
  const Bytes table = section_bytes(image, *hash);
  const Bytes syms = section_bytes(image, symbols);
  const Bytes names = section_bytes(image, sections[symbols.sh_link]);
  const auto nbuckets = read_at<uint32_t>(table, 0);
  const auto symoffset = read_at<uint32_t>(table, 4);
  const auto bloom_words = read_at<uint32_t>(table, 8);
  // Anything odd (the scan then says what): no buckets, tables outside the file.
  if (!nbuckets || !symoffset || !bloom_words || *nbuckets == 0 || syms.empty() || names.empty())
    return false;
  const uint64_t buckets = 16 + uint64_t{*bloom_words} * 8;
  const uint64_t chains = buckets + uint64_t{*nbuckets} * 4;
  if (!in_bounds(table, buckets, uint64_t{*nbuckets} * 4)) return false;
  const uint64_t count = syms.size() / sizeof(Elf64_Sym);
  for (auto it = wanted.begin(); it != wanted.end();) {
    const std::string_view name = *it;
    const uint32_t h = gnu_hash(name);
    uint64_t i = *read_at<uint32_t>(table, buckets + uint64_t{h % *nbuckets} * 4);
    bool hit = false;
    for (; i >= *symoffset && i < count; ++i) {
      const std::optional<uint32_t> chain = read_at<uint32_t>(table, chains + (i - *symoffset) * 4);
      if (!chain) break;
      if ((*chain | 1) == (h | 1)) {
        const Elf64_Sym symbol = *read_at<Elf64_Sym>(syms, i * sizeof(Elf64_Sym));
        const std::optional<uint64_t> offset =
            is_defined_function(symbol) && string_at(names, symbol.st_name) == name
                ? file_offset(loads, symbol.st_value, image.size())
                : std::nullopt;
        if (offset) {
          found.offsets.emplace(std::string(name), *offset);
          found.sizes.emplace(std::string(name), symbol.st_size);
          hit = true;
          break;
        }
      }
      if (*chain & 1) break;  // the bucket's last symbol
    }
    it = hit ? wanted.erase(it) : std::next(it);
  }
  return true;
}

std::string lookup(Bytes image, const std::vector<std::string>& names, LookupResult& found) {
  Layout layout;
  std::string error = read_layout(image, layout);
  if (!error.empty()) return error;
  const std::vector<Elf64_Phdr>& loads = layout.loads;
  const std::vector<Elf64_Shdr>& sections = layout.sections;

  // Views into `names`, which outlives this call.
  std::unordered_set<std::string_view> wanted(names.begin(), names.end());
  for (const uint32_t table_type : {SHT_DYNSYM, SHT_SYMTAB}) {
    for (size_t index = 0; index < sections.size() && !wanted.empty(); ++index) {
      if (sections[index].sh_type != table_type) continue;
      if (table_type == SHT_DYNSYM && hash_lookup(image, sections, index, loads, wanted, found))
        continue;
      error = scan_symbols(image, sections, index, loads, wanted, found);
      if (!error.empty()) return error;
    }
  }
  return "";
}

}  // namespace

LookupResult find_functions_in_image(std::span<const uint8_t> image,
                                     const std::vector<std::string>& names,
                                     const std::string& display_name) {
  LookupResult result;
  const std::string error = lookup(image, names, result);
  if (!error.empty()) {
    result.offsets.clear();
    result.sizes.clear();
    result.error = display_name + ": " + error;
  }
  return result;
}

LookupResult find_functions(const std::string& path, const std::vector<std::string>& names) {
  const auto failure = [&path](std::string what) {
    LookupResult result;
    result.error = path + ": " + what;
    return result;
  };
  const MappedFile file(path);
  if (!file.error().empty()) return failure(file.error());
  return find_functions_in_image(file.bytes(), names, path);
}

}  // namespace agentwall::elf

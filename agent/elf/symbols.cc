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
  for (uint64_t i = 0; i < count && !wanted.empty(); ++i) {
    const Elf64_Sym symbol = *read_at<Elf64_Sym>(image, symbols.sh_offset + i * stride);
    if (!is_defined_function(symbol)) continue;
    const std::optional<std::string_view> name = string_at(names, symbol.st_name);
    if (!name) continue;
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

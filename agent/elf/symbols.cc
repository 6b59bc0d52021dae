#include "agent/elf/symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_set>

namespace agentwall::elf {
namespace {

// Structures are copied out of the image as they are, so the host must share the byte order
// of the only files accepted.
static_assert(std::endian::native == std::endian::little);

using Bytes = std::span<const uint8_t>;
using Offsets = std::unordered_map<std::string, uint64_t>;

// True when [offset, offset + length) lies inside the image; written so that nothing overflows.
bool in_bounds(Bytes image, uint64_t offset, uint64_t length) {
  return offset <= image.size() && length <= image.size() - offset;
}

// Copies a T out of the image: in a hostile file nothing is aligned.
template <class T>
std::optional<T> read_at(Bytes image, uint64_t offset) {
  if (!in_bounds(image, offset, sizeof(T))) return std::nullopt;
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

// Reads a table of `count` entries spaced `stride` bytes apart into `out`; returns an error
// naming `what` when the entries are too small or the table does not fit in the image.
template <class T>
std::string read_table(Bytes image, uint64_t offset, uint64_t count, uint64_t stride,
                       std::string_view what, std::vector<T>& out) {
  out.clear();
  if (count == 0) return "";
  if (stride < sizeof(T)) {
    return std::string(what) + " entry size " + std::to_string(stride) + " is smaller than " +
           std::to_string(sizeof(T));
  }
  // count <= size / stride keeps count * stride from overflowing.
  if (count > image.size() / stride || !in_bounds(image, offset, count * stride)) {
    return "truncated " + std::string(what);
  }
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) out.push_back(*read_at<T>(image, offset + i * stride));
  return "";
}

std::string check_header(Bytes image, Elf64_Ehdr& header) {
  if (image.empty()) return "empty file, not an ELF file";
  if (image.size() < SELFMAG || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0) {
    return "not an ELF file";
  }
  if (image.size() < EI_NIDENT) return "truncated ELF header";
  switch (image[EI_CLASS]) {
    case ELFCLASS64:
      break;
    case ELFCLASS32:
      return "32-bit ELF not supported";
    default:
      return "invalid ELF class " + std::to_string(image[EI_CLASS]);
  }
  switch (image[EI_DATA]) {
    case ELFDATA2LSB:
      break;
    case ELFDATA2MSB:
      return "big-endian ELF not supported";
    default:
      return "invalid ELF data encoding " + std::to_string(image[EI_DATA]);
  }
  std::optional<Elf64_Ehdr> read = read_at<Elf64_Ehdr>(image, 0);
  if (!read) return "truncated ELF header";
  header = *read;
  if (header.e_machine != EM_X86_64 && header.e_machine != EM_AARCH64) {
    return "unsupported machine " + std::to_string(header.e_machine) + " (only x86-64 and AArch64)";
  }
  if (header.e_type != ET_EXEC && header.e_type != ET_DYN) {
    return "not an executable or shared object (e_type " + std::to_string(header.e_type) + ")";
  }
  return "";
}

// The PT_LOAD segments and section headers, following the extended numbering of
// elf(5): with 0xff00 (SHN_LORESERVE) or more sections, e_shnum is 0 and section 0's sh_size holds
// the count; with PN_XNUM or more segments, section 0's sh_info holds that count.
std::string read_layout(Bytes image, const Elf64_Ehdr& header, std::vector<Elf64_Phdr>& loads,
                        std::vector<Elf64_Shdr>& sections) {
  if (header.e_shoff == 0) return "no section header table";
  uint64_t section_count = header.e_shnum;
  uint64_t segment_count = header.e_phnum;
  if (section_count == 0 || segment_count == PN_XNUM) {
    std::optional<Elf64_Shdr> first = read_at<Elf64_Shdr>(image, header.e_shoff);
    if (!first) return "truncated section header table";
    if (section_count == 0) section_count = first->sh_size;
    if (segment_count == PN_XNUM) segment_count = first->sh_info;
  }
  if (segment_count == 0) return "no program headers";

  std::string error = read_table(image, header.e_shoff, section_count, header.e_shentsize,
                                 "section header table", sections);
  if (!error.empty()) return error;
  error = read_table(image, header.e_phoff, segment_count, header.e_phentsize,
                     "program header table", loads);
  if (!error.empty()) return error;
  std::erase_if(loads, [](const Elf64_Phdr& segment) { return segment.p_type != PT_LOAD; });
  return "";
}

// The NUL-terminated string at `offset`, or nothing when it starts or ends outside the table.
std::optional<std::string_view> string_at(Bytes strings, uint64_t offset) {
  if (offset >= strings.size()) return std::nullopt;
  const uint8_t* start = strings.data() + offset;
  const void* nul = std::memchr(start, '\0', strings.size() - offset);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(start),
                          static_cast<const uint8_t*>(nul) - start);
}

// The file offset that holds virtual address `address`, or nothing when no PT_LOAD segment
// maps it from the file (or the segment's file range lies past the end of the image).
std::optional<uint64_t> file_offset(const std::vector<Elf64_Phdr>& loads, uint64_t address,
                                    uint64_t image_size) {
  for (const Elf64_Phdr& segment : loads) {
    if (address < segment.p_vaddr) continue;
    const uint64_t delta = address - segment.p_vaddr;
    if (delta >= segment.p_filesz) continue;
    if (segment.p_offset > image_size || delta >= image_size - segment.p_offset) continue;
    return segment.p_offset + delta;
  }
  return std::nullopt;
}

bool is_defined_function(const Elf64_Sym& symbol) {
  const unsigned type = ELF64_ST_TYPE(symbol.st_info);
  return symbol.st_shndx != SHN_UNDEF && symbol.st_value != 0 &&
         (type == STT_FUNC || type == STT_GNU_IFUNC);
}

// Moves every name of `wanted` defined in symbol table section `index` into `found`.
std::string scan_symbols(Bytes image, const std::vector<Elf64_Shdr>& sections, size_t index,
                         const std::vector<Elf64_Phdr>& loads,
                         std::unordered_set<std::string_view>& wanted, Offsets& found) {
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
    found.emplace(std::string(*name), *offset);
    wanted.erase(wanted_name);
  }
  return "";
}

std::string lookup(Bytes image, const std::vector<std::string>& names, Offsets& found) {
  Elf64_Ehdr header;
  std::string error = check_header(image, header);
  if (!error.empty()) return error;
  std::vector<Elf64_Phdr> loads;
  std::vector<Elf64_Shdr> sections;
  error = read_layout(image, header, loads, sections);
  if (!error.empty()) return error;

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

std::string errno_message(const char* action) {
  return std::string(action) + ": " + std::error_code(errno, std::generic_category()).message();
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

class ReadOnlyMapping {
 public:
  ReadOnlyMapping(void* address, size_t length) : address_(address), length_(length) {}
  ReadOnlyMapping(const ReadOnlyMapping&) = delete;
  ReadOnlyMapping& operator=(const ReadOnlyMapping&) = delete;
  ~ReadOnlyMapping() { ::munmap(address_, length_); }
  Bytes bytes() const { return {static_cast<const uint8_t*>(address_), length_}; }

 private:
  void* address_;
  size_t length_;
};

}  // namespace

LookupResult find_functions_in_image(std::span<const uint8_t> image,
                                     const std::vector<std::string>& names,
                                     const std::string& display_name) {
  LookupResult result;
  const std::string error = lookup(image, names, result.offsets);
  if (!error.empty()) {
    result.offsets.clear();
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
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) return failure(errno_message("cannot open"));
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) return failure(errno_message("cannot stat"));
  if (!S_ISREG(status.st_mode)) return failure("not a regular file");
  // mmap rejects a zero length; an empty image gets its own error below.
  if (status.st_size == 0) return find_functions_in_image({}, names, path);

  const auto length = static_cast<size_t>(status.st_size);
  void* address = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, file.get(), 0);
  if (address == MAP_FAILED) return failure(errno_message("cannot mmap"));
  const ReadOnlyMapping mapping(address, length);
  return find_functions_in_image(mapping.bytes(), names, path);
}

}  // namespace agentwall::elf

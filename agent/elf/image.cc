#include "agent/elf/image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <map>
#include <mutex>
#include <system_error>

namespace agentwall::elf::detail {
namespace {

// Structures are copied out of the image as they are, so the host must share the byte order
// of the only files accepted.
static_assert(std::endian::native == std::endian::little);

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
std::string read_layout_of(Bytes image, const Elf64_Ehdr& header, std::vector<Elf64_Phdr>& loads,
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

std::string errno_message(const char* action) {
  return std::string(action) + ": " + std::error_code(errno, std::generic_category()).message();
}

}  // namespace

std::string read_layout(Bytes image, Layout& layout) {
  std::string error = check_header(image, layout.header);
  if (!error.empty()) return error;
  return read_layout_of(image, layout.header, layout.loads, layout.sections);
}

std::optional<std::string_view> string_at(Bytes strings, uint64_t offset) {
  if (offset >= strings.size()) return std::nullopt;
  const uint8_t* start = strings.data() + offset;
  const void* nul = std::memchr(start, '\0', strings.size() - offset);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(start),
                          static_cast<const uint8_t*>(nul) - start);
}

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

Bytes section_bytes(Bytes image, const Elf64_Shdr& section) {
  if (section.sh_type == SHT_NOBITS || !in_bounds(image, section.sh_offset, section.sh_size))
    return {};
  return image.subspan(section.sh_offset, section.sh_size);
}

std::optional<size_t> find_section(Bytes image, const Layout& layout, std::string_view name) {
  const uint64_t names_index = layout.header.e_shstrndx == SHN_XINDEX && !layout.sections.empty()
                                   ? layout.sections[0].sh_link
                                   : layout.header.e_shstrndx;
  if (names_index == SHN_UNDEF || names_index >= layout.sections.size()) return std::nullopt;
  const Elf64_Shdr& names = layout.sections[names_index];
  if (!in_bounds(image, names.sh_offset, names.sh_size)) return std::nullopt;
  const Bytes table = image.subspan(names.sh_offset, names.sh_size);
  for (size_t i = 0; i < layout.sections.size(); ++i) {
    if (string_at(table, layout.sections[i].sh_name) == name) return i;
  }
  return std::nullopt;
}

namespace {

// The live MappedFile mappings, by start address: PageRelease hands back only their pages.
std::mutex mappings_mu;
std::map<uintptr_t, size_t>& mappings() {
  static std::map<uintptr_t, size_t> live;
  return live;
}

}  // namespace

PageRelease::PageRelease(Bytes image) {
  const auto at = reinterpret_cast<uintptr_t>(image.data());
  const std::lock_guard lock(mappings_mu);
  auto it = mappings().upper_bound(at);
  if (it == mappings().begin()) return;
  --it;
  if (at - it->first < it->second) {
    base_ = reinterpret_cast<void*>(it->first);
    length_ = it->second;
  }
}

void PageRelease::release() {
  pending_ = 0;
  if (base_) ::madvise(base_, length_, MADV_DONTNEED);
}

const uint8_t* find_bytes(Bytes range, const uint8_t* from, std::string_view needle,
                          PageRelease& pages) {
  const uint8_t* const end = range.data() + range.size();
  if (needle.empty() || from < range.data() || from > end) return nullptr;
  while (static_cast<size_t>(end - from) >= needle.size()) {
    // Each window overlaps the next by needle.size() - 1 bytes, so no match is cut.
    const size_t window = std::min<size_t>(end - from, PageRelease::kEvery + needle.size() - 1);
    const void* hit = memmem(from, window, needle.data(), needle.size());
    if (hit) {
      pages.read(static_cast<const uint8_t*>(hit) - from);
      return static_cast<const uint8_t*>(hit);
    }
    pages.read(window);
    if (window < PageRelease::kEvery + needle.size() - 1) break;
    from += PageRelease::kEvery;
  }
  return nullptr;
}

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error_ = errno_message("cannot open");
    return;
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0) {
    error_ = errno_message("cannot stat");
  } else if (!S_ISREG(status.st_mode)) {
    error_ = "not a regular file";
  } else if (status.st_size > 0) {  // mmap rejects a zero length: an empty image stays empty
    // Shared, not private: the kernel writes the int3 of every uprobe registered on the file
    // (another agent's, another tool's) into each private mapping of it, ours too, and the
    // code would read as breakpoints; it leaves shared mappings alone (uprobes' valid_vma).
    void* address =
        ::mmap(nullptr, static_cast<size_t>(status.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) {
      error_ = errno_message("cannot mmap");
    } else {
      address_ = address;
      length_ = static_cast<size_t>(status.st_size);
      const std::lock_guard lock(mappings_mu);
      mappings()[reinterpret_cast<uintptr_t>(address_)] = length_;
    }
  }
  device_ = status.st_dev;
  inode_ = status.st_ino;
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (!address_) return;
  {
    const std::lock_guard lock(mappings_mu);
    mappings().erase(reinterpret_cast<uintptr_t>(address_));
  }
  ::munmap(address_, length_);
}

}  // namespace agentwall::elf::detail

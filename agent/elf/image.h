// Bounds-checked reading of an ELF64 image, shared by the symbol lookup (symbols.cc) and the Go
// function table reader (gopclntab.cc). Internal to agent/elf/.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::elf::detail {

using Bytes = std::span<const uint8_t>;

// True when [offset, offset + length) lies inside the image; written so that nothing overflows.
inline bool in_bounds(Bytes image, uint64_t offset, uint64_t length) {
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

// An image's header, PT_LOAD segments and section headers, checked (see check_header).
struct Layout {
  Elf64_Ehdr header{};
  std::vector<Elf64_Phdr> loads;
  std::vector<Elf64_Shdr> sections;
};

// Fills `layout`; returns an error ("not an ELF file", "truncated ...") or "".
std::string read_layout(Bytes image, Layout& layout);

// The NUL-terminated string at `offset`, or nothing when it starts or ends outside the table.
std::optional<std::string_view> string_at(Bytes strings, uint64_t offset);

// The file offset that holds virtual address `address`, or nothing when no PT_LOAD segment
// maps it from the file (or the segment's file range lies past the end of the image).
std::optional<uint64_t> file_offset(const std::vector<Elf64_Phdr>& loads, uint64_t address,
                                    uint64_t image_size);

// A section's bytes, or an empty span when it has none in the file or they are not all in
// the image.
Bytes section_bytes(Bytes image, const Elf64_Shdr& section);

// The index of the section called `name` (through e_shstrndx), or nothing.
std::optional<size_t> find_section(Bytes image, const Layout& layout, std::string_view name);

// A file mapped read-only for as long as the object lives. Its mapping is registered for
// PageRelease below while it lives.
class MappedFile {
 public:
  // Opens and maps `path`; on failure error() says why ("cannot open: ...").
  explicit MappedFile(const std::string& path);
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  Bytes bytes() const { return {static_cast<const uint8_t*>(address_), length_}; }
  const std::string& error() const { return error_; }
  uint64_t device() const { return device_; }  // the file's st_dev and st_ino
  uint64_t inode() const { return inode_; }

 private:
  void* address_ = nullptr;
  size_t length_ = 0;
  uint64_t device_ = 0;
  uint64_t inode_ = 0;
  std::string error_;
};

// Every page a scan reads of a mapped file stays resident until the file is unmapped, so
// scanning a 300 MB executable would add 300 MB to the agent's peak resident memory. A scan
// counts what it reads with read(); each time kEvery bytes have been read since the last
// release, every page of the MappedFile mapping that holds the image is handed back
// (MADV_DONTNEED: the file's pages stay in the page cache, and what is read again is faulted
// back in from there). Memory that is not a live MappedFile's (the unit tests' vectors)
// is never touched.
class PageRelease {
 public:
  static constexpr uint64_t kEvery = 1 << 20;
  explicit PageRelease(Bytes image);
  void read(uint64_t bytes) {
    if (base_ && (pending_ += bytes) >= kEvery) release();
  }
  void release();

 private:
  void* base_ = nullptr;
  size_t length_ = 0;
  uint64_t pending_ = 0;
};

// memmem over `range` in windows of PageRelease::kEvery, counting each into `pages`: the
// first occurrence of `needle` at or after `from`, or nullptr.
const uint8_t* find_bytes(Bytes range, const uint8_t* from, std::string_view needle,
                          PageRelease& pages);

}  // namespace agentwall::elf::detail

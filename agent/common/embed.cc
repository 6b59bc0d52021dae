#include "agent/common/embed.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace agentwall {

void release_embedded(std::string_view bytes) {
  const long size = ::sysconf(_SC_PAGESIZE);
  if (size <= 0 || bytes.empty()) return;
  const auto page = static_cast<uintptr_t>(size);
  const auto at = reinterpret_cast<uintptr_t>(bytes.data());
  const uintptr_t begin = (at + page - 1) & ~(page - 1);
  const uintptr_t end = (at + bytes.size()) & ~(page - 1);
  // Advice only: where the kernel refuses, the pages stay, as they would have.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace agentwall

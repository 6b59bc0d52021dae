#pragma once

#include <cstddef>

namespace agentwall {

// Writes all `size` bytes to `fd`, retrying on EINTR and short writes. false with errno set
// when a write fails (or writes nothing).
bool write_all(int fd, const void* data, size_t size);

}  // namespace agentwall

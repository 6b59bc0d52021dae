#pragma once

#include <cstdint>
#include <string>

namespace agentwall {

// RFC 3339 in UTC with nanoseconds: 2026-11-24T11:03:24.123456789Z
std::string format_rfc3339(uint64_t unix_ns);
uint64_t unix_now_ns();
// Unix time minus boot time (CLOCK_BOOTTIME): adds to kernel boot-based stamps.
uint64_t boot_to_unix_offset_ns();

}  // namespace agentwall

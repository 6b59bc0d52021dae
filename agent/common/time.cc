#include "agent/common/time.h"

#include <ctime>

namespace agentwall {
namespace {
uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
}  // namespace

std::string format_rfc3339(uint64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1000000000ull);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[48];
  const size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
  char frac[16];
  snprintf(frac, sizeof(frac), ".%09lluZ",
           static_cast<unsigned long long>(unix_ns % 1000000000ull));
  return std::string(buf, n) + frac;
}

uint64_t unix_now_ns() {
  return clock_ns(CLOCK_REALTIME);
}

uint64_t boot_to_unix_offset_ns() {
  // Read boot time between two real-time readings so the offset is off by at most
  // the time one clock read takes.
  const uint64_t r1 = clock_ns(CLOCK_REALTIME);
  const uint64_t b = clock_ns(CLOCK_BOOTTIME);
  const uint64_t r2 = clock_ns(CLOCK_REALTIME);
  return r1 + (r2 - r1) / 2 - b;
}

}  // namespace agentwall

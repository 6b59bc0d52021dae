#include "agent/capture/ring_reader.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace agentwall::capture {

struct RingReader::Ring {
  RingSampleFn fn = nullptr;
  void* ctx = nullptr;
  void* consumer_page = MAP_FAILED;
  void* producer_and_data = MAP_FAILED;
  size_t page = 0;
  size_t size = 0;
  std::unique_ptr<RingView> view;

  ~Ring() {
    if (consumer_page != MAP_FAILED) munmap(consumer_page, page);
    if (producer_and_data != MAP_FAILED) munmap(producer_and_data, page + size);
  }
};

RingReader::RingReader() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) epoll_errno_ = errno;
}

RingReader::~RingReader() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

bool RingReader::add(int map_fd, RingSampleFn fn, void* ctx, std::string& error) {
  if (epoll_fd_ < 0) {
    error = std::string("epoll_create1: ") + std::strerror(epoll_errno_);
    return false;
  }
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &info_len) != 0) {
    error = std::string("cannot read the ring buffer map's information: ") + std::strerror(errno);
    return false;
  }
  if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 ||
      (info.max_entries & (info.max_entries - 1)) != 0) {
    error = "map " + std::string(info.name) + " is not a ring buffer";
    return false;
  }
  auto ring = std::make_unique<Ring>();
  ring->fn = fn;
  ring->ctx = ctx;
  ring->page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ring->size = info.max_entries;
  // The kernel's mapping: page 0 the consumer position (the only page the reader may write),
  // page 1 the producer position, then the data area (twice, of which the first is taken).
  ring->consumer_page = mmap(nullptr, ring->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (ring->consumer_page != MAP_FAILED) {
    ring->producer_and_data = mmap(nullptr, ring->page + ring->size, PROT_READ, MAP_SHARED, map_fd,
                                   static_cast<off_t>(ring->page));
  }
  if (ring->consumer_page == MAP_FAILED || ring->producer_and_data == MAP_FAILED) {
    error = "cannot map ring buffer " + std::string(info.name) + ": " + std::strerror(errno);
    return false;
  }
  auto* base = static_cast<uint8_t*>(ring->producer_and_data);
  ring->view = std::make_unique<RingView>(base + ring->page, ring->size,
                                          static_cast<uint64_t*>(ring->consumer_page),
                                          reinterpret_cast<const uint64_t*>(base));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(rings_.size());
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, map_fd, &ev) != 0) {
    error = "cannot wait on ring buffer " + std::string(info.name) + ": " + std::strerror(errno);
    return false;
  }
  rings_.push_back(std::move(ring));
  return true;
}

int RingReader::poll(int timeout_ms) {
  epoll_event events[8];
  const int n = epoll_wait(epoll_fd_, events, 8, timeout_ms);
  if (n < 0) return -errno;
  int total = 0;
  for (int i = 0; i < n; ++i) {
    Ring& r = *rings_[events[i].data.u32];
    const int got = r.view->consume(r.fn, r.ctx);
    if (got < 0) return got;
    total += got;
  }
  return total;
}

int RingReader::consume() {
  int total = 0;
  for (auto& r : rings_) {
    const int got = r->view->consume(r->fn, r->ctx);
    if (got < 0) return got;
    total += got;
  }
  return total;
}

}  // namespace agentwall::capture

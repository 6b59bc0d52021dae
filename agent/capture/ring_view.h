// The consuming side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF), over its data area mapped
// once. Header-only and pure: RingReader (ring_reader.h) runs it over the kernel's pages, the
// unit tests over a plain array laid out the same way.
//
// The kernel's layout: positions count bytes from the ring's creation and never wrap; a
// position's place in the data area is `pos & (size - 1)`. Every record is an 8-byte header (a
// 32-bit length whose top bits say "still being written" and "discarded", then 32 bits the
// consumer does not read) and its sample, padded to 8 bytes. Headers are 8-byte aligned and the
// size is a multiple of the page size, so a header never straddles the end; a sample may.
//
// libbpf maps the data area twice, back to back, so that such a sample reads on contiguously.
// The kernel fills in every page of a ring mapping when it is made, so that costs resident
// memory twice the ring's size. Here the area is mapped once, and the rare sample that runs
// past the end is copied, in its two pieces, into a buffer of the view's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace agentwall::capture {

// As libbpf's ring_buffer_sample_fn: a negative result stops the consumption and is returned.
using RingSampleFn = int (*)(void* ctx, void* data, size_t size);

class RingView {
 public:
  static constexpr uint32_t kBusyBit = 1u << 31;
  static constexpr uint32_t kDiscardBit = 1u << 30;
  static constexpr size_t kHeaderBytes = 8;

  // `size`: the data area's bytes, a power of two. `consumer` is written, `producer` only read.
  RingView(const uint8_t* data, size_t size, uint64_t* consumer, const uint64_t* producer)
      : data_(data), mask_(size - 1), consumer_(consumer), producer_(producer) {}

  // Hands every committed record to fn(ctx, sample, length), in order, and frees its space
  // for the producer at once; stops at a record still being written. Returns how many samples
  // it handed over, or fn's negative result.
  int consume(RingSampleFn fn, void* ctx) {
    int count = 0;
    uint64_t cons = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    bool more = true;
    while (more) {
      more = false;
      const uint64_t prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
      while (cons < prod) {
        const size_t at = static_cast<size_t>(cons & mask_);
        const uint32_t word =
            __atomic_load_n(reinterpret_cast<const uint32_t*>(data_ + at), __ATOMIC_ACQUIRE);
        if (word & kBusyBit) return count;
        more = true;
        const size_t len = word & ~(kBusyBit | kDiscardBit);
        cons += (kHeaderBytes + len + 7) & ~size_t{7};
        if (!(word & kDiscardBit)) {
          const int rc = fn(ctx, sample(at, len), len);
          if (rc < 0) {
            __atomic_store_n(consumer_, cons, __ATOMIC_RELEASE);
            return rc;
          }
          ++count;
        }
        __atomic_store_n(consumer_, cons, __ATOMIC_RELEASE);
      }
    }
    return count;
  }

  // Samples that ran past the end of the area and were copied (for the tests).
  uint64_t wrapped() const { return wrapped_; }

 private:
  // The sample of the record whose header is at `at`: in place, or copied when it wraps.
  void* sample(size_t at, size_t len) {
    const size_t start = (at + kHeaderBytes) & mask_;
    const size_t size = mask_ + 1;
    if (start + len <= size) return const_cast<uint8_t*>(data_ + start);
    ++wrapped_;
    wrap_.resize(len);
    const size_t first = size - start;
    std::memcpy(wrap_.data(), data_ + start, first);
    std::memcpy(wrap_.data() + first, data_, len - first);
    return wrap_.data();
  }

  const uint8_t* data_;
  size_t mask_;
  uint64_t* consumer_;
  const uint64_t* producer_;
  std::vector<uint8_t> wrap_;
  uint64_t wrapped_ = 0;
};

}  // namespace agentwall::capture

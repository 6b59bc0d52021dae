// RingView (agent/capture/ring_view.h), the agent's BPF ring buffer consumer, over a plain array
// written the way the kernel's bpf_ringbuf_reserve/submit/discard write a ring: records that
// wrap around the end come out whole and in order, discarded ones are skipped, a record still
// being written stops the reader, and every position handed back frees the producer's space.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "agent/capture/ring_view.h"

using agentwall::capture::RingView;

namespace {

// The producer side, as the kernel lays records out.
struct FakeRing {
  explicit FakeRing(size_t size) : data(size, 0xee) {}
  std::vector<uint8_t> data;
  uint64_t consumer = 0;
  uint64_t producer = 0;

  // Reserves and fills a record; returns its header position. `flags`: busy/discard bits.
  uint64_t put(const std::string& sample, uint32_t flags = 0) {
    const uint64_t at = producer;
    const size_t mask = data.size() - 1;
    REQUIRE(producer + 8 + sample.size() - consumer <= data.size());
    const uint32_t word = static_cast<uint32_t>(sample.size()) | flags;
    for (size_t i = 0; i < 4; ++i) data[(at + i) & mask] = uint8_t(word >> (8 * i));
    for (size_t i = 0; i < sample.size(); ++i) data[(at + 8 + i) & mask] = uint8_t(sample[i]);
    producer += (8 + sample.size() + 7) & ~size_t{7};
    return at;
  }
  void commit(uint64_t at, uint32_t flags = 0) {  // clears the busy bit, as submit does
    const size_t mask = data.size() - 1;
    data[(at + 3) & mask] = uint8_t((data[(at + 3) & mask] & 0x3f) | (flags >> 24));
  }
  RingView view() { return RingView(data.data(), data.size(), &consumer, &producer); }
};

int collect(void* ctx, void* data, size_t size) {
  static_cast<std::vector<std::string>*>(ctx)->emplace_back(static_cast<char*>(data), size);
  return 0;
}

int refuse_second(void* ctx, void* data, size_t size) {
  auto* got = static_cast<std::vector<std::string>*>(ctx);
  if (got->size() == 1) return -7;
  got->emplace_back(static_cast<char*>(data), size);
  return 0;
}

}  // namespace

TEST_CASE("ring view: records in order, those that wrap around the end whole") {
  FakeRing ring(64);
  RingView view = ring.view();
  std::vector<std::string> got;
  // Round after round, records of every length move the wrap point over every offset.
  std::vector<std::string> sent;
  for (int round = 0; round < 40; ++round) {
    const std::string a(static_cast<size_t>(round % 23) + 1, char('a' + round % 26));
    const std::string b = "r" + std::to_string(round) + std::string(round % 5, '.');
    ring.put(a);
    ring.put(b);
    sent.push_back(a);
    sent.push_back(b);
    CHECK(view.consume(collect, &got) == 2);
    CHECK(ring.consumer == ring.producer);
  }
  CHECK(got == sent);
  CHECK(view.wrapped() > 0);
  CHECK(view.consume(collect, &got) == 0);
}

TEST_CASE("ring view: a sample that ends at the end of the area, and one that starts at 0") {
  FakeRing ring(32);
  RingView view = ring.view();
  std::vector<std::string> got;
  ring.put(std::string(8, 'x'));  // bytes 0-15
  ring.put(std::string(8, 'y'));  // 16-31: the sample ends at the end of the area
  CHECK(view.consume(collect, &got) == 2);
  ring.put(std::string(16, 'z'));  // 32-55: the header at offset 0
  CHECK(view.consume(collect, &got) == 1);
  ring.put("w");  // 56-71: the header at offset 24, the sample at 0
  CHECK(view.consume(collect, &got) == 1);
  CHECK(got == std::vector<std::string>{std::string(8, 'x'), std::string(8, 'y'),
                                        std::string(16, 'z'), "w"});
  CHECK(view.wrapped() == 0);
  CHECK(ring.consumer == 72);
}

TEST_CASE("ring view: a discarded record is skipped, a busy one stops the reader") {
  FakeRing ring(128);
  RingView view = ring.view();
  std::vector<std::string> got;
  ring.put("one");
  ring.put("dropped", RingView::kDiscardBit);
  const uint64_t busy = ring.put("three", RingView::kBusyBit);
  ring.put("four");
  CHECK(view.consume(collect, &got) == 1);
  CHECK(got == std::vector<std::string>{"one"});
  CHECK(ring.consumer == busy);  // the discarded one's space is freed, the busy one's not
  ring.commit(busy);
  CHECK(view.consume(collect, &got) == 2);
  CHECK(got == std::vector<std::string>{"one", "three", "four"});
  CHECK(ring.consumer == ring.producer);
}

TEST_CASE("ring view: a callback's error stops it after freeing that record") {
  FakeRing ring(128);
  RingView view = ring.view();
  std::vector<std::string> got;
  ring.put("first");
  const uint64_t second = ring.put("second");
  const uint64_t third = ring.put("third");
  CHECK(view.consume(refuse_second, &got) == -7);
  CHECK(got == std::vector<std::string>{"first"});
  CHECK(ring.consumer == third);
  CHECK(second < third);
}

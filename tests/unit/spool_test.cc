// The durable per-sink spool: order, at-least-once across reopen, kill -9, torn and corrupt
// segments, the size bound and drops, rotation and deletion, a producer and a consumer on
// two threads, write errors (through RLIMIT_FSIZE in a child), directories it cannot use.
// Every case works in its own directory under /tmp.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "agent/sinks/spool.h"
#include "tests/unit/temp_dir.h"

using namespace agentwall::sinks;
namespace fs = std::filesystem;
using Sync = SpoolOptions::Sync;
using namespace std::chrono_literals;

namespace {

using agentwall::test::TempDir;

SpoolOptions options_in(const TempDir& t, Sync sync = Sync::kNever) {
  SpoolOptions o;
  o.dir = (t.path / "spool").string();
  o.sync = sync;
  return o;
}

std::unique_ptr<Spool> must_open(const SpoolOptions& o) {
  std::string error;
  auto spool = Spool::open(o, error);
  INFO(error);
  REQUIRE(spool);
  return spool;
}

// The payload of record `seq`: says which it is, so a misplaced record shows.
std::string payload_for(uint64_t seq, size_t size = 0) {
  if (size == 0) size = 40 + (seq * 37) % 700;
  std::string p = "{\"event\":" + std::to_string(seq) + ",\"pad\":\"";
  while (p.size() + 2 < size) p.push_back(static_cast<char>('a' + (seq + p.size()) % 26));
  p += "\"}";
  return p;
}

std::vector<fs::path> segment_files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t bytes_on_disk(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& p : segment_files(dir)) n += fs::file_size(p);
  return n;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

// Offsets of the records in a segment file's bytes.
std::vector<size_t> record_offsets(const std::string& seg) {
  std::vector<size_t> out;
  size_t at = 0;
  while (at + Spool::kHeaderBytes <= seg.size()) {
    out.push_back(at);
    at += Spool::kHeaderBytes + le32(seg, at);
  }
  return out;
}

// Everything after the cursor, in batches, without acking.
std::vector<SpoolRecord> peek_all(Spool& spool) {
  return spool.peek(1u << 20, 1u << 30);
}

void check_payloads(const std::vector<SpoolRecord>& records) {
  for (const auto& r : records) {
    INFO("seq " << r.seq);
    CHECK(r.payload == payload_for(r.seq));
  }
}

}  // namespace

TEST_CASE("crc32c: known values; SSE4.2 and table agree") {
  CHECK(crc32c(0, "123456789") == 0xE3069283u);
  CHECK(crc32c_portable(0, "123456789") == 0xE3069283u);
  CHECK(crc32c(0, "") == 0u);
  CHECK(crc32c(0, std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c_portable(0, std::string(32, '\xff')) == 0x62A8AB43u);
  CHECK(crc32c(crc32c(0, "1234"), "56789") == 0xE3069283u);

  std::mt19937 rng(7);
  std::string data(4096 + 16, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 15u, 63u, 600u, 4096u}) {
      const std::string_view v(data.data() + start, len);
      CHECK(crc32c(0, v) == crc32c_portable(0, v));
      CHECK(crc32c(crc32c(0, v.substr(0, len / 3)), v.substr(len / 3)) == crc32c(0, v));
    }
  }
}

TEST_CASE("spool: append, peek and ack in order; peek without ack repeats") {
  TempDir t;
  auto spool = must_open(options_in(t));
  CHECK(spool->stats().last_seq == 0);
  CHECK(spool->peek(10, 1 << 20).empty());
  CHECK_FALSE(spool->wait(0ms));

  for (uint64_t i = 1; i <= 10; ++i) CHECK(spool->append(payload_for(i)) == i);
  CHECK(spool->wait(0ms));

  auto first = spool->peek(4, 1 << 20);
  REQUIRE(first.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(first[i].seq == i + 1);
  check_payloads(first);

  auto again = spool->peek(4, 1 << 20);
  REQUIRE(again.size() == 4);
  CHECK(again[0].seq == 1);
  CHECK(again[3].payload == first[3].payload);

  spool->ack(4);
  auto rest = peek_all(*spool);
  REQUIRE(rest.size() == 6);
  CHECK(rest.front().seq == 5);
  CHECK(rest.back().seq == 10);
  check_payloads(rest);

  // At least one record even when it alone is over max_bytes; then as many as fit.
  CHECK(spool->peek(10, 1).size() == 1);
  const size_t two = payload_for(5).size() + payload_for(6).size();
  CHECK(spool->peek(10, two).size() == 2);
  CHECK(spool->peek(10, two - 1).size() == 1);

  SpoolStats st = spool->stats();
  CHECK(st.appended == 10);
  CHECK(st.acked == 4);
  CHECK(st.depth == 6);
  CHECK(st.acked_seq == 4);
  CHECK(st.bytes == bytes_on_disk(spool->dir()));

  spool->ack(3);  // behind the cursor: nothing
  CHECK(spool->stats().acked_seq == 4);
  spool->ack(1000);  // past the newest: clamps
  st = spool->stats();
  CHECK(st.acked_seq == 10);
  CHECK(st.acked == 10);
  CHECK(st.depth == 0);
  CHECK(peek_all(*spool).empty());
  CHECK_FALSE(spool->wait(0ms));
  CHECK(spool->append(payload_for(11)) == 11);  // the clamp did not skip seqs
  CHECK(spool->take_dropped() == 0);
  CHECK(spool->last_error().empty());
}

TEST_CASE("spool: files, names and modes") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.dir = (t.path / "a" / "b" / "spool").string();
  {
    auto spool = must_open(o);
    CHECK(spool->dir() == o.dir);
    spool->append("x");
    spool->ack(1);
  }
  struct stat st {};
  REQUIRE(stat(o.dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto segs = segment_files(o.dir);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].filename() == "00000000000000000001.seg");
  REQUIRE(stat(segs[0].c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(read_file(fs::path(o.dir) / "cursor") == "1\n");

  // Unknown files are left alone and ignored.
  write_file(fs::path(o.dir) / "README", "not a segment");
  write_file(fs::path(o.dir) / "123.seg", "not a segment name either");
  auto spool = must_open(o);
  CHECK(spool->append("y") == 2);
  CHECK(spool->stats().corrupt == 0);
  CHECK(fs::exists(fs::path(o.dir) / "README"));
  CHECK(fs::exists(fs::path(o.dir) / "123.seg"));
}

TEST_CASE("spool: reopen keeps records and the cursor; seqs never go backwards") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 4096;
  {
    auto spool = must_open(o);
    for (uint64_t i = 1; i <= 20; ++i) REQUIRE(spool->append(payload_for(i)) == i);
    auto batch = spool->peek(10, 1 << 20);
    REQUIRE(batch.size() == 10);
    spool->ack(7);  // 8, 9, 10 were sent but not acknowledged: they come back
  }
  {
    auto spool = must_open(o);
    SpoolStats st = spool->stats();
    CHECK(st.last_seq == 20);
    CHECK(st.acked_seq == 7);
    CHECK(st.depth == 13);
    CHECK(st.corrupt == 0);
    CHECK(st.bytes == bytes_on_disk(o.dir));
    auto rest = peek_all(*spool);
    REQUIRE(rest.size() == 13);
    for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].seq == 8 + i);
    check_payloads(rest);
    CHECK(spool->append(payload_for(21)) == 21);
    spool->ack(21);  // everything delivered: older segments go, the active one stays
    CHECK(segment_files(o.dir).size() == 1);
  }
  {
    auto spool = must_open(o);
    CHECK(spool->stats().last_seq == 21);
    CHECK(spool->stats().depth == 0);
    CHECK(spool->append(payload_for(22)) == 22);
    spool->ack(22);
  }
  // With every segment gone, the cursor file alone keeps the seqs going.
  for (const auto& p : segment_files(o.dir)) fs::remove(p);
  {
    auto spool = must_open(o);
    CHECK(spool->stats().last_seq == 22);
    CHECK(spool->append(payload_for(23)) == 23);
  }
  // Without the cursor file, the segments alone keep them going (and what they hold after
  // their first seq is delivered again: at least once).
  {
    auto spool = must_open(o);
    spool->ack(23);
    while (spool->stats().bytes < 4096) spool->append(payload_for(spool->stats().last_seq + 1));
    const uint64_t last = spool->stats().last_seq;
    spool->ack(last);
  }
  {
    auto spool = must_open(o);
    const uint64_t last = spool->stats().last_seq;
    CHECK(last > 23);
    fs::remove(fs::path(o.dir) / "cursor");
    spool.reset();
    spool = must_open(o);
    CHECK(spool->stats().last_seq >= last);
    CHECK(spool->append("next") > last);
  }
}

TEST_CASE("spool: a second open of the same directory is refused") {
  TempDir t;
  auto spool = must_open(options_in(t));
  std::string error;
  CHECK_FALSE(Spool::open(options_in(t), error));
  CHECK(error.find(options_in(t).dir) != std::string::npos);
  CHECK(error.find("another spool") != std::string::npos);
}

TEST_CASE("spool: records survive kill -9 right after append returns") {
  TempDir t;
  const SpoolOptions o = options_in(t, Sync::kNever);
  constexpr uint64_t kRecords = 500;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string error;
    auto spool = Spool::open(o, error);
    if (!spool) _exit(2);
    for (uint64_t i = 1; i <= kRecords; ++i) {
      if (spool->append(payload_for(i)) != i) _exit(3);
    }
    raise(SIGKILL);  // no destructor, no close, no fsync
    _exit(4);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  auto spool = must_open(o);
  CHECK(spool->stats().corrupt == 0);
  CHECK(spool->stats().last_seq == kRecords);
  auto all = peek_all(*spool);
  REQUIRE(all.size() == kRecords);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);
  check_payloads(all);
}

TEST_CASE("spool: kill -9 in the middle of a stream of appends loses nothing returned") {
  TempDir t;
  SpoolOptions o = options_in(t, Sync::kNever);
  o.segment_bytes = 64 << 10;  // rotations happen during the stream
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    std::string error;
    auto spool = Spool::open(o, error);
    if (!spool) _exit(2);
    for (uint64_t i = 1;; ++i) {
      const uint64_t seq = spool->append(payload_for(i));
      if (seq != i) _exit(3);
      if (write(fds[1], &seq, sizeof seq) != sizeof seq) _exit(4);
    }
  }
  close(fds[1]);
  uint64_t reported = 0;
  uint64_t seq = 0;
  while (reported < 3000 && read(fds[0], &seq, sizeof seq) == sizeof seq) reported = seq;
  kill(child, SIGKILL);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  while (read(fds[0], &seq, sizeof seq) == sizeof seq) reported = seq;
  close(fds[0]);
  REQUIRE(reported >= 3000);

  auto spool = must_open(o);
  const SpoolStats st = spool->stats();
  // A kill inside write(2) can leave one torn record, whose append never returned.
  CHECK(st.corrupt <= 1);
  CHECK(st.last_seq >= reported);
  CHECK(st.last_seq <= reported + 1);
  auto all = peek_all(*spool);
  REQUIRE(all.size() == st.last_seq);
  for (size_t i = 0; i < all.size(); ++i) REQUIRE(all[i].seq == i + 1);
  check_payloads(all);
  CHECK(spool->append(payload_for(st.last_seq + 1)) == st.last_seq + 1);
}

TEST_CASE("spool: a torn tail or trailing garbage is cut and counted") {
  TempDir t;
  const SpoolOptions o = options_in(t);
  {
    auto spool = must_open(o);
    for (uint64_t i = 1; i <= 10; ++i) spool->append(payload_for(i));
  }
  auto segs = segment_files(o.dir);
  REQUIRE(segs.size() == 1);
  const uint64_t full = fs::file_size(segs[0]);
  fs::resize_file(segs[0], full - 5);  // record 10 loses its last bytes

  {
    auto spool = must_open(o);
    SpoolStats st = spool->stats();
    CHECK(st.corrupt == 1);
    CHECK(st.last_seq == 9);
    CHECK(spool->last_error().find(segs[0].string()) != std::string::npos);
    CHECK(fs::file_size(segs[0]) == full - Spool::kHeaderBytes - payload_for(10).size());
    auto all = peek_all(*spool);
    REQUIRE(all.size() == 9);
    CHECK(all.back().seq == 9);
    check_payloads(all);
    CHECK(spool->append(payload_for(10)) == 10);
    CHECK(spool->append(payload_for(11)) == 11);
  }
  const uint64_t good = fs::file_size(segs[0]);
  {
    std::ofstream out(segs[0], std::ios::binary | std::ios::app);
    out << std::string("\x07\x00\x00\x00garbage that is no record", 29);
  }
  {
    auto spool = must_open(o);
    CHECK(spool->stats().corrupt >= 1);  // each record-shaped piece of the garbage counts
    CHECK(spool->stats().last_seq == 11);
    CHECK(fs::file_size(segs[0]) == good);
    auto all = peek_all(*spool);
    REQUIRE(all.size() == 11);
    check_payloads(all);
    CHECK(spool->append(payload_for(12)) == 12);
  }
  // A header claiming an absurd length.
  {
    std::ofstream out(segs[0], std::ios::binary | std::ios::app);
    out << std::string(16, '\xff');
  }
  auto spool = must_open(o);
  CHECK(spool->stats().corrupt == 1);
  CHECK(spool->stats().last_seq == 12);
  CHECK(peek_all(*spool).size() == 12);
}

TEST_CASE("spool: a corrupt record in the middle cuts its segment there; later ones stay") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 4096;
  {
    auto spool = must_open(o);
    for (uint64_t i = 1; i <= 40; ++i) spool->append(payload_for(i, 300));
  }
  auto segs = segment_files(o.dir);
  REQUIRE(segs.size() >= 3);
  std::string first = read_file(segs[0]);
  const auto offsets = record_offsets(first);
  REQUIRE(offsets.size() >= 5);
  first[offsets[2] + Spool::kHeaderBytes + 10] ^= 0x20;  // a payload byte of record 3
  write_file(segs[0], first);
  const uint64_t second_first = std::stoull(segs[1].filename().string());

  auto spool = must_open(o);
  const SpoolStats st = spool->stats();
  CHECK(st.corrupt == offsets.size() - 2);  // record 3 and the rest of its segment
  CHECK(st.last_seq == 40);
  CHECK(fs::file_size(segs[0]) == offsets[2]);
  auto all = spool->peek(1000, 1 << 20);
  REQUIRE(all.size() == 2 + (40 - second_first + 1));
  CHECK(all[0].seq == 1);
  CHECK(all[1].seq == 2);
  CHECK(all[2].seq == second_first);
  CHECK(all.back().seq == 40);
  for (const auto& r : all) CHECK(r.payload == payload_for(r.seq, 300));
  CHECK(st.depth == 40);  // counted by seq: the cut records are a gap the first ack passes
  spool->ack(all.back().seq);
  CHECK(spool->stats().depth == 0);
  CHECK(spool->append("after") == 41);
}

TEST_CASE("spool: the cursor steps over records lost in a cut") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 4096;
  {
    auto spool = must_open(o);
    // 8 records of 512 bytes fill the first segment exactly.
    for (uint64_t i = 1; i <= 8; ++i) spool->append(payload_for(i, 512 - Spool::kHeaderBytes));
  }
  {
    auto spool = must_open(o);  // the full segment is left; an empty 9.seg is active
    CHECK(segment_files(o.dir).size() == 2);
  }
  auto segs = segment_files(o.dir);
  REQUIRE(segs.size() == 2);
  CHECK(segs[1].filename() == "00000000000000000009.seg");
  std::string first = read_file(segs[0]);
  first[2 * 512 + Spool::kHeaderBytes] ^= 1;  // record 3
  write_file(segs[0], first);

  auto spool = must_open(o);
  CHECK(spool->stats().corrupt == 6);
  CHECK(spool->stats().last_seq == 8);  // the empty segment's name keeps 3..8 used
  auto batch = peek_all(*spool);
  REQUIRE(batch.size() == 2);
  spool->ack(2);
  // Nothing after 2 exists: no depth, no wake-up, no empty peeks in a loop.
  CHECK(spool->stats().depth == 0);
  CHECK(spool->stats().acked_seq == 8);
  CHECK_FALSE(spool->wait(0ms));
  CHECK(spool->append("next") == 9);
  batch = peek_all(*spool);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].seq == 9);
}

TEST_CASE("spool: a record corrupted on disk while open is skipped by peek, and counted") {
  TempDir t;
  const SpoolOptions o = options_in(t);
  auto spool = must_open(o);
  for (uint64_t i = 1; i <= 5; ++i) spool->append(payload_for(i, 100));
  const auto segs = segment_files(o.dir);
  REQUIRE(segs.size() == 1);
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(116 + Spool::kHeaderBytes + 5);  // a payload byte of record 2
    f.put('#');
  }
  auto batch = peek_all(*spool);  // ends before the bad record
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].seq == 1);
  CHECK(spool->stats().corrupt == 0);
  spool->ack(1);
  batch = peek_all(*spool);  // at the head now: skipped
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].seq == 3);
  CHECK(spool->stats().corrupt == 1);
  CHECK(spool->last_error().find("record 2") != std::string::npos);
  for (const auto& r : batch) CHECK(r.payload == payload_for(r.seq, 100));
}

TEST_CASE("spool: a segment overlapping an older one is set aside") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 4096;
  {
    auto spool = must_open(o);
    for (uint64_t i = 1; i <= 40; ++i) spool->append(payload_for(i, 300));
  }
  auto segs = segment_files(o.dir);
  REQUIRE(segs.size() >= 3);
  // A copy of the first segment under a name inside its seq range.
  const fs::path overlap = fs::path(o.dir) / "00000000000000000002.seg";
  fs::copy_file(segs[0], overlap);
  auto spool = must_open(o);
  CHECK(spool->stats().corrupt == 1);
  CHECK_FALSE(fs::exists(overlap));
  CHECK(fs::exists(overlap.string() + ".bad"));
  auto all = spool->peek(1000, 1 << 20);
  REQUIRE(all.size() == 40);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);
}

TEST_CASE("spool: bounded; the oldest records are dropped and counted once") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.max_bytes = 64 << 10;
  o.segment_bytes = 1 << 20;  // clamped to max_bytes / 4
  auto spool = must_open(o);
  constexpr uint64_t kRecords = 1000;
  constexpr size_t kPayload = 600;
  for (uint64_t i = 1; i <= kRecords; ++i) {
    REQUIRE(spool->append(payload_for(i, kPayload)) == i);
    REQUIRE(spool->stats().bytes <= o.max_bytes);  // the documented bound, after every append
  }
  const SpoolStats st = spool->stats();
  CHECK(st.bytes == bytes_on_disk(o.dir));
  CHECK(st.dropped > 0);
  CHECK(st.dropped + st.depth == kRecords);
  CHECK(st.dropped_bytes == st.dropped * (Spool::kHeaderBytes + kPayload));
  CHECK(st.acked == 0);
  CHECK(st.acked_seq == st.dropped);  // moved past what was dropped
  // Segments are at most max_bytes / 4 = 16 KiB: at most 4 of them fit, plus the active one.
  for (const auto& p : segment_files(o.dir)) CHECK(fs::file_size(p) <= o.max_bytes / 4);
  CHECK(segment_files(o.dir).size() <= 5);

  CHECK(spool->take_dropped() == st.dropped);
  CHECK(spool->take_dropped() == 0);

  auto rest = spool->peek(kRecords, 1 << 30);
  REQUIRE(rest.size() == st.depth);
  CHECK(rest.front().seq == st.dropped + 1);
  CHECK(rest.back().seq == kRecords);
  for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].seq == rest.front().seq + i);
  for (const auto& r : rest) CHECK(r.payload == payload_for(r.seq, kPayload));

  // Delivered as fast as appended, nothing is dropped.
  spool->ack(kRecords);
  for (uint64_t i = kRecords + 1; i <= 3 * kRecords; ++i) {
    REQUIRE(spool->append(payload_for(i, kPayload)) == i);
    spool->ack(i);
  }
  CHECK(spool->stats().dropped == st.dropped);
  CHECK(spool->take_dropped() == 0);
}

TEST_CASE("spool: reopened with a smaller max_bytes, it shrinks at the next append") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 16 << 10;
  {
    auto spool = must_open(o);
    for (uint64_t i = 1; i <= 500; ++i) spool->append(payload_for(i, 600));
  }
  o.max_bytes = 64 << 10;
  auto spool = must_open(o);
  CHECK(spool->stats().bytes > o.max_bytes);
  CHECK(spool->append(payload_for(501, 600)) == 501);
  CHECK(spool->stats().bytes <= o.max_bytes);
  CHECK(spool->take_dropped() > 0);
}

TEST_CASE("spool: segments rotate, batches cross them, acked ones are deleted") {
  TempDir t;
  SpoolOptions o = options_in(t);
  o.segment_bytes = 4096;
  auto spool = must_open(o);
  // 516 bytes a record: 7 to a 4 KiB segment.
  for (uint64_t i = 1; i <= 70; ++i) REQUIRE(spool->append(payload_for(i, 500)) == i);
  auto segs = segment_files(o.dir);
  CHECK(segs.size() == 10);
  CHECK(segs[1].filename() == "00000000000000000008.seg");
  for (const auto& p : segs) CHECK(fs::file_size(p) <= 4096);

  auto all = spool->peek(100, 1 << 20);
  REQUIRE(all.size() == 70);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);

  spool->ack(10);  // the first segment (1-7) is delivered, the second (8-14) is not
  CHECK(segment_files(o.dir).size() == 9);
  auto next = spool->peek(5, 1 << 20);
  REQUIRE(next.size() == 5);
  CHECK(next[0].seq == 11);
  CHECK(next[4].seq == 15);  // crosses into the third segment

  spool->ack(35);
  CHECK(segment_files(o.dir).size() == 5);
  spool->ack(70);
  CHECK(segment_files(o.dir).size() == 1);  // the active one stays
  CHECK(spool->stats().bytes == bytes_on_disk(o.dir));
  CHECK(spool->stats().depth == 0);
}

TEST_CASE("spool: one producer and one consumer thread deliver every seq once, in order") {
  for (Sync sync : {Sync::kNever, Sync::kInterval}) {
    TempDir t;
    SpoolOptions o = options_in(t, sync);
    o.segment_bytes = 64 << 10;
    o.sync_interval = 5ms;
    auto spool = must_open(o);
    constexpr uint64_t kRecords = 20000;

    std::atomic<bool> producer_ok{true};
    std::thread producer([&] {
      for (uint64_t i = 1; i <= kRecords; ++i) {
        if (spool->append(payload_for(i)) != i) producer_ok = false;
      }
    });
    std::atomic<bool> stop_stats{false};
    std::thread watcher([&] {
      while (!stop_stats) {
        const SpoolStats st = spool->stats();
        if (st.acked_seq > st.last_seq) producer_ok = false;
        std::this_thread::yield();
      }
    });

    uint64_t expect = 1;
    bool in_order = true;
    bool payloads_ok = true;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (expect <= kRecords && std::chrono::steady_clock::now() < deadline) {
      if (!spool->wait(100ms)) continue;
      auto batch = spool->peek(64, 64 << 10);
      for (const auto& r : batch) {
        if (r.seq != expect) in_order = false;
        if (r.payload != payload_for(r.seq)) payloads_ok = false;
        expect = r.seq + 1;
      }
      if (!batch.empty()) spool->ack(batch.back().seq);
    }
    producer.join();
    stop_stats = true;
    watcher.join();

    CHECK(producer_ok);
    CHECK(in_order);
    CHECK(payloads_ok);
    CHECK(expect == kRecords + 1);
    const SpoolStats st = spool->stats();
    CHECK(st.acked == kRecords);
    CHECK(st.dropped == 0);
    CHECK(st.depth == 0);
    CHECK(segment_files(o.dir).size() == 1);
  }
}

TEST_CASE("spool: wait wakes on append and on close") {
  TempDir t;
  auto spool = must_open(options_in(t));
  CHECK_FALSE(spool->wait(10ms));

  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = spool->wait(10s); });
  std::this_thread::sleep_for(20ms);
  spool->append("x");
  waiter.join();
  CHECK(woke);
  spool->ack(1);

  const auto start = std::chrono::steady_clock::now();
  std::thread closer([&] { woke = spool->wait(10s); });
  std::this_thread::sleep_for(20ms);
  spool->close();
  closer.join();
  CHECK_FALSE(woke);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK_FALSE(spool->wait(10s));  // returns at once after close
  spool->append("y");
  CHECK(spool->wait(10s));
}

TEST_CASE("spool: every sync mode keeps its records and cursor") {
  for (Sync sync : {Sync::kNever, Sync::kInterval, Sync::kAlways}) {
    TempDir t;
    SpoolOptions o = options_in(t, sync);
    o.sync_interval = 0ms;
    o.segment_bytes = 4096;
    {
      auto spool = must_open(o);
      for (uint64_t i = 1; i <= 30; ++i) REQUIRE(spool->append(payload_for(i)) == i);
      spool->ack(12);
      spool->sync();
      CHECK(spool->last_error().empty());
    }
    auto spool = must_open(o);
    CHECK(spool->stats().acked_seq == 12);
    auto rest = peek_all(*spool);
    REQUIRE(rest.size() == 18);
    CHECK(rest.front().seq == 13);
    check_payloads(rest);
  }
}

TEST_CASE("spool: an oversized payload is refused and counted") {
  TempDir t;
  {
    auto spool = must_open(options_in(t));
    CHECK(spool->max_payload() == Spool::kMaxPayload);
    CHECK(spool->append(std::string(Spool::kMaxPayload + 1, 'x')) == 0);
    SpoolStats st = spool->stats();
    CHECK(st.write_errors == 1);
    CHECK(st.oversized == 1);
    CHECK(st.last_seq == 0);
    CHECK(spool->last_error().find("larger than") != std::string::npos);
    // The largest one is taken, alone in a segment bigger than segment_bytes.
    CHECK(spool->append(std::string(Spool::kMaxPayload, 'y')) == 1);
    CHECK(spool->append("small") == 2);
    auto all = peek_all(*spool);
    REQUIRE(all.size() == 2);
    CHECK(all[0].payload.size() == Spool::kMaxPayload);
    CHECK(all[1].payload == "small");
  }
  TempDir t2;
  SpoolOptions o = options_in(t2);
  o.max_bytes = 64 << 10;
  auto spool = must_open(o);
  CHECK(spool->max_payload() == (16 << 10) - Spool::kHeaderBytes);
  CHECK(spool->append(std::string(spool->max_payload() + 1, 'x')) == 0);
  CHECK(spool->append(std::string(spool->max_payload(), 'x')) == 1);
  CHECK(spool->stats().bytes <= o.max_bytes);
}

TEST_CASE("spool: a failed write is cut back and the spool stays consistent") {
  TempDir t;
  const SpoolOptions o = options_in(t);
  // RLIMIT_FSIZE makes write(2) stop part way through a record (then fail with EFBIG), as
  // a full disk would. In a child, so the limit and SIGXFSZ stay out of this process.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string error;
    auto spool = Spool::open(o, error);
    if (!spool) _exit(2);
    for (uint64_t i = 1; i <= 10; ++i) {
      if (spool->append(payload_for(i, 600)) != i) _exit(3);
    }
    const auto segs = segment_files(o.dir);
    if (segs.size() != 1) _exit(4);
    const uint64_t size = fs::file_size(segs[0]);
    signal(SIGXFSZ, SIG_IGN);
    rlimit saved{};
    getrlimit(RLIMIT_FSIZE, &saved);
    rlimit small = saved;
    small.rlim_cur = size + 300;
    if (setrlimit(RLIMIT_FSIZE, &small) != 0) _exit(5);
    if (spool->append(payload_for(11, 600)) != 0) _exit(6);
    if (fs::file_size(segs[0]) != size) _exit(7);
    const SpoolStats st = spool->stats();
    if (st.write_errors != 1 || st.last_seq != 10) _exit(8);
    if (spool->last_error().find(segs[0].string()) == std::string::npos) _exit(9);
    if (setrlimit(RLIMIT_FSIZE, &saved) != 0) _exit(10);
    if (spool->append(payload_for(11, 600)) != 11) _exit(11);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  auto spool = must_open(o);
  CHECK(spool->stats().corrupt == 0);
  auto all = peek_all(*spool);
  REQUIRE(all.size() == 11);
  for (const auto& r : all) CHECK(r.payload == payload_for(r.seq, 600));
}

TEST_CASE("spool: a directory it cannot use fails open with a sentence naming it") {
  TempDir t;
  const fs::path file = t.path / "plain-file";
  write_file(file, "x");
  std::string error;

  SpoolOptions o;
  o.dir = (file / "spool").string();
  CHECK_FALSE(Spool::open(o, error));
  CHECK(error.find(file.string()) != std::string::npos);
  CHECK(error.find("Not a directory") != std::string::npos);

  o.dir = file.string();
  error.clear();
  CHECK_FALSE(Spool::open(o, error));
  CHECK(error.find(file.string()) != std::string::npos);
  CHECK(error.find("not a directory") != std::string::npos);

  o.dir.clear();
  error.clear();
  CHECK_FALSE(Spool::open(o, error));
  CHECK_FALSE(error.empty());

  if (geteuid() != 0) {  // root writes anywhere
    const fs::path ro = t.path / "read-only";
    fs::create_directory(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    o.dir = ro.string();
    error.clear();
    CHECK_FALSE(Spool::open(o, error));
    CHECK(error.find(ro.string()) != std::string::npos);
    fs::permissions(ro, fs::perms::owner_all);
  }
}

// A durable, bounded, append-only queue of events for one sink. The sink's sender reads
// from the acknowledged cursor on, delivers, and acknowledges; what was appended survives
// `kill -9` of the agent (each append is a write(2) before it returns) and, with fsync,
// a power cut. Delivery is at least once: a record sent but not yet acknowledged when the
// agent dies is sent again after restart (receivers dedup by the event's `event_id`).
//
// On disk: DIR/<first seq, 20 digits>.seg segment files of records
//   [u32 payload length][u32 CRC-32C of seq+payload][u64 seq][payload]
// and DIR/cursor (the last acknowledged seq, replaced atomically). A torn or corrupt tail
// found at open is cut off and counted. When the spool would exceed `max_bytes`, the oldest
// segment goes, delivered or not: its undelivered records are counted as dropped.
//
// Also in DIR: `lock` (flock'd while a Spool has the directory open, so two agents or two
// sinks never share one), `cursor.tmp` (removed at open) and `*.seg.bad` (a segment set
// aside at open because its seqs overlap an older segment's; never read again). The cursor
// file holds the seq as decimal text and a newline. Every other file is ignored.
//
// Recovery at open: segments are taken in order of their first seq. In each, records are
// read while they are whole, their length is at most kMaxPayload, their CRC matches and
// their seq is the next one; the segment is cut (ftruncate) at the first that is not, and
// what was cut is counted in `corrupt` (each record-shaped piece after the cut is one, a
// torn tail is one). Later segments are kept: the records lost in a cut are a gap in the
// seqs, never a reuse. Seqs never go backwards: the newest segment is named after the next
// seq even while empty, and the cursor file covers a spool whose segments were all acked.
//
// Size bound: segment_bytes is clamped to [kMinSegmentBytes, max_bytes / 4] (and at most
// 1 GiB), max_bytes to at least 4 * kMinSegmentBytes, and a payload to max_payload()
// (kMaxPayload, or less so that a record fits in max_bytes / 4). After every append, the
// segments together hold at most max_bytes (stats().bytes <= max_bytes); a spool reopened
// with a smaller max_bytes shrinks at its next append.
//
// The cursor (stats().acked_seq) moves on ack, and also past records dropped for room and
// over seqs lost in a cut (those moves are not written to DIR/cursor until the next ack or
// sync(); after a restart the oldest segment's first seq implies them). depth is
// last_seq - cursor. An fsync that fails after a record was written counts in write_errors
// but append still returns the seq: the record is in the spool and will be delivered.
// Each ack that moves the cursor rewrites DIR/cursor (a rename: tens of microseconds on
// ext4), so a sender should ack per batch, not per record.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::sinks {

struct SpoolOptions {
  std::string dir;                      // created (0700, with parents) when missing
  uint64_t max_bytes = 256ull << 20;    // all segments together
  uint64_t segment_bytes = 8ull << 20;  // a new segment starts past this size
  enum class Sync { kNever, kInterval, kAlways };
  // kNever: write(2) only (survives kill -9, not a power cut); kInterval: fsync at most
  // every sync_interval (checked on append and on ack); kAlways: fsync every append.
  Sync sync = Sync::kInterval;
  std::chrono::milliseconds sync_interval{1000};
};

struct SpoolRecord {
  uint64_t seq = 0;
  std::string payload;
};

struct SpoolStats {
  uint64_t appended = 0;       // records appended since open
  uint64_t acked = 0;          // records acknowledged since open
  uint64_t dropped = 0;        // undelivered records removed because the spool was full
  uint64_t dropped_bytes = 0;  // on disk (headers included) of the dropped records
  uint64_t corrupt = 0;        // torn or corrupt records cut off at open
                               // (and records found corrupt by peek, which skips them)
  uint64_t write_errors = 0;   // appends that failed (disk full, I/O error)
  uint64_t oversized = 0;      // of which: refused because the payload was too large
  uint64_t bytes = 0;          // on disk now, all segments
  uint64_t depth = 0;          // records not yet acknowledged
  uint64_t last_seq = 0;       // the newest record's seq (0: none ever)
  uint64_t acked_seq = 0;      // the cursor
};

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start): crc32c(crc32c(0, a),
// b) == crc32c(0, a + b). SSE4.2 when the CPU has it, slice-by-8 otherwise.
uint32_t crc32c(uint32_t crc, std::string_view data);
// The table-driven implementation alone (tests compare both).
uint32_t crc32c_portable(uint32_t crc, std::string_view data);

class Spool {
 public:
  static constexpr size_t kMaxPayload = 16u << 20;    // the largest payload ever accepted
  static constexpr uint64_t kMinSegmentBytes = 4096;  // segment_bytes is at least this
  static constexpr size_t kHeaderBytes = 16;          // on disk before each payload

  // Opens or creates the spool in options.dir, recovering what is there. Null and `error`
  // (a sentence naming the path and what to do) when it cannot.
  static std::unique_ptr<Spool> open(const SpoolOptions& options, std::string& error);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends one record; returns its seq (1, 2, 3, … continuing across restarts), or 0 when
  // it could not be written (counted in write_errors; last_error() says why). Thread-safe.
  uint64_t append(std::string_view payload);

  // Up to max_records records (and about max_bytes of payload, at least one record) after
  // the cursor, in seq order, from the first not yet acknowledged. Does not move the cursor:
  // calling it again without ack returns the same records (retry after a failed send).
  std::vector<SpoolRecord> peek(size_t max_records, size_t max_bytes);

  // Every record up to and including `seq` was delivered: the cursor moves and is persisted;
  // segments wholly delivered are deleted.
  void ack(uint64_t seq);

  // Waits until a record newer than the cursor exists, close() is called, or the timeout.
  // Returns true when there is something to peek.
  bool wait(std::chrono::milliseconds timeout);
  // Wakes every waiter; later waits return at once.
  void close();

  // Undelivered records dropped because the spool was full, since the last call.
  uint64_t take_dropped();
  // fsync the active segment and the cursor now (graceful shutdown).
  void sync();

  SpoolStats stats() const;
  std::string last_error() const;
  const std::string& dir() const;
  // The largest payload append() takes with these options (see "Size bound" above).
  size_t max_payload() const;

 private:
  struct Impl;
  explicit Spool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentwall::sinks

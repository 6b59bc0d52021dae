// The recording file format (docs/RECORD.md): the raw capture stream with the
// process metadata needed to replay it without a kernel.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "agent/capture/chunk.h"

namespace agentwall::record {

inline constexpr char kMagic[8] = {'A', 'W', 'R', 'E', 'C', '0', '1', '\n'};
inline constexpr uint32_t kMaxRecordBody = 1 << 20;

enum class RecordType : uint16_t {
  kProcess = 1,  // JSON object
  kChunk = 2,    // fixed little-endian header + data
  kSni = 3,      // JSON object
  kClose = 4,    // JSON object
};

// Writes the capture stream to a file. Errors (full disk, closed file) are counted,
// reported by error(), and never throw into the capture path.
class Writer final : public CaptureSink {
 public:
  // Opens `path` for writing (truncating). ok() tells whether it worked.
  explicit Writer(const std::string& path);
  ~Writer() override;
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  bool ok() const { return file_ != nullptr && error_.empty(); }
  const std::string& error() const { return error_; }
  uint64_t records_written() const { return records_; }
  uint64_t records_lost() const { return lost_; }
  void flush();

  void on_process(const ProcessInfo& p) override;
  void on_chunk(const TlsChunk& c) override;
  void on_sni(const TlsSni& s) override;
  void on_close(const TlsClose& c) override;

 private:
  void write_record(RecordType type, const std::string& body);

  std::FILE* file_ = nullptr;
  std::string path_;
  std::string error_;
  std::string scratch_;
  uint64_t records_ = 0;
  uint64_t lost_ = 0;
};

struct ReadResult {
  uint64_t records = 0;
  std::string error;  // empty when the whole file was read
  bool ok() const { return error.empty(); }
};

// Reads `path` and hands every record to `sink`, in file order. Stops at the first
// malformed record and says where and what (a recording cut short by a crash or a
// full disk still replays up to its last whole record).
ReadResult replay_file(const std::string& path, CaptureSink& sink);

// Encoding of one chunk record body (exposed for tests).
std::string encode_chunk(const TlsChunk& c);
// Decodes a chunk body; its data views point into `body`. False when malformed.
bool decode_chunk(std::string_view body, TlsChunk& out, std::string& comm_storage);

}  // namespace agentwall::record

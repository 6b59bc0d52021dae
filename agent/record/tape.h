// A recording held in memory: replayable any number of times, and editable (tests cut,
// re-split and drop records to make the traffic a decoder must survive).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "agent/capture/chunk.h"
#include "agent/record/recording.h"

namespace agentwall::record {

struct OwnedChunk {
  TlsChunk chunk;  // data and comm point into the strings below once played
  std::string data;
  std::string comm;
};

using TapeRecord = std::variant<ProcessInfo, OwnedChunk, TlsSni, TlsClose>;

class Tape final : public CaptureSink {
 public:
  std::vector<TapeRecord> records;
  uint64_t bytes = 0;  // plaintext bytes in the chunks

  // Loads a recording file; false (with `error` set) when it cannot be read whole.
  bool load(const std::string& path, std::string& error);

  void on_process(const ProcessInfo& p) override { records.emplace_back(p); }
  void on_chunk(const TlsChunk& c) override;
  void on_sni(const TlsSni& s) override { records.emplace_back(s); }
  void on_close(const TlsClose& c) override { records.emplace_back(c); }

  // Plays records [begin, end) into `sink`, connection ids shifted by `conn_base` (so that
  // repeated plays into one pipeline are new connections).
  void play(CaptureSink& sink, uint64_t conn_base = 0, size_t begin = 0,
            size_t end = SIZE_MAX) const;
};

}  // namespace agentwall::record

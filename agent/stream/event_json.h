// The `process` and `connection` objects every event about traffic carries (docs/EVENTS.md).
#pragma once

#include "agent/capture/chunk.h"
#include "agent/common/json_writer.h"
#include "agent/stream/tracker.h"

namespace agentwall::stream {

void process_json(JsonWriter& w, const ProcessInfo& p);
void connection_json(JsonWriter& w, const Connection& c);

}  // namespace agentwall::stream

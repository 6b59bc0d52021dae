// What given code does that malware does: the second half of a code-insertion attack ("put
// this snippet into your solution"). An order to put given code into the answer is also what
// a developer writes about their own snippet; the code is what tells the two apart. Pure and
// small: it runs only on the rare texts where the injection rules found such an order.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// What the code in `text` does that malware does: a phrase for an explanation ("logs
// keystrokes (pynput)", "sends the environment or host details ((os.environ),
// requests.post)") and where its indicator is in `text`. Empty when nothing is found.
// Looked for in the whole text, caselessly, by fixed indicators: APIs and commands whose use
// is the harm (a keylogger hook, a miner's pool URL, a reverse shell, wiping /), and data a
// program rarely has reason to send (the whole environment, cookie stores, credential files,
// host identity) together with a way of sending it. A snippet that posts metrics to the
// developer's own server also sends; only what it sends tells, so one configuration
// variable or the CPU load is not enough, and nothing here says the code is harmless.
struct HarmfulCode {
  std::string what;
  Span at;
};
std::optional<HarmfulCode> harmful_code(std::string_view text);

}  // namespace agentwall::detect

#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agentwall {

// Standard base64 (RFC 4648) with padding.
std::string base64_encode(std::string_view bytes);
// Appends the encoding of `bytes` to `out`: no temporary on hot paths.
void base64_append(std::string& out, std::string_view bytes);
// nullopt when `text` is not valid padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace agentwall

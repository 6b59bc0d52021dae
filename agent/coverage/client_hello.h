// The server name a TLS ClientHello carries (its server_name extension), read from the first
// bytes a process writes on a new TCP connection (coverage view). It names the peer for any
// TLS stack, seen or not: rustls in a static Rust binary, an unknown library, a stack whose
// SNI call is not probed. Pure and bounds-checked: a truncated or hostile record gives
// nothing, never an out-of-bounds read.
#pragma once

#include <string>
#include <string_view>

namespace agentwall::coverage {

// Whether `bytes` start like a TLS handshake record holding a ClientHello (content type 22,
// major version 3, handshake type 1): what is worth handing to client_hello_sni.
bool looks_like_client_hello(std::string_view bytes);

// The host name of the server_name extension (type 0, host_name entry), lower case, when
// `record` holds a ClientHello whose extensions reach that far and the name is a plausible DNS
// name (letters, digits, '-', '.', '_'; at most 253 bytes). Empty otherwise: not TLS, no SNI
// (an IP-literal connection), or cut before it.
std::string client_hello_sni(std::string_view record);

}  // namespace agentwall::coverage

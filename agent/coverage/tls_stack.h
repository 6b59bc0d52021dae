// What TLS implementation a process carries, for the coverage view's "why is its content not
// visible": read from the libraries it maps and from the bytes of its executable, never run.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace agentwall::coverage {

struct TlsStack {
  std::string name;    // "OpenSSL (shared)", "Go crypto/tls", "unknown", ...
  std::string reason;  // why its plaintext is not captured, in words a user acts on
};

// From the executable's bytes (`image`, the whole file) and the paths of the shared objects
// the process maps (empty when it is gone).
// `located_by_signature`: the capture found the executable's BoringSSL or OpenSSL
// SSL_write/SSL_read, or rustls's aws-lc EVP_AEAD_CTX_seal/open, by signature
// (agent/elf/boringssl_sig.h) and attached them.
TlsStack identify_tls_stack(std::span<const uint8_t> image,
                            const std::vector<std::string>& mapped_libraries,
                            bool located_by_signature = false);

// The same from files: the executable at `exe_path` (mapped read-only) and /proc/PID/maps
// while the process lives. Files that cannot be read give "unknown" with the reason.
TlsStack identify_tls_stack(const std::string& exe_path, uint32_t pid);

}  // namespace agentwall::coverage

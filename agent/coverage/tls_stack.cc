#include "agent/coverage/tls_stack.h"

#include <string.h>

#include <cstring>
#include <memory>
#include <string_view>

#include "agent/elf/boringssl_sig.h"
#include "agent/elf/image.h"
#include "agent/elf/symbols.h"
#include "agent/proc/procfs.h"

namespace agentwall::coverage {
namespace {

// Read in windows whose pages are handed back as it goes: the executable may be 300 MB.
bool contains(std::span<const uint8_t> image, std::string_view marker) {
  elf::detail::PageRelease pages(image);
  return elf::detail::find_bytes(image, image.data(), marker, pages) != nullptr;
}

std::string_view basename_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

TlsStack identify_tls_stack(std::span<const uint8_t> image,
                            const std::vector<std::string>& mapped_libraries,
                            bool located_by_signature) {
  // A shared TLS library the agent attaches to: the process's calls went elsewhere.
  for (const std::string& lib : mapped_libraries) {
    const std::string_view base = basename_of(lib);
    if (base.starts_with("libssl.so"))
      return {"OpenSSL (shared)",
              "maps " + lib +
                  ", which is attached, but none of its SSL_read/SSL_write calls "
                  "was seen (its attach failed, or the process does TLS another way)"};
    if (base.starts_with("libgnutls.so"))
      return {"GnuTLS (shared)", "maps " + lib +
                                     ", which is attached, but none of its gnutls_record_send/"
                                     "recv calls was seen"};
    if (base.starts_with("libssl3.so"))
      return {"NSS", "maps " + lib +
                         ", which is attached with NSPR's libnspr4, but no PR_Write/PR_Read/"
                         "PR_Send/PR_Recv call on an NSS SSL socket was seen (its SSL sockets "
                         "were made before the agent started, or it does TLS another way)"};
  }
  for (const std::string& lib : mapped_libraries) {
    const std::string_view base = basename_of(lib);
    if (base.starts_with("libnss3.so"))
      return {"NSS", "maps NSS (" + std::string(base) +
                         ") without its TLS library libssl3.so: its TLS is not NSS's"};
    if (base.starts_with("libjvm.so"))
      return {"Java (JSSE)", "Java's TLS (JSSE) is not captured by this version"};
  }
  if (image.empty()) return {"unknown", "the executable could not be read"};
  const elf::LookupResult syms = elf::find_functions_in_image(
      image, {"SSL_write", "SSL_read", "gnutls_record_send", "crypto/tls.(*Conn).Write"},
      "executable");
  const bool openssl_symbols = syms.offsets.count("SSL_write") && syms.offsets.count("SSL_read");
  if (contains(image, "\xff Go buildinf:") || contains(image, ".gopclntab") ||
      syms.offsets.count("crypto/tls.(*Conn).Write"))
    return {"Go crypto/tls",
            "Go's crypto/tls is captured in x86-64 executables of Go 1.17 or later; this one "
            "was not attached (another machine, an older Go, its functions not found, or the "
            "attach failed: see the agent's log) or its calls were not seen"};
  if (contains(image, "BoringSSL")) {
    if (openssl_symbols)
      return {"BoringSSL (linked in)",
              "its SSL_write/SSL_read are exported, but the attach "
              "failed or no call was seen"};
    if (located_by_signature)
      return {"BoringSSL (linked in, stripped; located by signature)",
              "its SSL_write/SSL_read were located by their code and attached, but no call "
              "was seen"};
    return {"BoringSSL (linked in, stripped)",
            "BoringSSL is linked into the executable with its symbols stripped: SSL_write and "
            "SSL_read cannot be found by name"};
  }
  if (contains(image, "rustls")) {
    if (located_by_signature)
      return {"rustls (aws-lc, stripped; located by signature)",
              "its aws-lc EVP_AEAD_CTX_seal/open were located by their code and attached, but "
              "no record was seen"};
    if (contains(image, "/src/crypto/aws_lc_rs/"))
      return {"rustls (aws-lc)",
              "rustls over aws-lc is captured at aws-lc's EVP_AEAD_CTX_seal/open, located by "
              "their code; in this executable they were not (see the agent's log)"};
    return {"rustls",
            "rustls without its aws-lc-rs provider (ring, or another) is not captured by this "
            "version"};
  }
  // OpenSSL's version text is only linked in when used; the source file names its error
  // reporting carries always are.
  if (contains(image, "ssl/ssl_lib.c") || contains(image, "OpenSSL 3.") ||
      contains(image, "OpenSSL 1.")) {
    if (openssl_symbols)
      return {"OpenSSL (linked in)",
              "its SSL_write/SSL_read are exported, but the attach "
              "failed or no call was seen"};
    if (located_by_signature)
      return {"OpenSSL (linked in, stripped; located by signature)",
              "its SSL_write/SSL_read were located by their code and attached, but no call "
              "was seen"};
    return {"OpenSSL (linked in, stripped)",
            "OpenSSL is linked into the executable with its symbols stripped: SSL_write and "
            "SSL_read cannot be found by name"};
  }
  return {"unknown", "no TLS library the agent knows is mapped or linked in"};
}

TlsStack identify_tls_stack(const std::string& exe_path, uint32_t pid) {
  std::vector<std::string> libs;
  for (const proc::MapsEntry& m : proc::read_maps(pid)) {
    if (m.path.empty() || m.path.front() != '/' || m.path.find(".so") == std::string::npos)
      continue;
    if (libs.empty() || libs.back() != m.path) libs.push_back(m.path);
  }
  // The live process's own executable first: its path may have been replaced or removed.
  auto file = std::make_unique<elf::detail::MappedFile>("/proc/" + std::to_string(pid) + "/exe");
  if (!file->error().empty() && !exe_path.empty())
    file = std::make_unique<elf::detail::MappedFile>(exe_path);
  if (!file->error().empty() || file->bytes().empty()) return identify_tls_stack({}, libs);
  return identify_tls_stack(file->bytes(), libs, elf::was_located(file->device(), file->inode()));
}

}  // namespace agentwall::coverage

// BoringSSL linked into a stripped executable (Bun, and so Claude Code's native binary): where
// SSL_write and SSL_read are, found by what their code does rather than by name or by a table
// of offsets per build.
//
// BoringSSL reports errors with OPENSSL_PUT_ERROR(SSL, reason), a call of
// ERR_put_error(ERR_LIB_SSL = 16, [0,] reason, __FILE__, __LINE__). Each such call loads the
// address of the source file's name ("…/ssl/ssl_lib.cc", kept in .rodata: no strip removes it)
// next to the library and reason constants. The set of reasons a function raises from
// ssl_lib.cc identifies it; line numbers and addresses, which change with every release, are
// not used:
//   SSL_write       raises SSL_R_UNINITIALIZED, SSL_R_SSL_HANDSHAKE_FAILURE and
//                   SSL_R_BAD_LENGTH (and ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED for QUIC);
//   ssl_read_impl   raises SSL_R_UNINITIALIZED and SSL_R_SSL_HANDSHAKE_FAILURE, not BAD_LENGTH;
//   SSL_read        calls ssl_read_impl and itself raises at most
//                   ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED (SSL_peek's QUIC check, inlined);
//   SSL_set_tlsext_host_name  raises SSL_R_SSL3_EXT_INVALID_SERVERNAME (an empty or too long
//                   name), the one function of ssl_lib.cc that does, and at most
//                   ERR_R_MALLOC_FAILURE besides (older releases). It gives the SNI; unlike
//                   SSL_write/SSL_read it is optional (not found, the connections have none)
//                   and, one reason being a weak signature, taken only when int3 padding
//                   bounds it (clang/LLD, as Bun is built).
// Function bounds come from the int3 padding between functions (clang/LLD) and the entry is
// the last direct call target before the function's first error report: SSL_write and SSL_read
// must be called (not inlined) for their entry and return probes to mean anything.
//
// x86-64 only. Each match must be unique; anything else is "not found" with the reason.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace agentwall::elf {

struct SslSignatureLookup {
  bool boringssl = false;         // the file carries BoringSSL's ssl/ssl_lib.cc file name
  bool openssl = false;           // ... or, not BoringSSL's, OpenSSL's ssl/ssl_lib.c
  uint64_t write_offset = 0;      // file offset of SSL_write's first instruction; 0: not found
  uint64_t read_offset = 0;       // the same for SSL_read
  uint64_t host_name_offset = 0;  // SSL_set_tlsext_host_name's; 0: not found (BoringSSL only)
  uint64_t write_address = 0;     // their virtual addresses
  uint64_t read_address = 0;
  uint64_t host_name_address = 0;
  std::string detail;  // why nothing was found, or how much was examined (for the log)
  std::string error;   // the file could not be read as ELF; "" otherwise
  bool found() const { return write_offset != 0 && read_offset != 0; }
};

// Looks for BoringSSL's (or OpenSSL 3's, see match_openssl_function) SSL_write/SSL_read in an
// x86-64 ELF image (the whole file). A file with neither's ssl_lib.c(c) name is not an error:
// boringssl and openssl are false.
SslSignatureLookup find_ssl_by_signature_in_image(std::span<const uint8_t> image,
                                                  const std::string& display_name);
SslSignatureLookup find_ssl_by_signature(const std::string& path);

// The files (st_dev, st_ino) whose SSL_write/SSL_read the capture located by signature and
// attached: the coverage view names their stack from this rather than scanning again (on the
// thread that handles events). Thread-safe; bounded.
void remember_located(uint64_t dev, uint64_t ino);
bool was_located(uint64_t dev, uint64_t ino);

// rustls with its default crypto provider, aws-lc-rs, linked into a stripped Rust executable
// (Codex CLI): the plaintext of each TLS record passes through aws-lc's EVP_AEAD_CTX_seal (the
// record to encrypt, in place) and EVP_AEAD_CTX_open (decrypted in place), C functions with a
// stable ABI, called through FFI and never inlined into Rust. aws-lc reports their errors with
// OPENSSL_PUT_ERROR(CIPHER, reason) naming "…/crypto/fipsmodule/cipher/aead.c", and the reasons
// each raises identify it, as for BoringSSL's SSL_write:
//   EVP_AEAD_CTX_seal   CIPHER_R_TOO_LARGE, CIPHER_R_BUFFER_TOO_SMALL (and OUTPUT_ALIASES_INPUT);
//   EVP_AEAD_CTX_open   CIPHER_R_BAD_DECRYPT, CIPHER_R_BUFFER_TOO_SMALL, not TOO_LARGE;
//   EVP_AEAD_CTX_seal_scatter (rustls's TLS 1.2 records; optional: without it TLS 1.2
//                       connections send unseen) CIPHER_R_INVALID_OPERATION and
//                       OUTPUT_ALIASES_INPUT, not BUFFER_TOO_SMALL.
// Looked for only in a file that also carries rustls's aws-lc-rs provider (its source paths,
// "/src/crypto/aws_lc_rs/", in panic locations): BoringSSL has the same aead.c, and a Bun
// binary's TLS is captured at SSL_write/SSL_read. x86-64 only; function bounds from int3
// padding.
struct AeadSignatureLookup {
  bool rustls_aws_lc = false;  // the file carries rustls's aws-lc-rs provider and aws-lc's aead.c
  uint64_t seal_offset = 0;    // file offsets; 0: not found
  uint64_t open_offset = 0;
  uint64_t seal_scatter_offset = 0;  // 0: not found (TLS 1.2 records are then not seen)
  uint64_t seal_address = 0;         // virtual addresses
  uint64_t open_address = 0;
  uint64_t seal_scatter_address = 0;
  std::string detail;  // how it was found, or why not
  std::string error;   // the file could not be read as ELF
  bool found() const { return seal_offset != 0 && open_offset != 0; }
};

AeadSignatureLookup find_aead_by_signature_in_image(std::span<const uint8_t> image,
                                                    const std::string& display_name);
AeadSignatureLookup find_aead_by_signature(const std::string& path);

// ---- the parts, for tests ---------------------------------------------------------------

// BoringSSL's error codes the signature uses (include/openssl/{err,ssl}.h).
inline constexpr uint32_t kErrLibSsl = 16;
inline constexpr uint32_t kMallocFailure = 65;            // ERR_R_MALLOC_FAILURE
inline constexpr uint32_t kShouldNotHaveBeenCalled = 66;  // ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED
inline constexpr uint32_t kBadLength = 111;               // SSL_R_BAD_LENGTH
inline constexpr uint32_t kInvalidServerName = 213;       // SSL_R_SSL3_EXT_INVALID_SERVERNAME
inline constexpr uint32_t kHandshakeFailure = 215;        // SSL_R_SSL_HANDSHAKE_FAILURE
inline constexpr uint32_t kUninitialized = 226;           // SSL_R_UNINITIALIZED

// aws-lc's (and BoringSSL's) cipher error codes (include/openssl/{err,cipher}.h).
inline constexpr uint32_t kErrLibCipher = 30;
inline constexpr uint32_t kCipherBadDecrypt = 101;
inline constexpr uint32_t kCipherBufferTooSmall = 103;
inline constexpr uint32_t kCipherInvalidOperation = 112;
inline constexpr uint32_t kCipherOutputAliasesInput = 115;
inline constexpr uint32_t kCipherTooLarge = 117;

// One OPENSSL_PUT_ERROR(library, reason) naming the file.
struct ErrorSite {
  uint64_t address = 0;  // of the instruction that loads the file name's address
  uint32_t reason = 0;
  uint64_t function = 0;  // start of the function it is in (after int3 padding); 0: unknown
};

// Every call of ERR_put_error(library, ...) in `code` (x86-64, at virtual address
// `address`) that passes `file_address` as the file: `mov r32, imm32` (non-PIE) or
// `lea r64, [rip + disp32]` (PIE) of the file name, with the library and reason constants
// loaded in the same straight run of instructions.
std::vector<ErrorSite> find_error_sites(std::span<const uint8_t> code, uint64_t address,
                                        uint64_t file_address, uint32_t library = kErrLibSsl);

// The start of the function holding `at`: the first 16-byte aligned address after a run of
// int3 padding, looking back at most 64 KiB; 0 when there is none.
uint64_t function_start(std::span<const uint8_t> code, uint64_t address, uint64_t at);

struct SslFunctions {
  uint64_t write = 0;  // virtual addresses; 0: not found
  uint64_t read = 0;
  uint64_t host_name = 0;  // SSL_set_tlsext_host_name, looked for whatever became of the others
  std::string why;         // what did not match (SSL_write, SSL_read)
  std::string host_name_why;
};

// A direct call (e8 rel32): where it is and where it goes.
struct Call {
  uint64_t from = 0;
  uint64_t to = 0;
};

// The direct calls in `code` whose target lies in one of `ranges` ([first, last] each).
std::vector<Call> direct_calls(std::span<const uint8_t> code, uint64_t address,
                               const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

// The signature match over `code` (one executable section). Direct call targets are function
// entries: they bound functions (a function that ends on a 16-byte boundary leaves no padding
// before the next), and SSL_write, SSL_read and SSL_set_tlsext_host_name must be entered by
// one. `extra_calls` adds
// calls from outside `code` (another section, or what a test's piece of code leaves out).
SslFunctions match_ssl_functions(std::span<const uint8_t> code, uint64_t address,
                                 uint64_t file_address, std::span<const Call> extra_calls = {});

struct AeadFunctions {
  uint64_t seal = 0;  // virtual addresses; 0: not found
  uint64_t open = 0;
  uint64_t seal_scatter = 0;  // optional
  std::string why;
};

// The signature match for EVP_AEAD_CTX_seal/open over `code`, `file_address` being aead.c's
// name.
AeadFunctions match_aead_functions(std::span<const uint8_t> code, uint64_t address,
                                   uint64_t file_address);

// OpenSSL 3 linked in and stripped: ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH) in SSL_write and
// SSL_read passes the function's own name (__func__, kept in .rodata) to
// ERR_set_debug(file, line, func). The entry of the one function in `code` that loads
// `name_address` as the third argument with `file_address` (…ssl/ssl_lib.c) as the first:
// the last direct call target before that load, with no function padding in between. 0, and
// why in `why`, when there is not exactly one such load or no such entry.
uint64_t match_openssl_function(std::span<const uint8_t> code, uint64_t address,
                                uint64_t file_address, uint64_t name_address, std::string& why);

}  // namespace agentwall::elf

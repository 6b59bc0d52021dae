// Embeds a file in the executable at build time: AGENTWALL_EMBED(name, "path") puts the file's
// bytes in a read-only section of their own, 16-byte aligned, between the hidden symbols
// name_begin and name_end (an .incbin; the compiler's dependency file does not list it, so the
// build names the file in OBJECT_DEPENDS), and embedded_bytes(name_begin, name_end) views them.
// At namespace scope, outside any namespace.
#pragma once

#include <cstddef>
#include <string_view>

#define AGENTWALL_EMBED(name, path)                                           \
  __asm__(".pushsection .rodata." #name                                       \
          ", \"a\", %progbits\n"                                              \
          ".balign 16\n"                                                      \
          ".globl " #name                                                     \
          "_begin\n"                                                          \
          ".hidden " #name                                                    \
          "_begin\n"                                                          \
          ".globl " #name                                                     \
          "_end\n"                                                            \
          ".hidden " #name "_end\n" #name                                     \
          "_begin:\n"                                                         \
          ".incbin \"" path "\"\n" #name                                      \
          "_end:\n"                                                           \
          ".popsection\n");                                                   \
  extern "C" __attribute__((visibility("hidden"))) const char name##_begin[]; \
  extern "C" __attribute__((visibility("hidden"))) const char name##_end[]

namespace agentwall {

inline std::string_view embedded_bytes(const char* begin, const char* end) {
  return std::string_view(begin, static_cast<size_t>(end - begin));
}

// Gives back the memory pages of embedded bytes once they have been read into structures of
// their own (parsed, deserialized): they are pages of the executable's file, never written,
// so the kernel drops them and, should they be read again, reads them from the file again.
// The model's weights and the rule databases are 15 MB that would otherwise stay resident
// beside their parsed copies. Only whole pages inside `bytes` are given back.
void release_embedded(std::string_view bytes);

}  // namespace agentwall

// Embeds a file in the executable at build time: AGENTWALL_EMBED(name, "path") puts the file's
// bytes in .rodata between the symbols name_begin and name_end (an .incbin; the compiler's
// dependency file does not list it, so the build names the file in OBJECT_DEPENDS), and
// embedded_bytes(name_begin, name_end) views them. At namespace scope, outside any namespace.
#pragma once

#include <cstddef>
#include <string_view>

#define AGENTWALL_EMBED(name, path)     \
  asm(".section .rodata." #name         \
      ",\"a\"\n"                        \
      ".balign 8\n"                     \
      ".global " #name "_begin\n" #name \
      "_begin:\n"                       \
      ".incbin \"" path                 \
      "\"\n"                            \
      ".global " #name "_end\n" #name   \
      "_end:\n"                         \
      ".previous\n");                   \
  extern "C" const char name##_begin[]; \
  extern "C" const char name##_end[]

namespace agentwall {

inline std::string_view embedded_bytes(const char* begin, const char* end) {
  return std::string_view(begin, static_cast<size_t>(end - begin));
}

}  // namespace agentwall

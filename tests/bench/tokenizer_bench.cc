// Tokenizer throughput on one thread: count_tokens over English prose (a file, by default the
// GPL-3 text that Debian's base-files installs, repeated to 8 MiB) and over worst-case runs of
// one character, for both encodings. Prints one JSON line per measurement.
//
//   build/tokenizer_bench [FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/llm/tokenizer/tokenizer.h"

using namespace agentwall::llm;

namespace {

void measure(const char* what, const std::string& text, Encoding enc) {
  count_tokens("warm up", enc);
  double best = 1e9;
  size_t tokens = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    tokens = count_tokens(text, enc);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf(
      "{\"input\":\"%s\",\"encoding\":\"%s\",\"bytes\":%zu,\"tokens\":%zu,\"seconds\":%.4f,"
      "\"mb_per_s\":%.1f}\n",
      what, std::string(to_string(enc)).c_str(), text.size(), tokens, best,
      static_cast<double>(text.size()) / best / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/usr/share/common-licenses/GPL-3";
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  if (!in || contents.str().empty()) {
    std::fprintf(stderr, "tokenizer_bench: cannot read %s\n", path);
    return 1;
  }
  std::string prose;
  while (prose.size() < (8u << 20)) prose += contents.str();
  for (Encoding enc : {Encoding::kO200kBase, Encoding::kCl100kBase}) {
    measure("prose", prose, enc);
    measure("1 MiB of spaces", std::string(1 << 20, ' '), enc);
    measure("1 MiB of 'a'", std::string(1 << 20, 'a'), enc);
  }
}

// Scans of mapped files that hand their pages back as they go (agent/elf/image.h): find_bytes
// reads in windows and must find every occurrence, also one that straddles two windows, and
// what PageRelease hands back must read the same afterwards.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "agent/elf/image.h"
#include "temp_dir.h"

using namespace agentwall::elf::detail;

namespace {

// Every offset at which find_bytes finds `needle` in `range`, from the start.
std::vector<size_t> all_hits(Bytes range, std::string_view needle) {
  PageRelease pages(range);
  std::vector<size_t> hits;
  for (const uint8_t* p = range.data(); (p = find_bytes(range, p, needle, pages)); ++p)
    hits.push_back(static_cast<size_t>(p - range.data()));
  return hits;
}

// A buffer of filler with `needle` at each of `offsets`.
std::vector<uint8_t> with_needles(size_t size, std::string_view needle,
                                  const std::vector<size_t>& offsets) {
  std::vector<uint8_t> bytes(size, 'x');
  for (const size_t at : offsets) std::copy(needle.begin(), needle.end(), bytes.begin() + at);
  return bytes;
}

}  // namespace

TEST_CASE("find_bytes: every occurrence, across window boundaries and at the ends") {
  const size_t w = PageRelease::kEvery;
  const std::string needle = "ssl/ssl_lib.c";
  // At the start, straddling the first and second window boundaries by every amount, near
  // and at the very end.
  std::vector<size_t> offsets = {0, w - 1, 2 * w - needle.size() + 1, 2 * w + 40};
  const size_t size = 3 * w + 77;
  offsets.push_back(size - needle.size());
  const std::vector<uint8_t> bytes = with_needles(size, needle, offsets);
  CHECK(all_hits(bytes, needle) == offsets);

  for (size_t cut = 1; cut < needle.size(); ++cut) {
    CAPTURE(cut);
    const std::vector<uint8_t> one = with_needles(2 * w + 5, needle, {w - cut});
    CHECK(all_hits(one, needle) == std::vector<size_t>{w - cut});
  }
}

TEST_CASE("find_bytes: no occurrence, empty needles and ranges, a start outside") {
  const std::vector<uint8_t> bytes(PageRelease::kEvery * 2 + 3, 'x');
  PageRelease pages(bytes);
  CHECK(find_bytes(bytes, bytes.data(), "y", pages) == nullptr);
  CHECK(find_bytes(bytes, bytes.data(), "", pages) == nullptr);
  CHECK(find_bytes(Bytes(), nullptr, "x", pages) == nullptr);
  CHECK(find_bytes(Bytes(bytes).first(10), bytes.data() + 11, "x", pages) == nullptr);
  CHECK(find_bytes(bytes, bytes.data() + bytes.size() - 1, "xx", pages) == nullptr);
  CHECK(find_bytes(bytes, bytes.data() + bytes.size() - 2, "xx", pages) ==
        bytes.data() + bytes.size() - 2);
}

TEST_CASE("PageRelease: a mapped file reads the same after its pages are handed back") {
  agentwall::test::TempDir dir;
  const std::string needle = "BoringSSL";
  const size_t w = PageRelease::kEvery;
  const std::vector<size_t> offsets = {5, w + 3, 3 * w - 4, 5 * w + 1};
  const std::vector<uint8_t> bytes = with_needles(6 * w, needle, offsets);
  const std::string path = (dir.path / "image").string();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const MappedFile file(path);
  REQUIRE(file.error().empty());
  // Twice: the second scan reads pages the first handed back.
  CHECK(all_hits(file.bytes(), needle) == offsets);
  CHECK(all_hits(file.bytes(), needle) == offsets);
  PageRelease pages(file.bytes().subspan(w));  // found from an address inside the mapping
  pages.release();
  CHECK(std::equal(bytes.begin(), bytes.end(), file.bytes().begin()));
}

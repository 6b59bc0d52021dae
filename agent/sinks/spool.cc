// The per-sink spool: segment files of CRC-checked records, an in-memory offset index per
// segment (4 bytes per record) so peek and ack find the cursor's record without reading
// the disk, and a cursor file replaced by rename. See spool.h for the format and the rules.
#include "agent/sinks/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <system_error>

#include "agent/common/fd_io.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define AGENTWALL_CRC32C_SSE42 1
#endif

namespace agentwall::sinks {
namespace {

// ---- CRC-32C ------------------------------------------------------------------------------

constexpr uint32_t kCastagnoli = 0x82F63B78u;  // the polynomial, bit-reflected

struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
};

constexpr CrcTables make_crc_tables() {
  CrcTables tables;
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ ((c & 1u) ? kCastagnoli : 0u);
    tables.t[0][i] = c;
  }
  // t[k][i]: the CRC register after byte i followed by k zero bytes.
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t prev = tables.t[k - 1][i];
      tables.t[k][i] = (prev >> 8) ^ tables.t[0][prev & 0xFFu];
    }
  }
  return tables;
}

constexpr CrcTables kCrc = make_crc_tables();

uint32_t crc_bytes_portable(uint32_t reg, const uint8_t* p, size_t n) {
  const auto& t = kCrc.t;
  if constexpr (std::endian::native == std::endian::little) {
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
      reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xFFu];
      --n;
    }
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      w ^= reg;
      reg = t[7][w & 0xFFu] ^ t[6][(w >> 8) & 0xFFu] ^ t[5][(w >> 16) & 0xFFu] ^
            t[4][(w >> 24) & 0xFFu] ^ t[3][(w >> 32) & 0xFFu] ^ t[2][(w >> 40) & 0xFFu] ^
            t[1][(w >> 48) & 0xFFu] ^ t[0][w >> 56];
      p += 8;
      n -= 8;
    }
  }
  while (n > 0) {
    reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xFFu];
    --n;
  }
  return reg;
}

#ifdef AGENTWALL_CRC32C_SSE42
__attribute__((target("sse4.2"))) uint32_t crc_bytes_sse42(uint32_t reg, const uint8_t* p,
                                                           size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    reg = _mm_crc32_u8(reg, *p++);
    --n;
  }
  uint64_t wide = reg;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    wide = _mm_crc32_u64(wide, w);
    p += 8;
    n -= 8;
  }
  reg = static_cast<uint32_t>(wide);
  while (n > 0) {
    reg = _mm_crc32_u8(reg, *p++);
    --n;
  }
  return reg;
}

bool cpu_has_sse42() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

// ---- little-endian fields -----------------------------------------------------------------

void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_le32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The record CRC: over the seq's 8 little-endian bytes, then the payload.
uint32_t record_crc(const uint8_t* seq_le, const void* payload, size_t len) {
  const uint32_t c = crc32c(0, {reinterpret_cast<const char*>(seq_le), 8});
  return crc32c(c, {static_cast<const char*>(payload), len});
}

// ---- files --------------------------------------------------------------------------------

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};
using FdPtr = std::shared_ptr<Fd>;

std::string errno_text(int e) {
  return std::error_code(e, std::generic_category()).message();
}

std::string segment_name(uint64_t first_seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 ".seg", first_seq);
  return buf;
}

// "00000000000000000042.seg" -> 42; false for any other name.
bool parse_segment_name(const char* name, uint64_t& first_seq) {
  if (std::strlen(name) != 24 || std::strcmp(name + 20, ".seg") != 0) return false;
  uint64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(name[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  first_seq = v;
  return true;
}

// Reads exactly n bytes at off; false with errno set on error, or errno 0 at end of file.
bool pread_all(int fd, char* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) {
      errno = 0;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

// Reads up to n bytes at off, fewer only at end of file; -1 with errno on error.
ssize_t pread_some(int fd, char* p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

// Sequential views into a file, read in large chunks (recovery scans whole segments).
class ChunkReader {
 public:
  ChunkReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  // n bytes at file offset off (off never goes backwards by more than the last view);
  // null at end of file or on a read error (errno set then, 0 at end of file).
  const uint8_t* view(uint64_t off, size_t n) {
    if (off + n > size_) {
      errno = 0;
      return nullptr;
    }
    if (off < base_ || off + n > base_ + len_) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(n, kChunk), size_ - off));
      if (buf_.size() < want) buf_.resize(want);
      if (!pread_all(fd_, buf_.data(), want, off)) return nullptr;
      base_ = off;
      len_ = want;
    }
    return reinterpret_cast<const uint8_t*>(buf_.data() + (off - base_));
  }

 private:
  static constexpr size_t kChunk = 1u << 20;
  int fd_;
  uint64_t size_;
  std::vector<char> buf_;
  uint64_t base_ = 0;
  size_t len_ = 0;
};

struct Segment {
  uint64_t first_seq = 0;
  std::vector<uint32_t> offsets;  // of record first_seq + i
  uint64_t bytes = 0;             // committed: every record whole
  FdPtr fd;                       // the active one's append fd; others opened on read
  std::string name;

  uint64_t count() const { return offsets.size(); }
  uint64_t end_seq() const { return first_seq + offsets.size(); }  // one past the newest
  uint64_t last_seq() const { return end_seq() - 1; }              // first_seq - 1: empty
  uint64_t record_end(size_t i) const { return i + 1 < offsets.size() ? offsets[i + 1] : bytes; }
};

// What a cut at `off` loses: each record-shaped piece after it, a torn tail as one.
uint64_t count_cut(ChunkReader& reader, uint64_t off, uint64_t size) {
  uint64_t pieces = 0;
  while (off < size) {
    ++pieces;
    const uint8_t* h = reader.view(off, Spool::kHeaderBytes);
    if (!h) break;
    const uint64_t len = get_le32(h);
    if (len > Spool::kMaxPayload || off + Spool::kHeaderBytes + len > size) break;
    off += Spool::kHeaderBytes + len;
  }
  return pieces;
}

}  // namespace

uint32_t crc32c_portable(uint32_t crc, std::string_view data) {
  return ~crc_bytes_portable(~crc, reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

uint32_t crc32c(uint32_t crc, std::string_view data) {
#ifdef AGENTWALL_CRC32C_SSE42
  if (cpu_has_sse42()) {
    return ~crc_bytes_sse42(~crc, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
#endif
  return crc32c_portable(crc, data);
}

// ---- the spool ----------------------------------------------------------------------------

struct Spool::Impl {
  using Clock = std::chrono::steady_clock;

  SpoolOptions opt;  // clamped
  std::string dir;   // as given
  size_t max_payload = 0;
  int dir_fd = -1;
  int lock_fd = -1;

  // Everything below up to cursor_mu is guarded by mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Segment> segs;  // by first seq; back() is the active one, always present
  uint64_t last_seq = 0;
  uint64_t cursor = 0;  // acked, or moved past dropped / unreadable records
  uint64_t bytes = 0;
  bool closed = false;
  bool need_rotate = false;  // the active segment has bytes past `bytes` that would not go
  Clock::time_point last_sync = Clock::now();
  uint64_t appended = 0, acked = 0, dropped = 0, dropped_bytes = 0, pending_dropped = 0;
  uint64_t corrupt = 0, write_errors = 0, oversized = 0;

  // The cursor file; taken after mu is released, never before it.
  std::mutex cursor_mu;
  uint64_t persisted_cursor = 0;

  mutable std::mutex err_mu;  // a leaf: taken with or without the others
  std::string error;

  ~Impl() {
    segs.clear();
    if (lock_fd >= 0) ::close(lock_fd);
    if (dir_fd >= 0) ::close(dir_fd);
  }

  std::string path_of(const std::string& name) const { return dir + "/" + name; }

  void set_error(std::string text) {
    std::lock_guard lk(err_mu);
    error = std::move(text);
  }

  bool sync_due(Clock::time_point now) const { return now - last_sync >= opt.sync_interval; }

  // Starts a new active segment named after the next seq. An empty active segment is
  // replaced in place (it has that name already). mu held.
  bool rotate_locked() {
    const uint64_t first = last_seq + 1;
    Segment& old = segs.back();
    if (old.count() > 0 && opt.sync != SpoolOptions::Sync::kNever && old.fd &&
        ::fdatasync(old.fd->fd) != 0) {
      const int err_no = errno;
      set_error("cannot fsync spool segment " + path_of(old.name) + ": " + errno_text(err_no));
    }
    Segment seg;
    seg.first_seq = first;
    seg.name = segment_name(first);
    const int fd =
        ::openat(dir_fd, seg.name.c_str(), O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err_no = errno;
      set_error("cannot create spool segment " + path_of(seg.name) + ": " + errno_text(err_no) +
                (err_no == ENOSPC ? " (the disk is full)" : ""));
      return false;
    }
    seg.fd = std::make_shared<Fd>(fd);
    if (old.count() == 0) {
      segs.back() = std::move(seg);  // same name, truncated
    } else {
      old.fd.reset();  // a reader reopens it; one held by a peek in flight stays valid
      segs.push_back(std::move(seg));
    }
    need_rotate = false;
    if (opt.sync != SpoolOptions::Sync::kNever) ::fsync(dir_fd);
    return true;
  }

  // Records lost at open (cut, or in a segment set aside) leave gaps in the seqs. When the
  // record after the cursor falls in one, the cursor moves over it, so that depth and wait()
  // never announce records that peek cannot return. mu held.
  void skip_gap_locked() {
    for (const Segment& seg : segs) {
      if (seg.count() == 0 || seg.end_seq() <= cursor + 1) continue;
      if (seg.first_seq > cursor + 1) cursor = seg.first_seq - 1;
      return;
    }
    cursor = last_seq;  // nothing after the cursor exists
  }

  // Removes the oldest segment (not the active one), counting its undelivered records.
  void drop_front_locked() {
    Segment& f = segs.front();
    if (f.count() > 0 && f.last_seq() > cursor) {
      const uint64_t from = std::max(cursor + 1, f.first_seq);
      const uint64_t n = f.end_seq() - from;
      dropped += n;
      pending_dropped += n;
      dropped_bytes += f.bytes - f.offsets[from - f.first_seq];
      cursor = f.last_seq();
    }
    bytes -= f.bytes;
    if (::unlinkat(dir_fd, f.name.c_str(), 0) != 0 && errno != ENOENT) {
      const int err_no = errno;
      set_error("cannot delete spool segment " + path_of(f.name) + ": " + errno_text(err_no));
    }
    segs.pop_front();
    skip_gap_locked();
  }

  // Makes room for a record of rec bytes within max_bytes. mu held.
  bool make_room_locked(uint64_t rec) {
    while (bytes + rec > opt.max_bytes) {
      if (segs.size() > 1) {
        drop_front_locked();
      } else if (segs.back().bytes > 0) {
        if (!rotate_locked()) return false;
      } else {
        break;  // cannot happen: rec <= max_bytes / 4
      }
    }
    return true;
  }

  // Writes DIR/cursor through cursor.tmp and a rename.
  void persist_cursor(uint64_t value, bool durable) {
    std::lock_guard lk(cursor_mu);
    if (value < persisted_cursor || (value == persisted_cursor && !durable)) return;
    char text[32];
    const int n = std::snprintf(text, sizeof text, "%" PRIu64 "\n", value);
    const int fd = ::openat(dir_fd, "cursor.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err_no = errno;
      set_error("cannot write spool cursor " + path_of("cursor.tmp") + ": " + errno_text(err_no));
      return;
    }
    bool ok = write_all(fd, text, static_cast<size_t>(n));
    int e = errno;
    if (ok && durable && ::fsync(fd) != 0) {
      ok = false;
      e = errno;
    }
    ::close(fd);
    if (ok && ::renameat(dir_fd, "cursor.tmp", dir_fd, "cursor") != 0) {
      ok = false;
      e = errno;
    }
    if (!ok) {
      set_error("cannot write spool cursor " + path_of("cursor") + ": " + errno_text(e));
      return;
    }
    if (durable) ::fsync(dir_fd);
    persisted_cursor = value;
  }

  // One attempt at a batch into `out` (empty on entry). True when it skipped a corrupt
  // record at the head and should be called again.
  bool peek_once(size_t max_records, size_t max_bytes, std::vector<SpoolRecord>& out) {
    // Under the lock: which byte ranges hold the batch (from the offset index). Reading
    // happens after, on fds this call holds, so a segment deleted meanwhile still reads.
    struct Span {
      FdPtr fd;
      std::string name;
      uint64_t off = 0, end = 0, first_seq = 0;
      size_t count = 0;
    };
    std::vector<Span> plan;
    {
      std::lock_guard lk(mu);
      uint64_t next = cursor + 1;
      size_t n = 0;
      uint64_t payload = 0;
      for (Segment& seg : segs) {
        if (n >= max_records) break;
        if (seg.end_seq() <= next) continue;
        const size_t i = next > seg.first_seq ? static_cast<size_t>(next - seg.first_seq) : 0;
        size_t j = i;
        bool full = false;
        while (j < seg.count() && n < max_records) {
          const uint64_t len = seg.record_end(j) - seg.offsets[j] - Spool::kHeaderBytes;
          if (n > 0 && payload + len > max_bytes) {
            full = true;
            break;
          }
          payload += len;
          ++n;
          ++j;
        }
        if (j > i) {
          if (!seg.fd) {
            const int fd = ::openat(dir_fd, seg.name.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
              const int err_no = errno;
              set_error("cannot open spool segment " + path_of(seg.name) + ": " +
                        errno_text(err_no));
              break;
            }
            seg.fd = std::make_shared<Fd>(fd);
          }
          plan.push_back(
              {seg.fd, seg.name, seg.offsets[i], seg.record_end(j - 1), seg.first_seq + i, j - i});
        }
        if (full) break;
        next = seg.end_seq();
      }
    }

    out.reserve(std::min<size_t>(max_records, 1024));
    std::vector<char> buf;
    for (const Span& span : plan) {
      const size_t want_bytes = static_cast<size_t>(span.end - span.off);
      if (buf.size() < want_bytes) buf.resize(want_bytes);
      const ssize_t got = pread_some(span.fd->fd, buf.data(), want_bytes, span.off);
      if (got < 0) {
        const int err_no = errno;
        set_error("cannot read spool segment " + path_of(span.name) + ": " + errno_text(err_no));
        return false;
      }
      const size_t size = static_cast<size_t>(got);  // short: the file shrank under us
      size_t at = 0;
      for (size_t k = 0; k < span.count; ++k) {
        const uint64_t seq = span.first_seq + k;
        const auto* h = reinterpret_cast<const uint8_t*>(buf.data() + at);
        bool good = at + Spool::kHeaderBytes <= size;
        uint64_t len = 0;
        if (good) {
          len = get_le32(h);
          good = get_le64(h + 8) == seq && at + Spool::kHeaderBytes + len <= size &&
                 record_crc(h + 8, h + Spool::kHeaderBytes, static_cast<size_t>(len)) ==
                     get_le32(h + 4);
        }
        if (!good) {
          // Changed on disk since it was written or checked at open. At the head of the
          // batch it is skipped (and counted) so that delivery goes on; after it, the batch
          // ends before it, and it is at the head of a later one.
          if (!out.empty()) return false;
          std::lock_guard lk(mu);
          if (cursor + 1 != seq) return true;  // acked or dropped meanwhile: plan again
          cursor = seq;
          skip_gap_locked();
          ++corrupt;
          set_error("spool segment " + path_of(span.name) + ": record " + std::to_string(seq) +
                    " is corrupt on disk; skipped");
          return true;
        }
        out.push_back({seq, std::string(reinterpret_cast<const char*>(h + Spool::kHeaderBytes),
                                        static_cast<size_t>(len))});
        at += Spool::kHeaderBytes + len;
      }
    }
    return false;
  }

  bool recover(std::string& err);
};

namespace {

std::string open_failure(const std::string& dir, const std::string& what, int e) {
  return "cannot use spool directory " + dir + ": " + what + ": " + errno_text(e) +
         "; make it a directory the agent's user can write (mode 0700) or configure another "
         "spool directory";
}

// mkdir -p with mode 0700 for what it creates. On failure `failed` is the component.
bool make_dirs(const std::string& path, std::string& failed, int& err) {
  std::string cur;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (i < path.size()) {
    const size_t j = path.find('/', i);
    const std::string part = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    i = j == std::string::npos ? path.size() : j + 1;
    if (part.empty() || part == ".") continue;
    cur += part;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      failed = cur;
      err = errno;
      return false;
    }
    cur += '/';
  }
  return true;
}

// The cursor file's seq; 0 when missing or unreadable (everything is delivered again).
uint64_t read_cursor_file(int dir_fd) {
  const int fd = ::openat(dir_fd, "cursor", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[64];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return 0;
  uint64_t v = 0;
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == '\n') break;
    if (buf[i] < '0' || buf[i] > '9') return 0;
    const uint64_t d = static_cast<uint64_t>(buf[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return 0;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace

// Reads what DIR holds: the cursor, the segments (cut at their first bad record), then
// picks or creates the active segment and deletes segments with nothing left to deliver.
bool Spool::Impl::recover(std::string& err) {
  ::unlinkat(dir_fd, "cursor.tmp", 0);
  const uint64_t file_cursor = read_cursor_file(dir_fd);
  persisted_cursor = file_cursor;

  std::vector<std::pair<uint64_t, std::string>> found;
  {
    const int dfd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = dfd >= 0 ? ::fdopendir(dfd) : nullptr;
    if (!d) {
      const int e = errno;
      if (dfd >= 0) ::close(dfd);
      err = open_failure(dir, "cannot list it", e);
      return false;
    }
    while (const dirent* ent = ::readdir(d)) {
      uint64_t first = 0;
      if (parse_segment_name(ent->d_name, first)) found.emplace_back(first, ent->d_name);
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end());

  uint64_t used = 0;  // the highest seq any segment accounts for (by records or by name)
  for (auto& [first, name] : found) {
    if (first == 0 || (!segs.empty() && first <= used)) {
      // Overlaps an older segment (or names seq 0, which is never written): put aside.
      const std::string bad = name + ".bad";
      ::renameat(dir_fd, name.c_str(), dir_fd, bad.c_str());
      ++corrupt;
      set_error("spool segment " + path_of(name) + " overlaps an older segment; moved to " +
                path_of(bad));
      continue;
    }
    const int fd = ::openat(dir_fd, name.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      const int err_no = errno;
      err = open_failure(dir, "cannot open segment " + path_of(name), err_no);
      return false;
    }
    Fd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err_no = errno;
      err = open_failure(dir, "cannot stat segment " + path_of(name), err_no);
      return false;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    Segment seg;
    seg.first_seq = first;
    seg.name = name;
    ChunkReader reader(fd, size);
    uint64_t off = 0;
    bool bad = false;
    while (off < size) {
      const uint8_t* h = reader.view(off, kHeaderBytes);
      if (!h && errno != 0) {
        const int err_no = errno;
        err = open_failure(dir, "cannot read segment " + path_of(name), err_no);
        return false;
      }
      if (!h || off > std::numeric_limits<uint32_t>::max()) {
        bad = true;
        break;
      }
      const uint64_t len = get_le32(h);
      const uint32_t crc = get_le32(h + 4);
      const uint64_t seq = get_le64(h + 8);
      if (len > kMaxPayload || seq != seg.end_seq() || off + kHeaderBytes + len > size) {
        bad = true;
        break;
      }
      uint8_t seq_le[8];
      std::memcpy(seq_le, h + 8, 8);
      const uint8_t* payload = reader.view(off + kHeaderBytes, static_cast<size_t>(len));
      if (!payload) {
        const int err_no = errno ? errno : EIO;
        err = open_failure(dir, "cannot read segment " + path_of(name), err_no);
        return false;
      }
      if (record_crc(seq_le, payload, static_cast<size_t>(len)) != crc) {
        bad = true;
        break;
      }
      seg.offsets.push_back(static_cast<uint32_t>(off));
      off += kHeaderBytes + len;
    }
    if (bad) {
      const uint64_t cut = count_cut(reader, off, size);
      corrupt += cut;
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        const int err_no = errno;
        err = open_failure(dir, "cannot cut the corrupt tail of segment " + path_of(name), err_no);
        return false;
      }
      set_error("spool segment " + path_of(name) + ": cut " + std::to_string(cut) +
                " torn or corrupt record(s) at offset " + std::to_string(off));
    }
    seg.bytes = off;
    used = std::max(used, seg.end_seq() - 1);
    segs.push_back(std::move(seg));
  }

  last_seq = std::max(used, file_cursor);
  cursor = file_cursor;
  if (!segs.empty()) cursor = std::max(cursor, segs.front().first_seq - 1);
  cursor = std::min(cursor, last_seq);

  // The active segment: the newest if appending to it continues its seqs, else a new one.
  const bool reuse = !segs.empty() && segs.back().end_seq() == last_seq + 1 &&
                     segs.back().bytes < opt.segment_bytes;
  if (reuse) {
    Segment& a = segs.back();
    const int fd = ::openat(dir_fd, a.name.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
      const int err_no = errno;
      err = open_failure(dir, "cannot open segment " + path_of(a.name), err_no);
      return false;
    }
    a.fd = std::make_shared<Fd>(fd);
  } else {
    Segment a;
    a.first_seq = last_seq + 1;
    a.name = segment_name(a.first_seq);
    const int fd =
        ::openat(dir_fd, a.name.c_str(), O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err_no = errno;
      err = open_failure(dir, "cannot create segment " + path_of(a.name), err_no);
      return false;
    }
    a.fd = std::make_shared<Fd>(fd);
    segs.push_back(std::move(a));
  }

  // Older segments with nothing to deliver (empty, or all acked) go.
  std::deque<Segment> keep;
  for (size_t i = 0; i < segs.size(); ++i) {
    Segment& s = segs[i];
    if (i + 1 < segs.size() && (s.count() == 0 || s.last_seq() <= cursor)) {
      ::unlinkat(dir_fd, s.name.c_str(), 0);
      continue;
    }
    keep.push_back(std::move(s));
  }
  segs = std::move(keep);
  bytes = 0;
  for (const Segment& s : segs) bytes += s.bytes;
  skip_gap_locked();
  if (opt.sync != SpoolOptions::Sync::kNever) ::fsync(dir_fd);
  return true;
}

Spool::Spool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Spool::~Spool() {
  close();
  if (impl_->opt.sync != SpoolOptions::Sync::kNever) sync();
}

std::unique_ptr<Spool> Spool::open(const SpoolOptions& options, std::string& error) {
  if (options.dir.empty()) {
    error = "the spool directory is empty; configure a directory for the sink's spool";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->dir = options.dir;
  SpoolOptions& o = impl->opt;
  o = options;
  o.max_bytes = std::max<uint64_t>(o.max_bytes, 4 * kMinSegmentBytes);
  const uint64_t seg_cap = std::min<uint64_t>(o.max_bytes / 4, 1ull << 30);
  o.segment_bytes = std::clamp<uint64_t>(o.segment_bytes, kMinSegmentBytes, seg_cap);
  if (o.sync_interval.count() < 0) o.sync_interval = std::chrono::milliseconds(0);
  impl->max_payload =
      static_cast<size_t>(std::min<uint64_t>(kMaxPayload, o.max_bytes / 4 - kHeaderBytes));

  std::string failed;
  int e = 0;
  if (!make_dirs(options.dir, failed, e)) {
    error = open_failure(options.dir, "cannot create " + failed, e);
    return nullptr;
  }
  impl->dir_fd = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->dir_fd < 0) {
    e = errno;
    error = open_failure(options.dir, e == ENOTDIR ? "it is not a directory" : "cannot open it", e);
    return nullptr;
  }
  impl->lock_fd = ::openat(impl->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (impl->lock_fd < 0) {
    const int err_no = errno;
    error = open_failure(options.dir, "cannot create " + impl->path_of("lock"), err_no);
    return nullptr;
  }
  if (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    e = errno;
    if (e == EWOULDBLOCK) {
      error = "cannot use spool directory " + options.dir +
              ": another spool has it open (another agentwall process, or two sinks "
              "configured with the same spool directory); give each sink its own directory";
    } else {
      error = open_failure(options.dir, "cannot lock " + impl->path_of("lock"), e);
    }
    return nullptr;
  }
  if (::faccessat(impl->dir_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
    const int err_no = errno;
    error = open_failure(options.dir, "it is not writable", err_no);
    return nullptr;
  }
  if (!impl->recover(error)) return nullptr;
  return std::unique_ptr<Spool>(new Spool(std::move(impl)));
}

uint64_t Spool::append(std::string_view payload) {
  Impl& s = *impl_;
  FdPtr to_sync;
  uint64_t seq = 0;
  {
    std::lock_guard lk(s.mu);
    if (payload.size() > s.max_payload) {
      ++s.oversized;
      ++s.write_errors;
      s.set_error("spool " + s.dir + ": refused a record of " + std::to_string(payload.size()) +
                  " bytes, larger than the limit of " + std::to_string(s.max_payload) + " bytes");
      return 0;
    }
    const uint64_t rec = kHeaderBytes + payload.size();
    {
      const Segment& a = s.segs.back();
      if (s.need_rotate || (a.bytes > 0 && a.bytes + rec > s.opt.segment_bytes)) {
        if (!s.rotate_locked()) {
          ++s.write_errors;
          return 0;
        }
      }
    }
    if (!s.make_room_locked(rec)) {
      ++s.write_errors;
      return 0;
    }
    Segment& a = s.segs.back();
    seq = s.last_seq + 1;
    uint8_t header[kHeaderBytes];
    put_le32(header, static_cast<uint32_t>(payload.size()));
    put_le64(header + 8, seq);
    put_le32(header + 4, record_crc(header + 8, payload.data(), payload.size()));

    // One writev for the whole record; a short write (disk full mid-record) continues, and
    // any failure cuts the segment back to its last whole record.
    iovec iov[2] = {{header, kHeaderBytes}, {const_cast<char*>(payload.data()), payload.size()}};
    size_t done = 0;
    bool ok = true;
    int e = 0;
    while (done < rec) {
      ssize_t w;
      if (done < kHeaderBytes) {
        iovec part[2] = {{header + done, kHeaderBytes - done}, iov[1]};
        w = ::writev(a.fd->fd, part, payload.empty() ? 1 : 2);
      } else {
        w = ::write(a.fd->fd, payload.data() + (done - kHeaderBytes), rec - done);
      }
      if (w < 0) {
        if (errno == EINTR) continue;
        ok = false;
        e = errno;
        break;
      }
      if (w == 0) {
        ok = false;
        e = EIO;
        break;
      }
      done += static_cast<size_t>(w);
    }
    if (!ok) {
      if (done > 0 && ::ftruncate(a.fd->fd, static_cast<off_t>(a.bytes)) != 0) {
        s.need_rotate = true;  // the next append starts a clean segment
      }
      ++s.write_errors;
      s.set_error("cannot append to spool segment " + s.path_of(a.name) + ": " + errno_text(e) +
                  (e == ENOSPC ? " (the disk is full)" : ""));
      return 0;
    }
    a.offsets.push_back(static_cast<uint32_t>(a.bytes));
    a.bytes += rec;
    s.bytes += rec;
    s.last_seq = seq;
    ++s.appended;
    if (s.opt.sync == SpoolOptions::Sync::kAlways) {
      to_sync = a.fd;
    } else if (s.opt.sync == SpoolOptions::Sync::kInterval) {
      const auto now = Impl::Clock::now();
      if (s.sync_due(now)) {
        to_sync = a.fd;
        s.last_sync = now;
      }
    }
  }
  s.cv.notify_all();
  if (to_sync && ::fdatasync(to_sync->fd) != 0) {
    // The record is in the file (and will be delivered); only its durability is in doubt.
    const int e = errno;
    std::lock_guard lk(s.mu);
    ++s.write_errors;
    s.set_error("cannot fsync spool " + s.dir + ": " + errno_text(e));
  }
  return seq;
}

std::vector<SpoolRecord> Spool::peek(size_t max_records, size_t max_bytes) {
  std::vector<SpoolRecord> out;
  if (max_records == 0) return out;
  // A record found corrupt at the head of the batch is skipped and the batch planned again.
  while (impl_->peek_once(max_records, max_bytes, out)) {
  }
  return out;
}

void Spool::ack(uint64_t seq) {
  Impl& s = *impl_;
  std::vector<std::string> doomed;
  FdPtr to_sync;
  bool durable = false;
  uint64_t value = 0;
  {
    std::lock_guard lk(s.mu);
    seq = std::min(seq, s.last_seq);
    if (seq <= s.cursor) return;
    s.acked += seq - s.cursor;
    s.cursor = seq;
    s.skip_gap_locked();
    value = s.cursor;
    while (s.segs.size() > 1 && s.segs.front().last_seq() <= s.cursor) {
      doomed.push_back(s.segs.front().name);
      s.bytes -= s.segs.front().bytes;
      s.segs.pop_front();
    }
    if (s.opt.sync == SpoolOptions::Sync::kAlways) {
      durable = true;
    } else if (s.opt.sync == SpoolOptions::Sync::kInterval) {
      const auto now = Impl::Clock::now();
      if (s.sync_due(now)) {
        durable = true;
        to_sync = s.segs.back().fd;
        s.last_sync = now;
      }
    }
  }
  if (to_sync) ::fdatasync(to_sync->fd);
  s.persist_cursor(value, durable);
  for (const std::string& name : doomed) {
    if (::unlinkat(s.dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      const int err_no = errno;
      s.set_error("cannot delete spool segment " + s.path_of(name) + ": " + errno_text(err_no));
    }
  }
}

bool Spool::wait(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  std::unique_lock lk(s.mu);
  s.cv.wait_for(lk, timeout, [&] { return s.closed || s.last_seq > s.cursor; });
  return s.last_seq > s.cursor;
}

void Spool::close() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->closed = true;
  }
  impl_->cv.notify_all();
}

uint64_t Spool::take_dropped() {
  std::lock_guard lk(impl_->mu);
  const uint64_t n = impl_->pending_dropped;
  impl_->pending_dropped = 0;
  return n;
}

void Spool::sync() {
  Impl& s = *impl_;
  FdPtr fd;
  uint64_t value = 0;
  {
    std::lock_guard lk(s.mu);
    fd = s.segs.back().fd;
    value = s.cursor;
    s.last_sync = Impl::Clock::now();
  }
  if (fd && ::fdatasync(fd->fd) != 0) {
    const int err_no = errno;
    s.set_error("cannot fsync spool " + s.dir + ": " + errno_text(err_no));
  }
  s.persist_cursor(value, true);
}

SpoolStats Spool::stats() const {
  const Impl& s = *impl_;
  std::lock_guard lk(s.mu);
  SpoolStats st;
  st.appended = s.appended;
  st.acked = s.acked;
  st.dropped = s.dropped;
  st.dropped_bytes = s.dropped_bytes;
  st.corrupt = s.corrupt;
  st.write_errors = s.write_errors;
  st.oversized = s.oversized;
  st.bytes = s.bytes;
  st.depth = s.last_seq > s.cursor ? s.last_seq - s.cursor : 0;
  st.last_seq = s.last_seq;
  st.acked_seq = s.cursor;
  return st;
}

std::string Spool::last_error() const {
  std::lock_guard lk(impl_->err_mu);
  return impl_->error;
}

const std::string& Spool::dir() const {
  return impl_->dir;
}

size_t Spool::max_payload() const {
  return impl_->max_payload;
}

}  // namespace agentwall::sinks

#include "agent/record/recording.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

namespace agentwall::record {
namespace {

using json = nlohmann::json;

// Chunk header layout, all little-endian (docs/RECORD.md).
constexpr size_t kChunkHeaderLen = 8 * 7 + 4 * 7 + 2 + 2 + 2 * (2 + 2 + 16) + 16;

void put(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}
template <typename T>
void put_le(std::string& out, T v) {
  static_assert(std::endian::native == std::endian::little, "big-endian hosts: add byte swaps");
  put(out, &v, sizeof(v));
}

struct Cursor {
  std::string_view in;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (in.size() < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return v;
  }
  std::string_view take(size_t n) {
    if (in.size() < n) {
      ok = false;
      return {};
    }
    std::string_view v = in.substr(0, n);
    in.remove_prefix(n);
    return v;
  }
};

void put_endpoint(std::string& out, const Endpoint& e) {
  put_le<uint16_t>(out, e.family);
  put_le<uint16_t>(out, e.port);
  put(out, e.addr.data(), e.addr.size());
}

Endpoint get_endpoint(Cursor& c) {
  Endpoint e;
  e.family = c.get<uint16_t>();
  e.port = c.get<uint16_t>();
  const auto a = c.take(e.addr.size());
  if (c.ok) std::memcpy(e.addr.data(), a.data(), e.addr.size());
  return e;
}

json process_json(const ProcessKey& k) {
  return {{"pid", k.pid}, {"start_ns", k.start_ns}};
}

ProcessKey process_key(const json& j) {
  return {j.at("pid").get<uint32_t>(), j.at("start_ns").get<uint64_t>()};
}

}  // namespace

std::string encode_chunk(const TlsChunk& c) {
  std::string out;
  out.reserve(kChunkHeaderLen + c.data.size());
  put_le<uint64_t>(out, c.time_ns);
  put_le<uint64_t>(out, c.process.start_ns);
  put_le<uint64_t>(out, c.cgroup_id);
  put_le<uint64_t>(out, c.conn_id);
  put_le<uint64_t>(out, c.ssl);
  put_le<uint64_t>(out, c.stream_off);
  put_le<uint64_t>(out, 0);  // reserved
  put_le<uint32_t>(out, c.process.pid);
  put_le<uint32_t>(out, c.tid);
  put_le<uint32_t>(out, c.uid);
  put_le<int32_t>(out, c.fd);
  put_le<uint32_t>(out, c.call_len);
  put_le<uint32_t>(out, c.call_off);
  put_le<uint32_t>(out, c.flags);
  put_le<uint8_t>(out, static_cast<uint8_t>(c.dir));
  put_le<uint8_t>(out, static_cast<uint8_t>(c.func));
  put_le<uint16_t>(out, 0);  // reserved
  put_endpoint(out, c.local);
  put_endpoint(out, c.peer);
  char comm[16] = {};
  std::memcpy(comm, c.comm.data(), std::min(c.comm.size(), sizeof(comm)));
  put(out, comm, sizeof(comm));
  out.append(c.data);
  return out;
}

bool decode_chunk(std::string_view body, TlsChunk& c, std::string& comm_storage) {
  Cursor in{body};
  c.time_ns = in.get<uint64_t>();
  c.process.start_ns = in.get<uint64_t>();
  c.cgroup_id = in.get<uint64_t>();
  c.conn_id = in.get<uint64_t>();
  c.ssl = in.get<uint64_t>();
  c.stream_off = in.get<uint64_t>();
  in.get<uint64_t>();
  c.process.pid = in.get<uint32_t>();
  c.tid = in.get<uint32_t>();
  c.uid = in.get<uint32_t>();
  c.fd = in.get<int32_t>();
  c.call_len = in.get<uint32_t>();
  c.call_off = in.get<uint32_t>();
  c.flags = in.get<uint32_t>();
  const auto dir = in.get<uint8_t>();
  const auto func = in.get<uint8_t>();
  in.get<uint16_t>();
  c.local = get_endpoint(in);
  c.peer = get_endpoint(in);
  const auto comm = in.take(16);
  if (!in.ok || dir > 1 || func > kTlsFuncMax) return false;
  c.dir = static_cast<Direction>(dir);
  c.func = static_cast<TlsFunc>(func);
  comm_storage.assign(comm.data(), strnlen(comm.data(), comm.size()));
  c.comm = comm_storage;
  c.data = in.in;
  return uint64_t(c.call_off) + c.data.size() <= c.call_len;
}

Writer::Writer(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) {
    error_ = "cannot open recording " + path + ": " + std::strerror(errno);
    return;
  }
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  if (std::fwrite(kMagic, 1, sizeof(kMagic), file_) != sizeof(kMagic))
    error_ = "cannot write recording " + path + ": " + std::strerror(errno);
}

Writer::~Writer() {
  if (file_) std::fclose(file_);
}

void Writer::flush() {
  if (file_ && std::fflush(file_) != 0 && error_.empty())
    error_ = "cannot write recording " + path_ + ": " + std::strerror(errno);
}

void Writer::write_record(RecordType type, const std::string& body) {
  if (!file_ || !error_.empty()) {
    ++lost_;
    return;
  }
  char head[8];
  const uint32_t len = static_cast<uint32_t>(body.size());
  const uint16_t t = static_cast<uint16_t>(type);
  const uint16_t reserved = 0;
  std::memcpy(head, &len, 4);
  std::memcpy(head + 4, &t, 2);
  std::memcpy(head + 6, &reserved, 2);
  if (std::fwrite(head, 1, sizeof(head), file_) != sizeof(head) ||
      std::fwrite(body.data(), 1, body.size(), file_) != body.size()) {
    error_ = "cannot write recording " + path_ + ": " + std::strerror(errno) +
             " (free space on its file system, or record to another path)";
    ++lost_;
    return;
  }
  ++records_;
}

namespace {

json process_record(const ProcessInfo& p) {
  json j = process_json(p.key);
  j["ppid"] = p.ppid;
  j["uid"] = p.uid;
  j["cgroup_id"] = p.cgroup_id;
  j["comm"] = p.comm;
  j["exe"] = p.exe;
  j["cmdline"] = p.cmdline;
  j["cgroup"] = p.cgroup_path;
  j["complete"] = p.complete;
  if (p.stdio_client) j["stdio_client"] = process_record(*p.stdio_client);
  if (p.stdio_joined) j["stdio_joined"] = true;
  return j;
}

}  // namespace

void Writer::on_process(const ProcessInfo& p) {
  write_record(RecordType::kProcess,
               process_record(p).dump(-1, ' ', false, json::error_handler_t::replace));
}

void Writer::on_chunk(const TlsChunk& c) {
  scratch_ = encode_chunk(c);
  write_record(RecordType::kChunk, scratch_);
}

void Writer::on_sni(const TlsSni& s) {
  json j = process_json(s.process);
  j["time_ns"] = s.time_ns;
  j["tid"] = s.tid;
  j["conn"] = s.conn_id;
  j["ssl"] = s.ssl;
  j["sni"] = s.sni;
  write_record(RecordType::kSni, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void Writer::on_close(const TlsClose& c) {
  json j = process_json(c.process);
  j["time_ns"] = c.time_ns;
  j["tid"] = c.tid;
  j["conn"] = c.conn_id;
  j["ssl"] = c.ssl;
  j["bytes_out"] = c.bytes_out;
  j["bytes_in"] = c.bytes_in;
  write_record(RecordType::kClose, j.dump());
}

namespace {

ProcessInfo process_from_record(const json& j) {
  ProcessInfo p;
  p.key = process_key(j);
  p.ppid = j.value("ppid", 0u);
  p.uid = j.value("uid", 0u);
  p.cgroup_id = j.value("cgroup_id", uint64_t{0});
  p.comm = j.value("comm", "");
  p.exe = j.value("exe", "");
  p.cmdline = j.value("cmdline", "");
  p.cgroup_path = j.value("cgroup", "");
  p.complete = j.value("complete", false);
  if (const auto c = j.find("stdio_client"); c != j.end() && c->is_object())
    p.stdio_client = std::make_shared<const ProcessInfo>(process_from_record(*c));
  p.stdio_joined = j.value("stdio_joined", false);
  return p;
}

}  // namespace

ReadResult replay_file(const std::string& path, CaptureSink& sink) {
  ReadResult result;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    result.error = "cannot open recording " + path + ": " + std::strerror(errno);
    return result;
  }
  char magic[sizeof(kMagic)];
  if (std::fread(magic, 1, sizeof(magic), file.get()) != sizeof(magic) ||
      std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    result.error = path +
                   " is not an agentwall recording (no AWREC01 header); record one with "
                   "`agentwall run --record FILE`";
    return result;
  }
  std::string body;
  std::string comm;
  uint64_t offset = sizeof(kMagic);
  for (;;) {
    char head[8];
    const size_t got = std::fread(head, 1, sizeof(head), file.get());
    if (got == 0) break;  // clean end
    auto fail = [&](const std::string& what) {
      result.error = path + ": record " + std::to_string(result.records + 1) + " at byte " +
                     std::to_string(offset) + ": " + what;
      return result;
    };
    if (got != sizeof(head)) return fail("file ends inside a record header (recording cut short)");
    uint32_t len;
    uint16_t type;
    std::memcpy(&len, head, 4);
    std::memcpy(&type, head + 4, 2);
    if (len > kMaxRecordBody + 4096)
      return fail("record length " + std::to_string(len) + " is too large");
    body.resize(len);
    if (std::fread(body.data(), 1, len, file.get()) != len)
      return fail("file ends inside a record body (recording cut short)");
    try {
      switch (static_cast<RecordType>(type)) {
        case RecordType::kChunk: {
          TlsChunk c;
          if (!decode_chunk(body, c, comm)) return fail("malformed chunk record");
          sink.on_chunk(c);
          break;
        }
        case RecordType::kProcess: {
          sink.on_process(process_from_record(json::parse(body)));
          break;
        }
        case RecordType::kSni: {
          const json j = json::parse(body);
          sink.on_sni({j.at("time_ns").get<uint64_t>(), process_key(j), j.value("tid", 0u),
                       j.at("conn").get<uint64_t>(), j.value("ssl", uint64_t{0}),
                       j.at("sni").get<std::string>()});
          break;
        }
        case RecordType::kClose: {
          const json j = json::parse(body);
          sink.on_close({j.at("time_ns").get<uint64_t>(), process_key(j), j.value("tid", 0u),
                         j.at("conn").get<uint64_t>(), j.value("ssl", uint64_t{0}),
                         j.value("bytes_out", uint64_t{0}), j.value("bytes_in", uint64_t{0})});
          break;
        }
        default:
          break;  // a newer record type: skipped, as the format promises
      }
    } catch (const json::exception& e) {
      return fail(std::string("malformed JSON record: ") + e.what());
    }
    ++result.records;
    offset += sizeof(head) + len;
  }
  return result;
}

}  // namespace agentwall::record

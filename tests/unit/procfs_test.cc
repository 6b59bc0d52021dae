#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/proc/procfs.h"

using namespace agentwall;

TEST_CASE("procfs: maps lines, with and without paths") {
  auto e = proc::parse_maps_line(
      "7f2a1c000000-7f2a1c0a2000 r-xp 00022000 fe:01 1835045                    "
      "/usr/lib/x86_64-linux-gnu/libssl.so.3\n");
  REQUIRE(e);
  CHECK(e->start == 0x7f2a1c000000ull);
  CHECK(e->end == 0x7f2a1c0a2000ull);
  CHECK(e->perms == "r-xp");
  CHECK(e->offset == 0x22000);
  CHECK(e->dev_major == 0xfe);
  CHECK(e->dev_minor == 1);
  CHECK(e->inode == 1835045);
  CHECK(e->path == "/usr/lib/x86_64-linux-gnu/libssl.so.3");

  auto anon = proc::parse_maps_line("7ffd5a1e0000-7ffd5a201000 rw-p 00000000 00:00 0 [stack]");
  REQUIRE(anon);
  CHECK(anon->inode == 0);
  CHECK(anon->path == "[stack]");

  auto spaces = proc::parse_maps_line("1000-2000 r--p 00000000 08:02 42 /tmp/a b (deleted)");
  REQUIRE(spaces);
  CHECK(spaces->path == "/tmp/a b (deleted)");

  for (const char* bad : {"", "garbage", "1000-zz r-xp 0 08:01 1 /x", "1000-2000 r-x 0 08:01 1",
                          "1000-2000 r-xp 0 0801 1 /x", "1000-2000 r-xp 0 08:01 notanumber"}) {
    CAPTURE(bad);
    CHECK_FALSE(proc::parse_maps_line(bad));
  }
}

TEST_CASE("procfs: this process's own maps include its executable") {
  const auto maps = proc::read_maps(static_cast<uint32_t>(getpid()));
  REQUIRE_FALSE(maps.empty());
  char exe[4096] = {};
  REQUIRE(readlink("/proc/self/exe", exe, sizeof(exe) - 1) > 0);
  bool found = false;
  for (const auto& m : maps) found = found || m.path == exe;
  CHECK(found);
  CHECK(proc::read_maps(0x7ffffffe).empty());  // no such process: empty, no throw
}

TEST_CASE("procfs: stat start time survives a comm with spaces and parentheses") {
  const std::string stat =
      "4242 (evil) (name x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 "
      "1000 10 18446744073709551615";
  CHECK(proc::parse_stat_start_ticks(stat) == std::optional<uint64_t>(123456));
  CHECK_FALSE(proc::parse_stat_start_ticks("4242 (x) S 1 2"));
  CHECK_FALSE(proc::parse_stat_start_ticks("no parenthesis"));
}

TEST_CASE("procfs: cmdline and cgroup") {
  CHECK(proc::cmdline_from_raw(std::string("curl\0-s\0https://x\0", 19)) == "curl -s https://x");
  CHECK(proc::cmdline_from_raw(std::string("abcdef"), 3) == "abc");
  CHECK(proc::cgroup_path_from("0::/system.slice/ssh.service\n") == "/system.slice/ssh.service");
  CHECK(proc::cgroup_path_from("12:pids:/user.slice\n0::/user.slice/x\n") == "/user.slice/x");
  CHECK(proc::cgroup_path_from("3:cpu:/legacy\n") == "/legacy");
  CHECK(proc::cgroup_path_from("") == "");
}

TEST_CASE("procfs: read_process of this process, and of a pid that is someone else now") {
  std::ifstream stat("/proc/self/stat");
  std::stringstream ss;
  ss << stat.rdbuf();
  const auto ticks = proc::parse_stat_start_ticks(ss.str());
  REQUIRE(ticks);
  const uint64_t ns_per_tick = 1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  ProcessKey self{static_cast<uint32_t>(getpid()), *ticks * ns_per_tick};
  const ProcessInfo info = proc::read_process(self, "unit");
  CHECK(info.complete);
  CHECK_FALSE(info.exe.empty());
  CHECK_FALSE(info.cmdline.empty());
  CHECK(info.uid == getuid());

  // Same pid, another start time: pid reuse. Nothing of the current owner leaks in.
  ProcessKey reused{self.pid, self.start_ns + 1000 * ns_per_tick};
  const ProcessInfo other = proc::read_process(reused, "kernelcomm");
  CHECK_FALSE(other.complete);
  CHECK(other.exe.empty());
  CHECK(other.comm == "kernelcomm");
}

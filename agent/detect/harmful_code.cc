#include "agent/detect/harmful_code.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <utility>

namespace agentwall::detect {
namespace {

using Needles = std::initializer_list<std::string_view>;

// Ways of sending data off the host.
const Needles kSinks = {"requests.post",
                        "requests.put",
                        "urlopen",
                        "urllib.request",
                        "http.client",
                        "httpx.post",
                        "smtplib",
                        "socket.socket",
                        "create_connection",
                        ".sendto(",
                        ".sendall(",
                        "paho.",
                        "ftplib",
                        "fetch(",
                        "axios.post",
                        "xmlhttprequest",
                        "navigator.sendbeacon",
                        "invoke-webrequest",
                        "invoke-restmethod",
                        "net.webclient",
                        "uploadstring",
                        "curl ",
                        "wget ",
                        "net/http",
                        "http.post",
                        "dns.resolver",
                        "nslookup ",
                        "scp ",
                        "discord.com/api/webhooks"};
// Loops that never end.
const Needles kForever = {"while true", "while 1:", "while(true)", "while (true)",
                          "for (;;)",   "for(;;)",  "while :"};

// A kind of harm and the lower-case text that shows it; with `also`, only where the text
// has one of those too (a way of sending, a loop that never ends).
struct Harm {
  std::string_view what;
  Needles needles;
  const Needles* also = nullptr;
};

// Kept in an order that puts the harms that need nothing else first: "logs keystrokes" says
// more than "sends host details" when both are there.
const Harm kHarms[] = {
    {"logs keystrokes",
     {"pynput", "keyboard.on_press", "keyboard.hook", "keyboard.read_key", "getasynckeystate",
      "setwindowshookex", "keylog", "addeventlistener('keydown'", "addeventlistener(\"keydown\""}},
    {"reads the clipboard",
     {"pyperclip.paste", "getclipboarddata", "get-clipboard", "pbpaste", "xclip -o", "xsel -o",
      "clipboard.readtext", "navigator.clipboard.read"}},
    {"captures the screen",
     {"imagegrab.grab", "pyautogui.screenshot", "mss.mss", "screencapture ", "copyfromscreen"}},
    {"reads saved browser passwords or cookies",
     {"browser_cookie3", "login data", "logins.json", "key4.db", "cryptunprotectdata", "win32crypt",
      "cookies.sqlite"}},
    {"destroys data",
     {"rm -rf / ", "rm -rf /*", "rm -rf ~", "rm -rf $home", "--no-preserve-root",
      "shutil.rmtree('/')", "shutil.rmtree(\"/\")",
      "shutil.rmtree('c:", "shutil.rmtree(\"c:", "mkfs.", "of=/dev/sd", "of=/dev/nvme",
      "vssadmin delete", "format c:", "cipher /w", "del /s /q c:\\", "wipefs"}},
    {"exhausts the machine", {":(){ :|:& };:", ":(){:|:&};:"}},
    {"spawns without end", {"os.fork()", "tk()", "webbrowser.open"}, &kForever},
    {"switches off security or the network",
     {"ufw disable", "iptables -f", "iptables --flush", "setenforce 0", "disablerealtimemonitoring",
      "advfirewall set", "stop firewalld", "disable firewalld", "auditctl -d",
      "nmcli networking off", "ipconfig /release", "stop-service windefend"}},
    {"mines cryptocurrency",
     {"xmrig", "stratum+tcp", "minerd", "cpuminer", "coinhive", "cryptonight", "nicehash"}},
    {"opens a remote shell",
     {"/dev/tcp/", "nc -e ", "ncat -e ", "pty.spawn", "os.dup2", "reverse_shell", "reverse shell"}},
    {"encrypts files for ransom",
     {"ransom", "your files have been encrypted", "your files are encrypted"}},
    {"sends credential files or cookies",
     {".ssh/id_", "authorized_keys", ".aws/credentials", "/etc/shadow", ".git-credentials",
      ".netrc", ".kube/config", ".docker/config.json", "wallet.dat", "cookies.txt", "cookies.pkl",
      "cookies.json", "cookiejar", "document.cookie"},
     &kSinks},
    {"sends the environment or host details",
     {"(os.environ)", "=os.environ", "os.environ.items()", "os.environ.copy()", "(process.env)",
      "printenv", "get-childitem env:", "gci env:", "platform.uname", "platform.node",
      "socket.gethostname", "getpass.getuser", "uuid.getnode", "whoami", "systeminfo", "wmi.",
      "psutil.process_iter", "/etc/passwd", "getmac"},
     &kSinks},
};

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The first of `needles` found in `low`, and where; {nullptr, npos} when none is.
std::pair<const std::string_view*, size_t> first_of(const Needles& needles,
                                                    const std::string& low) {
  for (const std::string_view& n : needles)
    if (const size_t at = low.find(n); at != std::string::npos) return {&n, at};
  return {nullptr, std::string::npos};
}

}  // namespace

std::optional<HarmfulCode> harmful_code(std::string_view text) {
  const std::string low = lower(text);
  for (const Harm& h : kHarms) {
    const auto [hit, at] = first_of(h.needles, low);
    if (!hit) continue;
    const std::string_view* also = h.also ? first_of(*h.also, low).first : nullptr;
    if (h.also && !also) continue;
    HarmfulCode out{std::string(h.what) + " (" + std::string(*hit), {at, at + hit->size()}};
    if (also) out.what += ", " + std::string(*also);
    out.what += ')';
    return out;
  }
  return std::nullopt;
}

}  // namespace agentwall::detect

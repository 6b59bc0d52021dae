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
                        "discord.com/api/webhooks",
                        "cookies="};
// Loops that never end.
const Needles kForever = {"while true", "while 1:", "while(true)", "while (true)",
                          "for (;;)",   "for(;;)",  "while :"};

// Fetching code or a program from the network.
const Needles kDownloads = {
    "urlretrieve",       "wget",         "curl ",          "requests.get(", "urlopen(",
    "invoke-webrequest", "downloadfile", "downloadstring", "httpx.get(",    "fetch("};
// Running what was fetched: handing it to an interpreter, or starting it in the background.
const Needles kRunsIt = {"exec(open(",
                         "exec(requests",
                         "exec(urlopen",
                         "exec(r.text",
                         "exec(code",
                         "eval(requests",
                         "os.system(\"python",
                         "os.system('python",
                         "[\"python3\", ",
                         "['python3', ",
                         "[\"python\", ",
                         "['python', ",
                         "nohup ",
                         "| sh",
                         "| bash",
                         "|sh",
                         "|bash",
                         "iex ",
                         "invoke-expression",
                         "start-process"};
// A pause: a loop that sleeps between requests is a poller, not a flood.
const Needles kPauses = {"sleep",     "settimeout(", "setinterval(",
                         "ratelimit", "rate_limit",  "backoff"};
// Sending requests or packets.
const Needles kRequests = {"requests.get(", "requests.post(", "urlopen(", ".sendto(",
                           "fetch(",        "httpx.",         "aiohttp."};

// A kind of harm and the lower-case text that shows it; with `also`, only where the text
// has one of those too (a way of sending, a loop that never ends); with `unless`, not where
// it has one of those.
struct Harm {
  std::string_view what;
  Needles needles;
  const Needles* also = nullptr;
  const Needles* unless = nullptr;
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
    {"destroys system files", {"os.remove(\"/lib",     "os.remove('/lib",
                               "os.remove(\"/etc/",    "os.remove('/etc/",
                               "os.remove(\"/bin",     "os.remove('/bin",
                               "os.remove(\"/boot",    "os.remove('/boot",
                               "os.unlink(\"/lib",     "os.unlink('/lib",
                               "libc.so.6\")",         "libc.so.6')",
                               "rm -rf /etc",          "rm -rf /bin",
                               "rm -rf /boot",         "rm -rf /lib",
                               "rm -rf /usr/bin",      "rm -rf /usr/lib",
                               "rm -f /lib",           "del /f /s /q c:\\windows",
                               "rd /s /q c:\\windows", "c:\\windows\\system32\\hal.dll",
                               "bcdedit /delete",      "of=/dev/mapper"}},
    {"exhausts the machine", {":(){ :|:& };:", ":(){:|:&};:"}},
    {"floods a host with requests",
     {"hping3", "--flood", "slowloris", "syn flood", "udp flood", "http flood"}},
    {"floods a host with requests", kRequests, &kForever, &kPauses},
    {"spawns without end", {"os.fork()", "tk()", "webbrowser.open"}, &kForever},
    {"switches off security or the network",
     {"ufw disable", "iptables -f", "iptables --flush", "setenforce 0", "disablerealtimemonitoring",
      "advfirewall set", "stop firewalld", "disable firewalld", "auditctl -d",
      "nmcli networking off", "ipconfig /release", "stop-service windefend"}},
    {"mines cryptocurrency",
     {"xmrig", "stratum+tcp", "minerd", "cpuminer", "coinhive", "cryptonight", "nicehash",
      "cryptominer", "monero miner"}},
    {"listens in on network traffic",
     {"sniff(", "af_packet", "pyshark", "pcapy", "tcpdump -w", "tcpdump -i", "promisc", "windivert",
      "rawsocket"}},
    {"records the microphone or camera and sends it",
     {"sounddevice.rec", "sd.rec(", "pyaudio", "arecord ", "videocapture(0)", "getusermedia",
      "-f avfoundation", "-f dshow", "-f v4l2", "speech_recognition.microphone", "sr.microphone"},
     &kSinks},
    {"downloads code and runs it", kDownloads, &kRunsIt},
    {"opens a remote shell",
     {"/dev/tcp/", "nc -e ", "ncat -e ", "pty.spawn", "os.dup2", "reverse_shell", "reverse shell"}},
    {"encrypts files for ransom",
     {"ransom", "your files have been encrypted", "your files are encrypted", "decrypt your files",
      "\".locked\"", "'.locked'", "\".encrypted\"", "'.encrypted'"}},
    {"sends credential files or cookies",
     {".ssh/id_", "authorized_keys", ".aws/credentials", "/etc/shadow", ".git-credentials",
      ".netrc", ".kube/config", ".docker/config.json", "wallet.dat", "cookies.txt", "cookies.pkl",
      "cookies.json", "cookiejar", "document.cookie"},
     &kSinks},
    {"sends the environment or host details",
     {"(os.environ)",
      "=os.environ",
      "os.environ.items()",
      "os.environ.copy()",
      "(process.env)",
      "printenv",
      "get-childitem env:",
      "gci env:",
      "platform.uname",
      "platform.node",
      "socket.gethostname",
      "getpass.getuser",
      "uuid.getnode",
      "whoami",
      "systeminfo",
      "wmi.",
      "psutil.process_iter",
      "/etc/passwd",
      "getmac",
      "usb.core.find",
      "driverquery",
      "lsusb",
      "lspci",
      "dmidecode",
      "query_devices",
      "wmic "},
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
    if (h.unless && first_of(*h.unless, low).first) continue;
    HarmfulCode out{std::string(h.what) + " (" + std::string(*hit), {at, at + hit->size()}};
    if (also) out.what += ", " + std::string(*also);
    out.what += ')';
    return out;
  }
  return std::nullopt;
}

}  // namespace agentwall::detect

// Output that harms the user when it is rendered, run or read by another agent: markdown
// and HTML that leaks data to a third-party host when displayed, dangerous shell commands in
// tool calls, and instructions planted for other models. Category kUnsafeOutput throughout.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// Detector ids:
//  "unsafe.markdown_exfiltration": a markdown image or link (inline or by reference) or an
//    HTML <img>/<iframe>/<video>/<audio>/<source>/<a> whose URL goes to a host not on the
//    allow-list and carries data: query values, opaque (base64/hex) or URL-encoded text in
//    the path or a subdomain, or a fill-in placeholder ("?q={conversation}"). Images load by
//    themselves, so they score higher than links; a link needs opaque or long data. The
//    span covers the whole element (and, by reference, its definition line as a second
//    span); the explanation names the host, never the data.
//  "unsafe.shell_command": download-and-execute, recursive deletion of / ~ $HOME or system
//    directories, disk wiping, reading credential files, dumping the environment (worst
//    when sent over the network), reverse shells, chmod 777 / setuid, disabling shell
//    history, cron / authorized_keys / sudoers persistence, base64-decoded code run by a
//    shell. Whole text for kToolArguments (JSON string values are decoded first, also when
//    the JSON is nested in a string) and kUnknown; only fenced and inline code for
//    kModelOutput, at lower confidence; not scanned for other sources.
//  "unsafe.agent_directive": text addressed to an AI that tells it what to do: "Note to the
//    AI: …", "AI assistant: ignore …", "If you are an LLM, …", <IMPORTANT>/<SYSTEM> blocks
//    and HTML comments that carry instructions (call a tool, send data, read a file, keep it
//    from the user). Not scanned in kUser and kSystem text, where addressing the assistant
//    is normal.
// Spans are byte offsets into the scanned text, also when the match was found in decoded
// JSON string values.
class UnsafeOutputDetector final : public Detector {
 public:
  // Hosts whose images and links are trusted: "example.com" also allows its subdomains; a
  // leading "*." or ".", a scheme, a port or a path given with a host are ignored.
  explicit UnsafeOutputDetector(std::vector<std::string> allowed_hosts = {});

  std::string_view name() const override { return "unsafe_output"; }
  void scan(std::string_view text, Source source, std::vector<Finding>& out) const override;

  // `host` (any case, optionally with a trailing dot) is an allowed host or a subdomain of
  // one.
  bool host_allowed(std::string_view host) const;

 private:
  std::vector<std::string> allowed_;
};

std::unique_ptr<Detector> make_unsafe_output_detector(std::vector<std::string> allowed_hosts = {});

}  // namespace agentwall::detect

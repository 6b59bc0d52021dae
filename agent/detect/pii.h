// Personal data in prompts and tool traffic: e-mail addresses, payment card numbers, IBANs,
// US social security numbers and phone numbers. Every candidate is validated (Luhn, IIN
// prefixes, IBAN length and mod-97, SSN ranges, NANP rules) so that order numbers, dates,
// versions and hashes stay quiet. Hand-written scanning from cheap anchors: no regex.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"

namespace agentwall::detect {

// Detector ids: "pii.email", "pii.payment_card", "pii.iban", "pii.us_ssn", "pii.phone".
// One finding per item; its span covers the item's bytes (separators included) and the
// explanation names the kind with at most a domain or the last few digits.
class PiiDetector final : public Detector {
 public:
  std::string_view name() const override { return "pii"; }
  void scan(std::string_view text, Source source, std::vector<Finding>& out) const override;
};

std::unique_ptr<Detector> make_pii_detector();

}  // namespace agentwall::detect

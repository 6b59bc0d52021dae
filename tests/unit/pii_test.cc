// Personal data: each kind found with its exact span, and look-alikes left alone.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "agent/detect/pii.h"

using namespace agentwall::detect;

namespace {

std::vector<Finding> scan(std::string_view text) {
  std::vector<Finding> out;
  PiiDetector().scan(text, Source::kUser, out);
  return out;
}

// The bytes of the single finding in `text`, or a note saying what was found instead.
std::string only(std::string_view text, std::string_view id) {
  const auto f = scan(text);
  if (f.size() != 1) return "<" + std::to_string(f.size()) + " findings>";
  if (f[0].detector != id) return "<" + f[0].detector + ">";
  if (f[0].category != Category::kPii || f[0].spans.size() != 1) return "<bad finding>";
  return std::string(text.substr(f[0].spans[0].begin, f[0].spans[0].end - f[0].spans[0].begin));
}

double confidence(std::string_view text) {
  const auto f = scan(text);
  return f.size() == 1 ? f[0].confidence : -1;
}

}  // namespace

TEST_CASE("pii: detector identity") {
  auto d = make_pii_detector();
  CHECK(d->name() == "pii");
  std::vector<Finding> out;
  d->scan("", Source::kUser, out);
  CHECK(out.empty());
}

TEST_CASE("pii: e-mail addresses") {
  CHECK(only("write to jane.doe+news@example.com today", "pii.email") ==
        "jane.doe+news@example.com");
  CHECK(only("Mail: J_Smith99@mail.example.co.uk.", "pii.email") == "J_Smith99@mail.example.co.uk");
  CHECK(only("<a href=\"mailto:ops@corp.io\">", "pii.email") == "ops@corp.io");
  const auto f = scan("contact bob@example.org");
  REQUIRE(f.size() == 1);
  CHECK(f[0].confidence == doctest::Approx(0.9));
  CHECK(f[0].explanation == "e-mail address (\u2026@example.org)");
  CHECK(f[0].explanation.find("bob") == std::string::npos);

  CHECK(scan("user@localhost").empty());
  CHECK(scan("npm i lodash@4.17.21 and pkg@latest").empty());
  CHECK(scan("image@sha256:abcdef0123").empty());
  CHECK(scan("icon@2x.png").empty());
  CHECK(scan("git clone git@github.com:org/repo.git").empty());
  CHECK(scan("https://user:pass@host.example.com/x").empty());
  CHECK(scan("a..b@example.com").empty());
  CHECK(scan("@decorator and @mention").empty());
  CHECK(scan("x@y.c").empty());
}

TEST_CASE("pii: payment cards from the networks' published test numbers") {
  CHECK(only("card 4242 4242 4242 4242 exp 12/29", "pii.payment_card") == "4242 4242 4242 4242");
  CHECK(only("4242424242424242", "pii.payment_card") == "4242424242424242");
  CHECK(only("mc=5555555555554444;", "pii.payment_card") == "5555555555554444");
  CHECK(only("amex 378282246310005", "pii.payment_card") == "378282246310005");
  CHECK(only("amex 3782 822463 10005.", "pii.payment_card") == "3782 822463 10005");
  CHECK(only("371449635398431", "pii.payment_card") == "371449635398431");
  CHECK(only("6011-1111-1111-1117", "pii.payment_card") == "6011-1111-1111-1117");
  CHECK(only("3530111333300000", "pii.payment_card") == "3530111333300000");
  CHECK(only("30569309025904", "pii.payment_card") == "30569309025904");
  CHECK(only("38520000023237", "pii.payment_card") == "38520000023237");
  CHECK(only("6200000000000005", "pii.payment_card") == "6200000000000005");
  CHECK(only("2223003122003222", "pii.payment_card") == "2223003122003222");
  CHECK(only("(4000056655665556)", "pii.payment_card") == "4000056655665556");
  CHECK(only("4222222222222", "pii.payment_card") == "4222222222222");  // 13-digit Visa

  const auto f = scan("pay with 5555 5555 5555 4444");
  REQUIRE(f.size() == 1);
  CHECK(f[0].explanation == "payment card (Mastercard, ending 4444)");
  CHECK(f[0].spans[0].begin == 9);
  CHECK(f[0].spans[0].end == 28);
  CHECK(confidence("ref 4242 4242 4242 4242") == doctest::Approx(0.95));
  CHECK(confidence("Visa: 4242 4242 4242 4242") == doctest::Approx(0.99));
  CHECK(confidence("cc 4242424242424242") == doctest::Approx(0.99));
  CHECK(confidence("account 4242424242424242") == doctest::Approx(0.95));

  // Two cards in a row are two findings.
  CHECK(scan("4242 4242 4242 4242 5555 5555 5555 4444").size() == 2);
}

TEST_CASE("pii: card look-alikes are not cards") {
  CHECK(scan("4242 4242 4242 4241").empty());              // Luhn fails
  CHECK(scan("Order #1000234567891234 shipped").empty());  // no IIN
  CHECK(scan("order number 7992739871300000").empty());    // no IIN
  CHECK(scan("42424242424242424242").empty());             // 20 digits
  CHECK(scan("id 142424242424242424").empty());            // part of a longer run
  CHECK(scan("4242-4242-4242-4242-1").empty());            // longer hyphenated chain
  CHECK(scan("x4242424242424242").empty());                // glued to a word
  CHECK(scan("4242424242424242.5").empty());               // a decimal
  CHECK(scan("378282246310005 0").size() == 1);            // a separate trailing number
  CHECK(scan("34242424242424240").empty());                // Amex prefix, 17 digits
  CHECK(scan("42 42 42 42 42 42 42 42").empty());          // not a card grouping
}

TEST_CASE("pii: IBANs from the registry examples") {
  CHECK(only("IBAN: GB82 WEST 1234 5698 7654 32.", "pii.iban") == "GB82 WEST 1234 5698 7654 32");
  CHECK(only("DE89 3704 0044 0532 0130 00", "pii.iban") == "DE89 3704 0044 0532 0130 00");
  CHECK(only("DE89370400440532013000", "pii.iban") == "DE89370400440532013000");
  CHECK(only("FR14 2004 1010 0505 0001 3M02 606", "pii.iban") ==
        "FR14 2004 1010 0505 0001 3M02 606");
  CHECK(only("to NL91ABNA0417164300 now", "pii.iban") == "NL91ABNA0417164300");
  CHECK(only("BE68539007547034", "pii.iban") == "BE68539007547034");
  CHECK(only("CH9300762011623852957", "pii.iban") == "CH9300762011623852957");
  CHECK(only("AT611904300234573201", "pii.iban") == "AT611904300234573201");
  CHECK(only("ES9121000418450200051332", "pii.iban") == "ES9121000418450200051332");
  CHECK(only("IT60X0542811101000000123456", "pii.iban") == "IT60X0542811101000000123456");
  const auto f = scan("GB82WEST12345698765432");
  REQUIRE(f.size() == 1);
  CHECK(f[0].confidence == doctest::Approx(0.97));
  CHECK(f[0].explanation == "IBAN (GB, ending 5432)");

  CHECK(scan("GB83 WEST 1234 5698 7654 32").empty());    // bad check digits
  CHECK(scan("DE89 3704 0044 0532 0130 0").empty());     // one short
  CHECK(scan("DE89370400440532013000123").empty());      // too long
  CHECK(scan("GB82 WEST 1234 5698 7654 3212").empty());  // last group too long
  CHECK(scan("XX82WEST12345698765432").empty());         // no such country
  CHECK(scan("gb82west12345698765432").empty());         // IBANs are upper case
  CHECK(scan("AB12 and CD34 are part numbers, as is ISO9001").empty());
}

TEST_CASE("pii: US social security numbers") {
  CHECK(only("SSN 123-45-6789", "pii.us_ssn") == "123-45-6789");
  CHECK(only("id: 123 45 6789.", "pii.us_ssn") == "123 45 6789");
  CHECK(confidence("number 123-45-6789") == doctest::Approx(0.85));
  CHECK(confidence("Social Security: 123-45-6789") == doctest::Approx(0.95));
  CHECK(only("ssn=123456789", "pii.us_ssn") == "123456789");
  CHECK(scan("ref 123456789").empty());  // plain 9 digits need context
  const auto f = scan("899-99-9999");
  REQUIRE(f.size() == 1);
  CHECK(f[0].explanation.find("9999") == std::string::npos);

  CHECK(scan("SSN 000-12-3456").empty());
  CHECK(scan("SSN 666-12-3456").empty());
  CHECK(scan("SSN 900-12-3456").empty());
  CHECK(scan("SSN 999-12-3456").empty());
  CHECK(scan("SSN 123-00-4567").empty());
  CHECK(scan("SSN 123-45-0000").empty());
  CHECK(scan("SSN 078-05-1120").empty());  // the Woolworth wallet card
  CHECK(scan("SSN 219-09-9999").empty());
  CHECK(scan("SSN 123-45-67890").empty());
  CHECK(scan("SSN 123-45 6789").empty());  // mixed separators
}

TEST_CASE("pii: phone numbers") {
  CHECK(only("call +1 415 555 2671", "pii.phone") == "+1 415 555 2671");
  CHECK(only("+14155552671", "pii.phone") == "+14155552671");
  CHECK(only("London +44 20 7946 0958.", "pii.phone") == "+44 20 7946 0958");
  CHECK(only("+1 (415) 555-2671", "pii.phone") == "+1 (415) 555-2671");
  CHECK(only("+49-30-123456", "pii.phone") == "+49-30-123456");
  CHECK(only("call me at (415) 555-2671", "pii.phone") == "(415) 555-2671");
  CHECK(only("phone: 415-555-2671", "pii.phone") == "415-555-2671");
  CHECK(only("Tel 415.555.2671", "pii.phone") == "415.555.2671");
  const auto f = scan("mobile +44 20 7946 0958");
  REQUIRE(f.size() == 1);
  CHECK(f[0].confidence == doctest::Approx(0.7));
  CHECK(f[0].explanation == "phone number (ending 58)");

  CHECK(scan("see 415-555-2671").empty());    // North American needs context
  CHECK(scan("phone 115-555-2671").empty());  // area code cannot start with 1
  CHECK(scan("+1 115 555 2671").empty());
  CHECK(scan("+1234567").empty());              // too short
  CHECK(scan("+1234567890123456").empty());     // too long
  CHECK(scan("x+12345678 and a+b").empty());    // an expression
  CHECK(scan("tell me 415-555-2671").empty());  // "tell" is not "tel"
}

TEST_CASE("pii: dates, times, versions, addresses and hashes are not personal data") {
  CHECK(scan("released 2024-01-15 at 10:30:45 and 2024-01-15T10:30:45Z").empty());
  CHECK(scan("phone 2024-01-15, call at 12:30").empty());
  CHECK(scan("version 1.2.3, v10.15.7, 4.17.21-beta.1").empty());
  CHECK(scan("phone home from 192.168.100.1 or 10.0.0.1:8080").empty());
  CHECK(scan("id 123e4567-e89b-12d3-a456-426614174000").empty());
  CHECK(scan("id 550E8400-E29B-41D4-A716-446655440000").empty());
  CHECK(scan("commit 3f786850e387550fdab836ed7e6dc881de23001b").empty());
  CHECK(scan("commit 9876543210987654321098765432109876543210").empty());
  CHECK(scan("the number 12345678901234567890 is big").empty());
  CHECK(scan("1,234,567,890 and 3.14159265358979").empty());
  CHECK(scan("ISBN 978-3-16-148410-0, order 12-3456-7890").empty());
}

TEST_CASE("pii: prose and code give nothing") {
  const std::string prose =
      "The committee met on Tuesday, March 5, 2024, to review the 2023 budget. Of the 14 items "
      "on the agenda, 9 were approved and 3 deferred. Revenue grew 12.5% to $4.2 million, while "
      "costs fell by 300 thousand. The next meeting is scheduled for 10:00 AM in Room 204. "
      "Dr. Smith (PhD, MIT) noted that version 2.0 of the report was due in Q3. Call it a win.";
  CHECK(scan(prose).empty());
  const std::string code =
      "#include <cstdint>\n"
      "int main(int argc, char** argv) {\n"
      "  uint64_t x = 0xDEADBEEF12345678ULL + 1000000007;\n"
      "  for (int i = 0; i < 100; ++i) x = (x * 6364136223846793005ULL) % 4294967296;\n"
      "  @Override public void run() { sleep(1500); }\n"
      "  const char* s = \"2024-06-30T23:59:59+02:00\";\n"
      "  return (int)(x & 0xFF) + argc*365 - 86400;\n"
      "}\n";
  CHECK(scan(code).empty());
}

TEST_CASE("pii: mixed text yields each item once, in order") {
  const std::string t =
      "Name: Ann, e-mail ann@example.com, card 4242-4242-4242-4242, IBAN DE89370400440532013000, "
      "SSN 123-45-6789, phone +44 20 7946 0958.";
  const auto f = scan(t);
  REQUIRE(f.size() == 5);
  CHECK(f[0].detector == "pii.email");
  CHECK(f[1].detector == "pii.payment_card");
  CHECK(f[2].detector == "pii.iban");
  CHECK(f[3].detector == "pii.us_ssn");
  CHECK(f[4].detector == "pii.phone");
  for (const auto& x : f) CHECK(x.explanation.find("4242-4242") == std::string::npos);
}

TEST_CASE("pii: a megabyte of prose with numbers and capitals holds no PII") {
  const std::string para =
      "The quick brown fox jumps over the lazy dog. In 2023, About 14 Of The Members Voted; "
      "see section 4.2 (page 17) and the notes from March. Nothing here is personal at all, "
      "but there are Capitals, numbers like 42 and 1999, and e-mail-ish words such as at. ";
  std::string text;
  while (text.size() < (1u << 20)) text += para;
  PiiDetector d;
  std::vector<Finding> out;
  constexpr int kRounds = 10;
  for (int r = 0; r < kRounds; ++r) d.scan(text, Source::kUser, out);
  CHECK(out.empty());
}

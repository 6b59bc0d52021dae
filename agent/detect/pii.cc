#include "agent/detect/pii.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
#include <cstring>
#include <string>

namespace agentwall::detect {
namespace {

using Text = std::string_view;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || is_upper(c);
}
bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
char lower(char c) {
  return is_upper(c) ? char(c + 32) : c;
}

// Bytes that can start a candidate, or (digits) be the third byte of an IBAN, whose two
// capital letters are looked at from there: prose has far more capitals than digits, and
// each capital would stop the scan's stride. Everything else is skipped with one table load.
constexpr std::array<bool, 256> kAnchor = [] {
  std::array<bool, 256> a{};
  for (int c = '0'; c <= '9'; ++c) a[c] = true;
  a['@'] = a['+'] = a['('] = true;
  return a;
}();

#if defined(__SSE2__)
// kAnchor for 16 bytes at once: bit k set when p[k] is a digit, '@', '+' or '('.
unsigned anchor_mask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));  // digits: 0..9, unsigned
  const __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
  const __m128i mark = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('@')), _mm_cmpeq_epi8(v, _mm_set1_epi8('+'))),
      _mm_cmpeq_epi8(v, _mm_set1_epi8('(')));
  return unsigned(_mm_movemask_epi8(_mm_or_si128(digit, mark)));
}
#endif

size_t digit_run(Text t, size_t p) {
  size_t e = p;
  while (e < t.size() && is_digit(t[e])) ++e;
  return e - p;
}

// A number must stand alone: not glued to a word, an identifier, a version or a wider number
// (UUIDs, hashes, 1.2.3, 10:30, 1,234).
bool number_left_ok(Text t, size_t s) {
  if (s == 0) return true;
  const char p = t[s - 1];
  if (is_alnum(p) || p == '_' || p == '+' || p == '@') return false;
  if (s >= 2 && (p == '.' || p == '-' || p == '/') && is_alnum(t[s - 2])) return false;
  if (s >= 2 && (p == ':' || p == ',') && is_digit(t[s - 2])) return false;
  return true;
}

bool number_right_ok(Text t, size_t e) {
  if (e >= t.size()) return true;
  const char c = t[e];
  if (is_alnum(c) || c == '_' || c == '@') return false;
  const bool next_digit = e + 1 < t.size() && is_digit(t[e + 1]);
  if ((c == '.' || c == '/' || c == ':' || c == ',') && next_digit) return false;
  if (c == '-' && e + 1 < t.size() && is_alnum(t[e + 1])) return false;
  return true;
}

struct Word {
  std::string_view w;
  bool whole;  // must also end at a word boundary ("cc" but not "account", "tel" not "tell")
};

// Whether one of `words` (lower case) starts a word in the bytes shortly before or after
// [b, e). Only run once a candidate has validated, so its cost is off the hot path.
template <size_t N>
bool near(Text t, size_t b, size_t e, const Word (&words)[N]) {
  const size_t lo = b > 48 ? b - 48 : 0;
  const size_t hi = std::min(t.size(), e + 24);
  for (size_t i = lo; i < hi; ++i) {
    if (i >= b && i < e) continue;
    if (i > 0 && is_alpha(t[i - 1])) continue;
    const char c = lower(t[i]);
    for (const Word& w : words) {
      if (w.w[0] != c || i + w.w.size() > hi) continue;
      bool ok = true;
      for (size_t k = 1; k < w.w.size() && ok; ++k) ok = lower(t[i + k]) == w.w[k];
      if (ok && w.whole && i + w.w.size() < t.size() && is_alpha(t[i + w.w.size()])) ok = false;
      if (ok) return true;
    }
  }
  return false;
}

constexpr Word kCardWords[] = {{"card", false},   {"visa", false},  {"mastercard", false},
                               {"amex", false},   {"cc", true},     {"payment", false},
                               {"credit", false}, {"debit", false}, {"cvv", false}};
constexpr Word kSsnWords[] = {{"ssn", false}, {"social security", false}, {"ss#", false}};
constexpr Word kPhoneWords[] = {{"phone", false},    {"telephone", false}, {"tel", true},
                                {"call", false},     {"mobile", false},    {"cell", false},
                                {"fax", true},       {"contact", false},   {"sms", true},
                                {"whatsapp", false}, {"text me", false},   {"dial", false},
                                {"mob", true},       {"ph", true},         {"reach me", false}};

void emit(std::vector<Finding>& out, const char* id, double conf, size_t b, size_t e,
          std::string why) {
  Finding f;
  f.detector = id;
  f.category = Category::kPii;
  f.confidence = conf;
  f.spans.push_back({b, e});
  f.explanation = std::move(why);
  out.push_back(std::move(f));
}

// The last `k` digits of [b, e), skipping separators.
std::string last_digits(Text t, size_t b, size_t e, size_t k) {
  std::string r;
  for (size_t i = e; i > b && r.size() < k; --i)
    if (is_digit(t[i - 1])) r.insert(r.begin(), t[i - 1]);
  return r;
}

// ---- payment cards ----

bool luhn(const char* d, size_t n) {
  int sum = 0;
  for (size_t i = 0; i < n; ++i) {
    int v = d[n - 1 - i] - '0';
    if (i % 2 == 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  return sum % 10 == 0;
}

int prefix(const char* d, size_t k) {
  int v = 0;
  for (size_t i = 0; i < k; ++i) v = v * 10 + (d[i] - '0');
  return v;
}

// The network for a number of `n` digits, or nullptr when no known IIN range has that length.
const char* card_network(const char* d, size_t n) {
  const int p2 = prefix(d, 2), p3 = prefix(d, 3), p4 = prefix(d, 4);
  if (d[0] == '4' && (n == 13 || n == 16 || n == 19)) return "Visa";
  if (n == 16 && ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))) return "Mastercard";
  if (n == 15 && (p2 == 34 || p2 == 37)) return "American Express";
  if (n >= 16 && (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))) return "Discover";
  if (n >= 16 && p4 >= 3528 && p4 <= 3589) return "JCB";
  if (n >= 14 && (p2 == 36 || p2 == 38 || (p3 >= 300 && p3 <= 305))) return "Diners Club";
  if (n >= 16 && p2 == 62) return "UnionPay";
  return nullptr;
}

// Printed groupings: 4-4-4-4(-3), 4-4-4-1 (13-digit Visa), 4-6-5 (Amex), 4-6-4 (Diners).
bool card_grouping_ok(const size_t* g, size_t k, size_t total) {
  if (total < 13 || total > 19) return false;
  if (k == 1) return true;
  if (g[0] != 4) return false;
  if (k == 3 && g[1] == 6 && (g[2] == 5 || g[2] == 4)) return true;
  for (size_t i = 1; i + 1 < k; ++i)
    if (g[i] != 4) return false;
  return g[k - 1] >= 1 && g[k - 1] <= 4;
}

size_t match_card(Text t, size_t s, std::vector<Finding>& out) {
  constexpr size_t kMaxGroups = 6;
  size_t len[kMaxGroups], end[kMaxGroups], k = 0, total = 0;
  char digits[32];
  char sep = 0;
  size_t p = s;
  while (k < kMaxGroups) {
    const size_t r = digit_run(t, p);
    if (total + r > 19) break;
    std::memcpy(digits + total, t.data() + p, r);
    total += r;
    p += r;
    len[k] = r;
    end[k++] = p;
    if (p + 1 < t.size() && (t[p] == ' ' || t[p] == '-') && (sep == 0 || sep == t[p]) &&
        is_digit(t[p + 1])) {
      sep = t[p];
      ++p;
    } else {
      break;
    }
  }
  // Longest acceptable prefix of whole groups; a single run over 19 digits yields k == 0.
  size_t sum[kMaxGroups + 1] = {0};
  for (size_t i = 0; i < k; ++i) sum[i + 1] = sum[i] + len[i];
  for (size_t j = k; j >= 1; --j) {
    const size_t n = sum[j];
    if (!card_grouping_ok(len, j, n) || !number_right_ok(t, end[j - 1])) continue;
    const char* net = card_network(digits, n);
    if (!net || !luhn(digits, n)) continue;
    const bool ctx = near(t, s, end[j - 1], kCardWords);
    emit(out, "pii.payment_card", ctx ? 0.99 : 0.95, s, end[j - 1],
         std::string("payment card (") + net + ", ending " + std::string(digits + n - 4, 4) + ")");
    return end[j - 1];
  }
  return 0;
}

// ---- US social security numbers ----

bool ssn_valid(const char* d) {
  const int area = prefix(d, 3), group = prefix(d + 3, 2), serial = prefix(d + 5, 4);
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
  // Numbers published in advertising and pamphlets, never issued to a person.
  if (std::memcmp(d, "078051120", 9) == 0 || std::memcmp(d, "219099999", 9) == 0) return false;
  return true;
}

size_t match_ssn(Text t, size_t s, std::vector<Finding>& out) {
  char d[9];
  size_t e = 0;
  bool need_ctx = false;
  const size_t r = digit_run(t, s);
  if (r == 3 && s + 11 <= t.size() && (t[s + 3] == '-' || t[s + 3] == ' ') &&
      t[s + 6] == t[s + 3] && digit_run(t, s + 4) == 2 && digit_run(t, s + 7) == 4) {
    std::memcpy(d, t.data() + s, 3);
    std::memcpy(d + 3, t.data() + s + 4, 2);
    std::memcpy(d + 5, t.data() + s + 7, 4);
    e = s + 11;
  } else if (r == 9) {
    std::memcpy(d, t.data() + s, 9);
    e = s + 9;
    need_ctx = true;
  } else {
    return 0;
  }
  if (!number_right_ok(t, e) || !ssn_valid(d)) return 0;
  const bool ctx = near(t, s, e, kSsnWords);
  if (need_ctx && !ctx) return 0;
  emit(out, "pii.us_ssn", ctx ? 0.95 : 0.85, s, e, "US social security number");
  return e;
}

// ---- phone numbers ----

// NANP: area code and exchange start with 2-9.
bool nanp_ok(char area0, char exch0) {
  return area0 >= '2' && exch0 >= '2';
}

// "+" then 8-15 digits; single spaces or hyphens between groups, one parenthesised group.
size_t match_e164(Text t, size_t s, std::vector<Finding>& out) {
  if (s > 0 && (is_alnum(t[s - 1]) || t[s - 1] == '+')) return 0;
  size_t p = s + 1, digits = 0, end = 0, end_digits = 0;
  bool paren = false, used_paren = false;
  char first[4] = {0, 0, 0, 0};  // digits 1, 2 and 5 for the NANP check
  if (p >= t.size() || t[p] < '1' || t[p] > '9') return 0;
  while (p < t.size()) {
    const char c = t[p];
    if (is_digit(c)) {
      if (++digits > 15) return 0;  // a long digit run, not a phone number
      if (digits == 1) first[0] = c;
      if (digits == 2) first[1] = c;
      if (digits == 5) first[2] = c;
      ++p;
      if (!paren) end = p, end_digits = digits;
    } else if (c == '(' && !paren && !used_paren && p + 1 < t.size() && is_digit(t[p + 1])) {
      paren = used_paren = true;
      ++p;
    } else if (c == ')' && paren && is_digit(t[p - 1])) {
      paren = false;
      ++p;
      end = p, end_digits = digits;
    } else if ((c == ' ' || c == '-') && !paren && p + 1 < t.size() &&
               (is_digit(t[p - 1]) || t[p - 1] == ')') && (is_digit(t[p + 1]) || t[p + 1] == '(')) {
      ++p;
    } else {
      break;
    }
  }
  if (end_digits < 8 || end == 0 || t[end - 1] == ')') return 0;
  if (!number_right_ok(t, end)) return 0;
  if (first[0] == '1' && end_digits == 11 && !nanp_ok(first[1], first[2])) return 0;
  emit(out, "pii.phone", 0.7, s, end, "phone number (ending " + last_digits(t, s, end, 2) + ")");
  return end;
}

// (xxx) xxx-xxxx, xxx-xxx-xxxx, xxx.xxx.xxxx, xxx xxx xxxx: only near a word like "phone".
size_t match_nanp(Text t, size_t s, std::vector<Finding>& out) {
  size_t p = s;
  char area0, exch0;
  if (t[s] == '(') {
    if (s > 0 && is_alnum(t[s - 1])) return 0;
    if (digit_run(t, s + 1) != 3 || s + 5 >= t.size() || t[s + 4] != ')') return 0;
    area0 = t[s + 1];
    p = s + 5;
    if (p < t.size() && t[p] == ' ') ++p;
    if (digit_run(t, p) != 3 || p + 3 >= t.size()) return 0;
    exch0 = t[p];
    p += 3;
    if (t[p] != '-' && t[p] != '.' && t[p] != ' ') return 0;
    ++p;
  } else {
    if (digit_run(t, s) != 3 || s + 12 > t.size()) return 0;
    const char sep = t[s + 3];
    if ((sep != '-' && sep != '.' && sep != ' ') || t[s + 7] != sep) return 0;
    if (digit_run(t, s + 4) != 3) return 0;
    area0 = t[s];
    exch0 = t[s + 4];
    p = s + 8;
  }
  if (digit_run(t, p) != 4) return 0;
  const size_t e = p + 4;
  if (!nanp_ok(area0, exch0) || !number_right_ok(t, e)) return 0;
  if (!near(t, s, e, kPhoneWords)) return 0;
  emit(out, "pii.phone", 0.7, s, e,
       "phone number (North American, ending " + last_digits(t, s, e, 2) + ")");
  return e;
}

// ---- IBAN ----

struct IbanLen {
  char cc[3];
  uint8_t len;
};
// Lengths from the SWIFT IBAN registry.
constexpr IbanLen kIbanLens[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

size_t iban_length(char a, char b) {
  for (const auto& e : kIbanLens)
    if (e.cc[0] == a && e.cc[1] == b) return e.len;
  return 0;
}

// Caller has checked: two upper-case letters then two digits at s.
size_t match_iban(Text t, size_t s, std::vector<Finding>& out) {
  if (s > 0 && (is_alnum(t[s - 1]) || t[s - 1] == '_')) return 0;
  const size_t want = iban_length(t[s], t[s + 1]);
  if (want == 0) return 0;
  char c[34];
  std::memcpy(c, t.data() + s, 4);
  // Either compact, or printed in groups of four separated by single spaces.
  const bool grouped = s + 4 < t.size() && t[s + 4] == ' ';
  size_t p = s + 4, n = 4;
  while (n < want) {
    if (grouped && n % 4 == 0) {
      if (p >= t.size() || t[p] != ' ') return 0;
      ++p;
    }
    if (p >= t.size() || !(is_upper(t[p]) || is_digit(t[p]))) return 0;
    c[n++] = t[p++];
  }
  if (p < t.size() && (is_alnum(t[p]) || t[p] == '_')) return 0;
  // ISO 13616 check: move the first four characters to the end, letters as 10..35, mod 97.
  unsigned r = 0;
  for (size_t i = 0; i < want; ++i) {
    const char ch = c[(i + 4) % want];
    r = is_digit(ch) ? (r * 10 + unsigned(ch - '0')) % 97
                     : (r * 100 + unsigned(ch - 'A' + 10)) % 97;
  }
  if (r != 1) return 0;
  emit(out, "pii.iban", 0.97, s, p,
       std::string("IBAN (") + c[0] + c[1] + ", ending " + std::string(c + want - 4, 4) + ")");
  return p;
}

// ---- e-mail ----

bool is_local_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

// `at` is the '@'; returns the end of the address, or 0.
size_t match_email(Text t, size_t at, std::vector<Finding>& out) {
  size_t b = at;
  while (b > 0 && at - b < 64 && is_local_char(t[b - 1])) --b;
  if (b > 0 && is_local_char(t[b - 1])) return 0;  // local part longer than 64
  while (b < at && t[b] == '.') ++b;
  if (b == at || t[at - 1] == '.') return 0;
  for (size_t i = b; i + 1 < at; ++i)
    if (t[i] == '.' && t[i + 1] == '.') return 0;
  // user:password@host inside a URL is a credential, not an address.
  if (b > 0 && t[b - 1] == '/') return 0;
  if (b > 0 && t[b - 1] == ':') {
    for (size_t i = b - 1; i >= 2 && b - i < 256 && t[i] != ' ' && t[i] != '\n'; --i)
      if (t[i] == '/' && t[i - 1] == '/' && t[i - 2] == ':') return 0;
  }
  size_t p = at + 1, labels = 0, tld_b = 0;
  while (true) {
    const size_t lb = p;
    while (p < t.size() && (is_alnum(t[p]) || t[p] == '-')) ++p;
    if (p == lb || p - lb > 63 || t[lb] == '-' || t[p - 1] == '-') return 0;
    ++labels;
    tld_b = lb;
    if (p + 1 < t.size() && t[p] == '.' && is_alnum(t[p + 1])) {
      ++p;
      continue;
    }
    break;
  }
  if (labels < 2 || p - at - 1 > 253 || p - tld_b < 2) return 0;
  for (size_t i = tld_b; i < p; ++i)
    if (!is_alpha(t[i])) return 0;
  // icon@2x.png is an asset name.
  if (at + 3 < p && is_digit(t[at + 1]) && lower(t[at + 2]) == 'x' && t[at + 3] == '.') return 0;
  if (p < t.size()) {
    // git@github.com:org/repo is an SSH remote; a@b.com@c is something else again.
    if (t[p] == '@' || t[p] == '_') return 0;
    if (t[p] == ':' && p + 1 < t.size() && (is_alnum(t[p + 1]) || t[p + 1] == '/')) return 0;
  }
  emit(out, "pii.email", 0.9, b, p,
       "e-mail address (\u2026@" + std::string(t.substr(at + 1, p - at - 1)) + ")");
  return p;
}

}  // namespace

void PiiDetector::scan(std::string_view t, Source, std::vector<Finding>& out) const {
  const size_t n = t.size();
  size_t i = 0;
  while (i < n) {
    // Most bytes are letters, spaces and punctuation: sixteen (SSE2) or eight at a time
    // while none of them can start a candidate, one branch for all of them. With SSE2 the
    // scan then lands on the first byte that can.
#if defined(__SSE2__)
    if (i + 16 <= n) {
      const unsigned m = anchor_mask16(t.data() + i);
      if (!m) {
        i += 16;
        continue;
      }
      i += size_t(std::countr_zero(m));
    }
#else
    if (i + 8 <= n) {
      bool anchor = false;
      for (size_t k = 0; k < 8; ++k) anchor |= kAnchor[uint8_t(t[i + k])];
      if (!anchor) {
        i += 8;
        continue;
      }
    }
#endif
    if (!kAnchor[uint8_t(t[i])]) {
      ++i;
      continue;
    }
    const char c = t[i];
    size_t e = 0;
    if (is_digit(c)) {
      // An IBAN: two capitals, then two check digits.
      if (i >= 2 && i + 1 < n && is_upper(t[i - 2]) && is_upper(t[i - 1]) && is_digit(t[i + 1]))
        e = match_iban(t, i - 2, out);
      if (!e && number_left_ok(t, i)) {
        e = match_card(t, i, out);
        if (!e) e = match_ssn(t, i, out);
        if (!e) e = match_nanp(t, i, out);
      }
      // Nothing inside the rest of this run can start a number.
      if (!e) e = i + digit_run(t, i);
    } else if (c == '@') {
      e = match_email(t, i, out);
    } else if (c == '+') {
      e = match_e164(t, i, out);
    } else if (c == '(') {
      if (i + 1 < n && is_digit(t[i + 1])) e = match_nanp(t, i, out);
    }
    i = e > i ? e : i + 1;
  }
}

std::unique_ptr<Detector> make_pii_detector() {
  return std::make_unique<PiiDetector>();
}

}  // namespace agentwall::detect

#include "agent/detect/injection.h"

#include "agent/common/embed.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fcntl.h>
#include <hs/hs.h>
#include <pcre2.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include "agent/common/fd_io.h"
#include "agent/detect/disguise.h"
#include "agent/detect/harmful_code.h"
#include "agent/detect/injection_rules.h"
#include "agent/detect/ngram_model.h"

namespace agentwall::detect {
namespace {

// Scratch space is per thread and per rule set (one serves both its databases); scan()
// stays const and thread-safe.
struct Scratch {
  const void* owner = nullptr;
  hs_scratch_t* scratch = nullptr;
  ~Scratch() {
    if (scratch) hs_free_scratch(scratch);
  }
};

// vectorscan says which rules matched; tracking where matches start would cost on every
// scan, and matches are rare, so the span is found afterwards by PCRE2 on the few rules
// that matched.
int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* ctx) {
  static_cast<std::vector<unsigned>*>(ctx)->push_back(id);
  return 0;
}

int on_any_match(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  *static_cast<bool*>(ctx) = true;
  return 1;  // one is enough: stop scanning
}

}  // namespace

namespace {

// compile_rule_database for this machine, in a child process that hands the database back
// serialized: used only when the databases compiled at build time do not fit (see RuleSet).
// Compiling makes hundreds of thousands of short-lived allocations among the long-lived ones,
// and the allocator cannot give the pages they leave half-used back: in the agent that was
// 13 MiB of its resident memory for 3 MiB in use. In a child they go when it exits. Where
// fork fails (a sandbox), it compiles here.
hs_database_t* compile_rules(const std::vector<std::string>& patterns) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return compile_rule_database(patterns, nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return compile_rule_database(patterns, nullptr);
  }
  if (child == 0) {
    ::close(fds[0]);
    std::string out;  // "D" + the database, or "E" + why it does not compile
    try {
      out = "D" + serialize_rule_database(compile_rule_database(patterns, nullptr));
    } catch (const std::exception& e) {
      out = std::string("E") + e.what();
    }
    ::_exit(write_all(fds[1], out.data(), out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  // A compile takes about a second; a child that has sent nothing for a minute is stuck (a
  // lock some other thread held at the fork): it is killed and the compile runs here.
  std::string in;
  char buffer[65536];
  bool stuck = false;
  for (;;) {
    pollfd readable{fds[0], POLLIN, 0};
    const int ready = ::poll(&readable, 1, 60'000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) stuck = true;
    if (ready <= 0) break;
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (stuck) ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (stuck) return compile_rule_database(patterns, nullptr);
  if (in.size() > 1 && in[0] == 'E') throw std::runtime_error(in.substr(1));
  hs_database_t* db = nullptr;
  if (in.size() > 1 && in[0] == 'D' && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      hs_deserialize_database(in.data() + 1, in.size() - 1, &db) == HS_SUCCESS)
    return db;
  return compile_rule_database(patterns, nullptr);  // the child died: compile here
}

bool is_tool_content(Source s) {
  return s == Source::kToolResult || s == Source::kToolDescription;
}

// The rules compiled: for vectorscan (which rules match; the databases built with agentwall,
// else compiled here) and for PCRE2 (where). Once per process; both are immutable and safe
// to share between threads.
class RuleSet {
 public:
  RuleSet() {
    const RulePatterns rules = rule_patterns();
    if (!load_embedded(rules)) {
      db_ = compile_rules(rules.patterns);
      try {
        prefilter_ = compile_rules(rules.prefilters);
      } catch (...) {
        release();
        throw;
      }
    }
    for (const std::string& p : rules.patterns) {
      int code = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                     PCRE2_CASELESS | PCRE2_MULTILINE, &code, &offset, nullptr);
      if (!re) {
        release();
        throw std::runtime_error("injection rule " + p + " does not compile for PCRE2 at " +
                                 std::to_string(offset));
      }
      // JIT-compiled: the span search runs on the whole text for each matching rule, and
      // the interpreter took a few hundred thousand instructions per call on 4 KiB. Without
      // JIT support (or memory for it) the interpreter runs.
      pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
      spans_.push_back(re);
    }
  }
  ~RuleSet() { release(); }
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  // The rules that match somewhere in `text`, each once, in the order vectorscan reports them.
  std::vector<unsigned> match(std::string_view text) const {
    thread_local Scratch scratch;
    std::vector<unsigned> matched;
    if (scratch.owner != this) {
      if (hs_alloc_scratch(db_, &scratch.scratch) != HS_SUCCESS ||
          hs_alloc_scratch(prefilter_, &scratch.scratch) != HS_SUCCESS)
        return matched;
      scratch.owner = this;
    }
    // vectorscan takes at most 4 GiB at once; messages are far smaller.
    const unsigned len = unsigned(std::min<size_t>(text.size(), 0xffffffffu));
    // Most text matches no rule, and the prefilters (each rule's, or the rule itself) say so
    // at a fraction of the cost. When they find something the whole set runs as before, so
    // which rules are reported, and in which order, does not depend on them.
    bool maybe = false;
    hs_scan(prefilter_, text.data(), len, 0, scratch.scratch, on_any_match, &maybe);
    if (maybe) hs_scan(db_, text.data(), len, 0, scratch.scratch, on_match, &matched);
    return matched;
  }

  // Where rule `rule` first matches in `text` (the whole text if PCRE2 disagrees).
  Span span_of(unsigned rule, std::string_view text) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(spans_[rule], nullptr);
    Span span{0, text.size()};
    if (md && pcre2_match(spans_[rule], reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                          0, md, nullptr) > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      span = {ov[0], ov[1]};
    }
    pcre2_match_data_free(md);
    return span;
  }

  // Whether every match of rule `rule` in `text` satisfies `pred` (and there is one).
  template <typename Pred>
  bool every_match(unsigned rule, std::string_view text, Pred pred) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(spans_[rule], nullptr);
    bool all = md != nullptr, any = false;
    for (size_t at = 0; all && at <= text.size();) {
      if (pcre2_match(spans_[rule], reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), at, 0,
                      md, nullptr) <= 0)
        break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      any = true;
      all = pred(Span{ov[0], ov[1]});
      at = std::max<size_t>(ov[1], ov[0] + 1);
    }
    pcre2_match_data_free(md);
    return all && any;
  }

  // Whether the databases are the ones compiled when agentwall was built.
  bool precompiled() const { return precompiled_; }

 private:
  // The databases compiled at build time (agent/detect/precompile/), when they are of these
  // rules and this vectorscan can run them on this CPU: they were compiled for any x86-64
  // (no AVX2), so only a library of another version or another architecture refuses them.
  // Deserializing takes milliseconds where compiling takes seconds.
  bool load_embedded(const RulePatterns& rules) {
    const std::optional<PrecompiledRules> p = decode_precompiled(embedded_rule_databases());
    // Deserialized into memory of its own (or refused): the 5 MB embedded are not read again.
    struct Release {
      ~Release() { release_embedded(embedded_rule_databases()); }
    } release_after;
    if (!p || p->fingerprint != rule_set_fingerprint(rules)) return false;
    hs_scratch_t* probe = nullptr;
    if (hs_deserialize_database(p->rules.data(), p->rules.size(), &db_) == HS_SUCCESS &&
        hs_deserialize_database(p->prefilters.data(), p->prefilters.size(), &prefilter_) ==
            HS_SUCCESS &&
        hs_alloc_scratch(db_, &probe) == HS_SUCCESS &&
        hs_alloc_scratch(prefilter_, &probe) == HS_SUCCESS) {
      hs_free_scratch(probe);
      precompiled_ = true;
      return true;
    }
    if (probe) hs_free_scratch(probe);
    hs_free_database(db_);
    hs_free_database(prefilter_);
    db_ = prefilter_ = nullptr;
    return false;
  }

  void release() {
    hs_free_database(db_);
    hs_free_database(prefilter_);
    prefilter_ = nullptr;
    for (pcre2_code* r : spans_) pcre2_code_free(r);
    spans_.clear();
    db_ = nullptr;
  }

  hs_database_t* db_ = nullptr;         // every rule
  hs_database_t* prefilter_ = nullptr;  // every rule's prefilter, or the rule
  std::vector<pcre2_code*> spans_;
  bool precompiled_ = false;
};

// The code point that ends just before byte `at` of UTF-8 `text` (0 at the start).
char32_t code_point_before(std::string_view text, size_t at) {
  size_t b = at;
  while (b > 0 && at - b < 4 && (static_cast<unsigned char>(text[b - 1]) & 0xC0) == 0x80) --b;
  if (b == 0) return 0;
  --b;
  const auto c = static_cast<unsigned char>(text[b]);
  if (c < 0x80) return c;
  const int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
  char32_t cp = c & (0x3F >> n);
  for (int i = 1; i <= n && b + i < at; ++i)
    cp = (cp << 6) | (static_cast<unsigned char>(text[b + i]) & 0x3F);
  return cp;
}

// Whether `head`, a line up to a colon, is prose ("a common example is the phrase:") rather
// than a key or a label (`note:`, `- input:`, `"review":`, "Sentence:"): a clause of three
// words or more, not ending in a quote.
bool prose_before_colon(std::string_view head) {
  // The clause that ends at the colon: three words at least.
  if (const size_t stop = head.find_last_of(".!?;"); stop != std::string_view::npos)
    head.remove_prefix(stop + 1);
  while (!head.empty() && (head.front() == ' ' || head.front() == '-' || head.front() == '\t'))
    head.remove_prefix(1);
  while (!head.empty() && head.back() == ' ') head.remove_suffix(1);
  return std::count(head.begin(), head.end(), ' ') >= 2 && head.back() != '"' &&
         head.back() != '\'';
}

// Whether `s` lies inside a quotation written into a sentence: an opening quote on the same
// line, at most 60 bytes before it, right after a word ("an attacker can hide a line such as
// \"ignore your previous instructions\" in a page", 「これまでの指示を無視して」といった文),
// and its closing quote after `s` on that line, not inside it, or right after a colon that
// ends prose ("the phrase: \"…\""). A JSON or YAML value (`"note": "…"`, `note: "…"`) follows
// a key's colon and does not count: that is where injected orders sit.
bool quoted_in_prose(std::string_view text, Span s) {
  struct Pair {
    std::string_view open, close;
  };
  static constexpr Pair kQuotes[] = {
      {"\"", "\""},         {"\u201C", "\u201D"}, {"\u00AB", "\u00BB"}, {"\u300C", "\u300D"},
      {"\u300E", "\u300F"}, {"\u201E", "\u201C"}, {"\u2018", "\u2019"}, {"`", "`"}};
  const size_t line = text.rfind('\n', s.begin == 0 ? 0 : s.begin - 1);
  const size_t from = line == std::string_view::npos || s.begin == 0 ? 0 : line + 1;
  const size_t stop = std::max(from, s.begin >= 60 ? s.begin - 60 : size_t{0});
  size_t end = text.find('\n', s.end);
  if (end == std::string_view::npos) end = text.size();
  static constexpr std::string_view kCloseOnly[] = {"\u201D", "\u00BB", "\u300D", "\u300F",
                                                    "\u2019"};
  const auto ends_at = [&](size_t i, std::string_view q) {
    return i - stop >= q.size() && text.substr(i - q.size(), q.size()) == q;
  };
  for (size_t i = s.begin; i > stop; --i) {
    // The nearest quote before the match opens the quotation, or there is none.
    for (std::string_view close : kCloseOnly)
      if (ends_at(i, close)) return false;
    for (const Pair& q : kQuotes) {
      if (!ends_at(i, q.open)) continue;
      // A straight quote opens only after an even number of them on the line.
      if (q.open == q.close) {
        const std::string_view left = text.substr(from, i - q.open.size() - from);
        if (std::count(left.begin(), left.end(), q.open[0]) % 2 != 0) return false;
      }
      size_t word = i - q.open.size();
      while (word > from && text[word - 1] == ' ') --word;
      const char32_t before = code_point_before(text, word);
      const bool after_word =
          (before < 0x80 && std::isalnum(static_cast<int>(before))) ||
          (before >= 0xC0 && before < 0x2000) || before >= 0x2E80 ||
          (before == ':' && prose_before_colon(text.substr(from, word - 1 - from)));
      // The quotation closes after the match, not inside it.
      const size_t close = text.substr(0, end).find(q.close, i);
      return after_word && word > from && close != std::string_view::npos && close >= s.end;
    }
  }
  return false;
}

// Rules whose words a document about prompt injection quotes: in a tool result, a match
// inside a quotation in prose is a mention, and weighs at most this much.
constexpr double kQuotedMention = 0.4;
constexpr std::string_view kQuotedNote = " (quoted in prose: a mention more than an order)";
// An order to insert code that does what malware does (harmful_code.h): in a prompt, over the
// threshold alone; in content, nearly certain.
constexpr double kHarmfulInsertion = 0.75;
constexpr double kHarmfulInsertionInContent = 0.95;

bool quotable(std::string_view id) {
  return id == "injection.ignore_instructions" || id == "injection.prompt_extraction" ||
         id == "injection.jailbreak" || id == "injection.new_instructions";
}

constexpr std::string_view kModelId = "injection.model";

const RuleSet& rule_set() {
  static const RuleSet rules;
  return rules;
}

class InjectionDetector final : public Detector {
 public:
  explicit InjectionDetector(bool with_model)
      : rules_(rule_set()), model_(with_model ? &injection_model() : nullptr) {}

  std::string_view name() const override { return "injection"; }

  void scan(std::string_view text, Source source, std::vector<Finding>& out) const override {
    // The model learned from prompts and from content handed to a model; on the model's own
    // output and tool-call arguments (code, JSON) its word means nothing, and there a
    // disguise is not looked for either: code and JSON are dense with ids and odd words.
    if (source == Source::kModelOutput || source == Source::kToolArguments) {
      read(text, source, nullptr, out);
      return;
    }
    // The text's words are read once, for the model and for the signs of a disguise.
    thread_local TextWords words;
    read_words(text, words);
    read(text, source, &words, out);
    const DisguiseSigns signs = disguise_signs(text, words);
    if (!signs.any()) return;
    // The text read again with the disguise undone, by the rules and the model: what they find
    // there is kept where it is stronger than what the text as written gave. Single letters
    // and words backwards mean nothing to the model, which of such text had judged the rest
    // alone (a "Reverse this string:" before it, p 0.86): there its reading of the text undone
    // replaces its reading of the text as written.
    std::optional<Finding> model;
    bool replace = false;
    const std::vector<Undisguised> views = undisguise(text, words, signs);
    for (const Undisguised& u : views) {
      thread_local TextWords undone;
      read_words(u.text, undone);
      std::vector<Finding> again;
      read(u.text, source, &undone, again);
      if (u.capped_by_request) cap_by_request(text, u.at, source, again);
      replace |= u.replaces_model_reading;
      for (Finding& f : again) {
        f.spans.assign(1, u.at);
        f.explanation += " (disguised: " + std::string(u.how) + ")";
        if (f.detector == kModelId) {
          if (!model || f.confidence > model->confidence) model = std::move(f);
          continue;
        }
        const bool weaker = std::any_of(out.begin(), out.end(), [&](const Finding& g) {
          return g.detector == f.detector && g.confidence >= f.confidence;
        });
        if (!weaker) out.push_back(std::move(f));
      }
    }
    if (!views.empty()) {
      const auto as_written = std::find_if(out.begin(), out.end(),
                                           [](const Finding& f) { return f.detector == kModelId; });
      if (as_written != out.end() &&
          (replace || (model && model->confidence > as_written->confidence)))
        out.erase(as_written);
      if (model && std::none_of(out.begin(), out.end(),
                                [](const Finding& f) { return f.detector == kModelId; }))
        out.push_back(std::move(*model));
    }
    // And the strongest orders with their words disguised in ways no view undoes (run
    // together, or a mix), where neither reading found their rule.
    const bool tool = is_tool_content(source);
    for (const DisguisedOrder& d : find_disguised(text, signs, out)) {
      out.push_back({std::string(d.id),
                     Category::kInjection,
                     tool ? d.tool_confidence : d.confidence,
                     {d.span},
                     std::string(d.explanation) + " (disguised: " + std::string(d.how) + ")"});
    }
  }

 private:
  // A view's model finding in `found` weighs no more than the model's reading of the request
  // around it, `text` without `at`: "Reverse this text: <a benign line backwards>" is the
  // request the model learned from "reply backwards" attacks, and the line turned round adds
  // little to it, where a reversed order makes the view stronger than the request alone.
  // A request too short to be read at all (fewer than the model's minimum of words) leaves
  // the view no model finding: the view turned round whole still reads the line alone.
  void cap_by_request(std::string_view text, Span at, Source source,
                      std::vector<Finding>& found) const {
    const auto f = std::find_if(found.begin(), found.end(),
                                [](const Finding& g) { return g.detector == kModelId; });
    if (f == found.end() || !model_) return;
    thread_local std::string request;
    request.assign(text.substr(0, at.begin)).push_back(' ');
    request.append(text.substr(std::min(at.end, text.size())));
    thread_local TextWords words;
    read_words(request, words);
    const NgramModel::Result m = model_->score(
        request, words,
        is_tool_content(source) ? NgramModel::View::kContent : NgramModel::View::kPrompt);
    if (m.probability >= f->confidence) return;
    if (m.probability < NgramModel::kReportFrom) {
      found.erase(f);
      return;
    }
    char why[96];
    std::snprintf(why, sizeof(why), " (p=%.2f for the request alone)", m.probability);
    f->confidence = m.probability;
    f->explanation += why;
  }

  // The rules and, where `words` are given (the text's, read_words), the model.
  void read(std::string_view text, Source source, const TextWords* words,
            std::vector<Finding>& out) const {
    const bool tool = is_tool_content(source);
    // One finding per rule id, with a span per matching pattern and the strongest confidence.
    // Parts are never findings; a rule that names one counts only where it matched too, and
    // carries its span.
    const std::vector<unsigned> matched = rules_.match(text);
    for (unsigned rule : matched) {
      const InjectionRule& r = injection_rules()[rule];
      if (is_part(r)) continue;
      const auto part = r.with.empty()
                            ? matched.end()
                            : std::find_if(matched.begin(), matched.end(), [&](unsigned m) {
                                return injection_rules()[m].id == r.with;
                              });
      if (!r.with.empty() && part == matched.end()) continue;
      double c = tool ? r.tool_confidence : r.confidence;
      // A tool result that quotes an attack to explain it ("a line such as \"ignore your
      // previous instructions\"") mentions the order; every match must be so quoted.
      const bool mention =
          tool && c > kQuotedMention && quotable(r.id) &&
          rules_.every_match(rule, text, [&](Span s) { return quoted_in_prose(text, s); });
      if (mention) c = kQuotedMention;
      const auto explanation = [&] {
        std::string why(r.explanation);
        if (mention) why += kQuotedNote;
        return why;
      };
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const Finding& f) { return f.detector == r.id; });
      if (it == out.end()) {
        out.push_back({std::string(r.id), Category::kInjection, c, {}, explanation()});
        it = out.end() - 1;
      } else if (c > it->confidence) {
        it->confidence = c;
        it->explanation = explanation();
      }
      it->spans.push_back(rules_.span_of(rule, text));
      if (part != matched.end()) it->spans.push_back(rules_.span_of(*part, text));
    }
    // An order to put given code into the answer is also how a developer hands over their own
    // snippet; code that does what malware does makes it an attack in a prompt too.
    const auto insertion = std::find_if(out.begin(), out.end(), [](const Finding& f) {
      return f.detector == "injection.code_insertion";
    });
    if (insertion != out.end()) {
      if (const auto harm = harmful_code(text)) {
        insertion->confidence =
            std::max(insertion->confidence, tool ? kHarmfulInsertionInContent : kHarmfulInsertion);
        insertion->explanation += ", code that " + harm->what;
        insertion->spans.push_back(harm->at);
      }
    }
    if (model_ && words) {
      const NgramModel::Result m = model_->score(
          text, *words, tool ? NgramModel::View::kContent : NgramModel::View::kPrompt);
      if (m.probability >= NgramModel::kReportFrom) {
        // Which view scored it: the same words weigh differently in a prompt and in content.
        char why[128];
        std::snprintf(why, sizeof(why),
                      "reads like a prompt injection to the learned model (p=%.2f, read as %s)",
                      m.probability, tool ? "tool content" : "a prompt");
        out.push_back({std::string(kModelId),
                       Category::kInjection,
                       m.probability,
                       {{m.window.begin, m.window.end}},
                       why});
      }
    }
  }

 private:
  const RuleSet& rules_;
  const NgramModel* model_;
};

}  // namespace

bool injection_rules_precompiled() {
  return rule_set().precompiled();
}

std::unique_ptr<Detector> make_injection_detector(bool with_model) {
  return std::make_unique<InjectionDetector>(with_model);
}

}  // namespace agentwall::detect

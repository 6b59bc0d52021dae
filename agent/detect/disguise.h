// Orders disguised by how their words are written rather than by which characters: letters
// spaced out ("i g n o r e", "i.g.n.o.r.e"), words split ("ig-nore"), run together
// ("ignoreallpreviousinstructions"), in leetspeak ("1gn0r3 4ll pr3v10u5") or backwards. The
// normaliser folds look-alike and invisible characters; these are plain ASCII, and the rules,
// which read words, do not see them. The words the model reads (read_words) show whether a
// text may be disguised (disguise_signs); where they do, the text with the disguise undone
// (undisguise) is read again by the rules and the model. What no view undoes (words run
// together, mixed disguises) a short set of phrases looks for in the text's letters alone
// (find_disguised): lower case, leetspeak digits and symbols read as letters and 'l' read as
// 'i' (one stroke in leetspeak: "a11"). A phrase counts only where the words as written are
// disguised: the rules have already read plain words.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/detect/finding.h"
#include "agent/detect/ngram_model.h"

namespace agentwall::detect {

// The letters of `text` as the disguised phrases are written: ASCII letters in lower case with
// 'l' as 'i'; leetspeak characters inside a word that has letters read as letters (0 o, 1 ! |
// i, 3 e, 4 @ a, 5 $ s, 7 t, 8 b); everything else left out, except that '\n' stands where a
// line or a sentence ends (a newline; ". , ; : ! ?" and a space after a word of two letters or
// more; a character outside ASCII), so that no phrase spans two sentences.
struct Squeezed {
  size_t size = 0;           // how many letters were read: the buffers below are reused
  std::string letters;       // the first `size` bytes
  std::vector<uint32_t> at;  // the byte of `text` each of `letters` was read from
  std::string_view view() const { return {letters.data(), size}; }
};
void squeeze(std::string_view text, Squeezed& out);

// How the words of `text` at `s` are disguised, for an explanation ("letters spaced out",
// "in leetspeak", …), or empty when they are written as plain words.
std::string_view disguise_of(std::string_view text, Span s);

// A disguised phrase found in a text: which injection rule it stands for, with that rule's
// confidences and meaning, where it is (bytes of the text) and how it was disguised.
struct DisguisedOrder {
  std::string_view id;
  double confidence, tool_confidence;
  std::string_view explanation;
  Span span;
  std::string_view how;
};
// What the words of a text (read_words) show of a disguise, without walking the text again.
// Most texts show none and are read no second way.
struct DisguiseSigns {
  bool leetspeak = false;     // a leetspeak digit between letters, in a word of one case
                              // ("1gn0r3", not "3f2a9b" or "x3G8"); a symbol joining letters
                              // ("p@ss", "pa$$")
  bool spaced = false;        // four single letters in a row, one character apart
  bool split = false;         // '*' between letters ("ig*nore"); '-' in a quarter of the words
  bool run_together = false;  // 17 letters or more with no space and no capital after a
                              // small letter (camelCase has short stretches)
  bool backwards = false;     // two of the commonest short words written backwards ("eht",
                              // "ruoy", "dna", ...), as often as forwards or more
  bool any() const { return leetspeak || spaced || split || run_together || backwards; }
};
DisguiseSigns disguise_signs(std::string_view text, const TextWords& words);

// Every disguised phrase in `text`, at most one per rule id, leaving out the rules that
// `already` has findings of (the plain reading found them). Throws std::runtime_error when the
// phrase set does not compile (a bug: the unit tests compile it).
std::vector<DisguisedOrder> find_disguised(std::string_view text, const DisguiseSigns& signs,
                                           const std::vector<Finding>& already);

// The text with a disguise undone, to be read again by the rules and the model: leetspeak read
// as letters (byte for byte), letters spaced out joined into words, words split by '*' or '-'
// joined, text written backwards turned round. `at` is the part of the text that was
// disguised.
struct Undisguised {
  std::string text;
  Span at;
  std::string_view how;  // "in leetspeak", "letters spaced out", "written backwards"
  // Whether the learned model's reading of `text` replaces its reading of the text as written:
  // single letters and words backwards mean nothing to it, and of such text it judged the
  // rest alone. Leetspeak words are some of a text's words, and the model has seen some.
  bool replaces_model_reading = false;
  // Whether the model's reading of `text` counts no more than its reading of the text outside
  // `at` alone: text turned round in place behind a request ("Reverse this text: ...") that
  // the model, on its own, takes for an order to disguise the answer.
  bool capped_by_request = false;
};
std::vector<Undisguised> undisguise(std::string_view text, const TextWords& words,
                                    const DisguiseSigns& signs);

}  // namespace agentwall::detect

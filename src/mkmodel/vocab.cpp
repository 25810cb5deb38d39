#include "mkmodel/vocab.hpp"

#include <fmt/format.h>

#include <array>
#include <unordered_set>

namespace troupe::mkmodel {
namespace {

constexpr std::int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;
const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's word-boundary mark

// Common English words: pieces for them make tokenization of ordinary text look natural.
constexpr std::array kWords = {
    "the",     "and",   "that",  "have",  "for",    "not",   "with",  "you",    "this",  "but",
    "his",     "from",  "they",  "say",   "her",    "she",   "will",  "one",    "all",   "would",
    "there",   "their", "what",  "out",   "about",  "who",   "get",   "which",  "when",  "make",
    "can",     "like",  "time",  "just",  "him",    "know",  "take",  "people", "into",  "year",
    "your",    "good",  "some",  "could", "them",   "see",   "other", "than",   "then",  "now",
    "look",    "only",  "come",  "its",   "over",   "think", "also",  "back",   "after", "use",
    "two",     "how",   "our",   "work",  "first",  "well",  "way",   "even",   "new",   "want",
    "because", "any",   "these", "give",  "day",    "most",  "hello", "world",  "model", "token",
    "server",  "actor", "once",  "upon",  "little", "girl",  "boy",   "play"};

class PieceSet {
 public:
  explicit PieceSet(Vocab& v) : v_(v) {}
  bool full(std::size_t limit) const { return v_.tokens.size() >= limit; }
  void add(const std::string& piece, std::int32_t type = kNormal) {
    if (!seen_.insert(piece).second)
      return;
    v_.scores.push_back(-static_cast<float>(v_.tokens.size()));
    v_.tokens.push_back(piece);
    v_.types.push_back(type);
  }
  // Adds every prefix of `word` (after the boundary mark, if any), shortest first.
  void add_with_prefixes(const std::string& mark, const std::string& word) {
    for (std::size_t n = 1; n <= word.size(); ++n)
      add(mark + word.substr(0, n));
  }

 private:
  Vocab& v_;
  std::unordered_set<std::string> seen_;
};

void add_fixed(Vocab& v, PieceSet& set) {
  set.add("<unk>", kUnknown);
  set.add("<s>", kControl);
  set.add("</s>", kControl);
  for (int b = 0; b < 256; ++b)
    set.add(fmt::format("<0x{:02X}>", b), kByte);
  v.im_start_id = static_cast<std::int32_t>(v.tokens.size());
  set.add("<|im_start|>", kControl);
  v.im_end_id = static_cast<std::int32_t>(v.tokens.size());
  set.add("<|im_end|>", kControl);
}

void add_pieces(PieceSet& set, std::size_t limit) {
  set.add(kSpace);
  for (char c = 33; c < 127; ++c)
    set.add(std::string(1, c));
  for (char c = 33; c < 127; ++c)
    set.add(kSpace + std::string(1, c));
  for (const char* w : kWords)
    set.add_with_prefixes(kSpace, w);
  for (const char* w : kWords)
    set.add_with_prefixes("", w);
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
  for (int len = 2; len <= 3 && !set.full(limit); ++len) {
    for (const std::string& mark : {std::string(), kSpace}) {
      std::string piece(static_cast<std::size_t>(len), 'a');
      std::array<std::size_t, 3> idx{};
      while (!set.full(limit)) {
        for (int i = 0; i < len; ++i)
          piece[i] = letters[idx[i]];
        set.add(mark + piece);
        int i = len - 1;
        while (i >= 0 && ++idx[i] == letters.size())
          idx[i--] = 0;
        if (i < 0)
          break;
      }
    }
  }
}

}  // namespace

std::int32_t max_vocab() {
  return 35000;
}

Vocab build_vocab(std::int32_t n_vocab) {
  Vocab v;
  PieceSet set(v);
  add_fixed(v, set);
  add_pieces(set, static_cast<std::size_t>(n_vocab));
  v.tokens.resize(static_cast<std::size_t>(n_vocab));
  v.scores.resize(v.tokens.size());
  v.types.resize(v.tokens.size());
  return v;
}

const char* chatml_template() {
  return "{% for message in messages %}"
         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
         "{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

}  // namespace troupe::mkmodel

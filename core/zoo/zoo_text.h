// The bundled default model's corpus: English-like sentences from a small procedural grammar
// with the project's own word lists (no outside text), repeated spans of random words, and
// needle episodes ("The code of the red door is zolvak. ... Answer: zolvak."), all from a seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "core/zoo/zoo_tasks.h"

namespace ms {

class TextGenerator {
 public:
  explicit TextGenerator(uint64_t seed) : m_rng(seed) {}

  // One sentence, capitalised and ending in "." (or "?" / "!"), no leading space.
  std::string sentence();
  // Sentences about one cast of characters, joined by spaces.
  std::string paragraph(int64_t n_sentences);
  // A made-up word of 2 or 3 syllables ("zolvak"), the values of needles.
  std::string made_up_word();
  // n words drawn at random from the whole lexicon (including made-up ones), space separated.
  std::string random_words(int64_t n);
  // A span of random words written twice, in a sentence frame ("... list: a b c. Again: a b c.").
  std::string repeated_span();
  // Text for training the tokenizer: paragraphs, repeated spans and needle episodes, \n\n apart.
  std::string document();

  TaskRng& rng() { return m_rng; }

 private:
  std::string noun_phrase(bool subject);
  std::string clause();
  TaskRng m_rng;
  std::vector<std::string> m_cast;  // names of the current paragraph
};

// A needle episode in text, tokenized: filler sentences, n_needles statements "The code of the
// <thing> is <word>." at random places, then "Question: what is the code of the <thing>? Answer:
// <word>." The answer's tokens are copied from the asked needle's (source_pos). At most max_len
// tokens (BOS included when the tokenizer adds one).
Episode text_needle_episode(const Tokenizer& tok, TextGenerator& gen, int64_t max_len,
                            int64_t n_needles = 2);

// The induction probe of a text model: [batch, 1 + 2 * half]: BOS, " w1 ... wn." (random words
// of the lexicon, made-up ones included, exactly `half` tokens), then the same tokens again, as
// the corpus repeats spans of 4 to 16 words.
at::Tensor repeated_word_probe(const Tokenizer& tok, TextGenerator& gen, int64_t batch, int64_t half);

// The default model's training mix as one sequence of exactly seq_len tokens: BOS, then
// paragraphs, repeated spans and needle episodes joined by "\n\n", cut at seq_len.
std::vector<int32_t> corpus_sequence(const Tokenizer& tok, TextGenerator& gen, int64_t seq_len);
TaskBatch corpus_batch(const Tokenizer& tok, TextGenerator& gen, int64_t batch, int64_t seq_len);

}  // namespace ms

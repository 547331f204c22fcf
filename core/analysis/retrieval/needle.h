// Needle-in-a-haystack episodes for the retrieval analysis: token-id episodes for toy models
// without a tokenizer, and text episodes (a haystack text or procedural filler, JSONL needles,
// the needle inserted at the sentence boundary nearest each depth, the question at the end).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/base/result.h"
#include "core/analysis/retrieval/retrieval.h"

namespace ms {

struct Needle {
  std::string needle, question, answer;
  // What follows the haystack; "" gives "\n\nQuestion: <question>\nAnswer:". A model trained on
  // another form (the default model: " Question: ...? Answer:") is asked in its own.
  std::string cue;
};

// The default needle set (the same as resources/needles/default.jsonl).
std::vector<Needle> default_needles();
// Reads a JSONL file of {"needle", "question", "answer"[, "cue"]}; errors name the file and line.
Result<std::vector<Needle>> read_needles(const std::string& path);
// Deterministic procedural filler: sentences of the zoo grammar (core/zoo/zoo_text.h, the default
// model's corpus), about n_words words.
std::string procedural_haystack(int64_t n_words, uint64_t seed = 0);

// The grid's axes: lengths default to 10 values from 256 to the context limit (geometric), depths
// to n evenly spaced fractions from 0 to 1.
std::vector<int64_t> default_lengths(int64_t n_ctx, int64_t n = 10, int64_t min_length = 256);
std::vector<double> depth_fractions(int64_t n);
// `mechscope retrieval`'s default lengths for a model: 10 from min(256, max(n_ctx / 8, 32)).
std::vector<int64_t> default_lengths_for(int64_t n_ctx);

// Text episodes: for every (length, depth, needle) with a tokenizer. The haystack is cut to fit
// length tokens in all (with the needle and the question), the needle goes at the sentence
// boundary nearest depth, and the prompt ends with the needle's cue ("\n\nQuestion: <q>\nAnswer:"
// unless the needle gives its own).
Result<std::vector<NeedleEpisode>> text_episodes(const Model& model, const std::string& haystack,
                                                 const std::vector<Needle>& needles,
                                                 const std::vector<int64_t>& lengths,
                                                 const std::vector<double>& depths);

// Token-id episodes for the constructed models (vocabulary 64: <bos>=0, <delim>=1, ordinary 2..63):
// [<bos>, filler, needle (needle_len distinct ids), filler, <delim>, first cue_len needle ids].
// The filler never uses needle ids; the answer is the rest of the needle.
struct IdEpisodeSpec {
  int64_t vocab = 64;
  int32_t bos = 0, delim = 1, first_ordinary = 2;
  int64_t needle_len = 16, cue_len = 1;
  int64_t n_needles = 2;
  uint64_t seed = 0;
};
std::vector<NeedleEpisode> id_episodes(const IdEpisodeSpec& spec, const std::vector<int64_t>& lengths,
                                       const std::vector<double>& depths);

}  // namespace ms

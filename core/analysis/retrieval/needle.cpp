// Needle-in-a-haystack episode builders: default needles, JSONL needles, procedural filler text,
// text episodes (tokenized in pieces so the needle span is exact) and token-id episodes.
#include "core/analysis/retrieval/needle.h"
#include "core/base/json_input.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/zoo/zoo_text.h"

namespace ms {

std::vector<Needle> default_needles() {
  return {
      {"The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.",
       "What is the best thing to do in San Francisco?", "eat a sandwich and sit in Dolores Park on a sunny day", ""},
      {"The secret ingredient of the lighthouse keeper's soup is smoked paprika.",
       "What is the secret ingredient of the lighthouse keeper's soup?", "smoked paprika", ""},
      {"The password to the old library vault is blue heron seventeen.",
       "What is the password to the old library vault?", "blue heron seventeen", ""},
      {"Marta keeps her spare house key under the green ceramic frog.",
       "Where does Marta keep her spare house key?", "under the green ceramic frog", ""},
  };
}

Result<std::vector<Needle>> read_needles(const std::string& path) {
  return guard([&]() {
    std::ifstream in(path);
    if (!in) fail_input(path + ": cannot open the needle file");
    std::vector<Needle> out;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const nlohmann::json j = parse_json_input(line, path + ":" + std::to_string(n));
      if (!j.is_object() || !j.contains("needle") || !j.contains("question") || !j.contains("answer") ||
          !j["needle"].is_string() || !j["question"].is_string() || !j["answer"].is_string())
        fail_input(path + ":" + std::to_string(n) + ": expected {\"needle\", \"question\", \"answer\"} strings");
      if (j.contains("cue") && !j["cue"].is_string())
        fail_input(path + ":" + std::to_string(n) + ": \"cue\" must be a string");
      out.push_back({j["needle"].get<std::string>(), j["question"].get<std::string>(), j["answer"].get<std::string>(),
                     j.value("cue", std::string())});
    }
    if (out.empty()) fail_input(path + ": no needles");
    return out;
  });
}

std::string procedural_haystack(int64_t n_words, uint64_t seed) {
  // The zoo's grammar (the default model's own kind of text), one statement after another.
  TextGenerator gen(seed);
  std::string out;
  int64_t words = 0;
  while (words < n_words) {
    std::string s = gen.sentence();
    if (s.back() != '.') continue;  // statements only: no questions in the haystack
    words += static_cast<int64_t>(std::count(s.begin(), s.end(), ' ')) + 1;
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

std::vector<int64_t> default_lengths_for(int64_t n_ctx) {
  return default_lengths(n_ctx, 10, std::min<int64_t>(256, std::max<int64_t>(n_ctx / 8, 32)));
}

std::vector<int64_t> default_lengths(int64_t n_ctx, int64_t n, int64_t min_length) {
  std::vector<int64_t> out;
  int64_t hi = std::max<int64_t>(n_ctx - 64, 8);  // leave room for decoding
  int64_t lo = std::min(min_length, hi);
  for (int64_t i = 0; i < n; ++i) {
    double f = n == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    int64_t v = static_cast<int64_t>(std::llround(static_cast<double>(lo) * std::pow(static_cast<double>(hi) / lo, f)));
    if (out.empty() || v > out.back()) out.push_back(v);
  }
  return out;
}

std::vector<double> depth_fractions(int64_t n) {
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(n == 1 ? 0.5 : static_cast<double>(i) / static_cast<double>(n - 1));
  return out;
}

namespace {

// Sentences with their leading space kept, so concatenating them gives the text back.
std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    cur += text[i];
    bool end = (text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n') &&
               (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n');
    if (end) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (cur.find_first_not_of(" \n\t") != std::string::npos) out.push_back(cur);
  for (auto& s : out)
    if (!s.empty() && s[0] != ' ') s = " " + s;
  return out;
}

}  // namespace

Result<std::vector<NeedleEpisode>> text_episodes(const Model& model, const std::string& haystack,
                                                 const std::vector<Needle>& needles,
                                                 const std::vector<int64_t>& lengths,
                                                 const std::vector<double>& depths) {
  return guard([&]() {
    const Tokenizer* tok = model.tokenizer();
    if (!tok) fail_usage("text needles need a model with a tokenizer (toy models: use id episodes)");
    std::vector<std::string> sentences = split_sentences(haystack);
    if (sentences.empty()) fail_input("the haystack has no text");
    std::vector<std::vector<int32_t>> sent_ids;
    for (const auto& s : sentences) sent_ids.push_back(tok->encode(s, false));
    std::vector<int32_t> head;
    if (tok->special().bos >= 0 && tok->special().add_bos) head.push_back(tok->special().bos);
    std::vector<NeedleEpisode> out;
    for (size_t li = 0; li < lengths.size(); ++li)
      for (size_t di = 0; di < depths.size(); ++di)
        for (size_t ni = 0; ni < needles.size(); ++ni) {
          std::vector<int32_t> nid = tok->encode(" " + needles[ni].needle, false);
          std::vector<int32_t> qid = tok->encode(needles[ni].cue.empty() ? "\n\nQuestion: " + needles[ni].question + "\nAnswer:"
                                                                                : needles[ni].cue,
                                                                          false);
          int64_t budget = lengths[li] - static_cast<int64_t>(head.size() + nid.size() + qid.size());
          if (budget < 0) fail_usage("length " + std::to_string(lengths[li]) + " is too short for needle " + std::to_string(ni));
          // Whole sentences (cycling through the haystack) while they fit.
          std::vector<size_t> used;
          int64_t n = 0;
          for (size_t k = 0;; ++k) {
            const auto& s = sent_ids[k % sent_ids.size()];
            if (n + static_cast<int64_t>(s.size()) > budget || k > 1000000) break;
            used.push_back(k % sent_ids.size());
            n += static_cast<int64_t>(s.size());
          }
          // The sentence boundary nearest depth x filler tokens.
          double target = depths[di] * static_cast<double>(n);
          size_t at = 0;
          double best = target;
          int64_t cum = 0;
          for (size_t k = 0; k < used.size(); ++k) {
            cum += static_cast<int64_t>(sent_ids[used[k]].size());
            if (std::abs(static_cast<double>(cum) - target) < best) best = std::abs(static_cast<double>(cum) - target), at = k + 1;
          }
          NeedleEpisode ep;
          ep.prompt = head;
          for (size_t k = 0; k < at; ++k) ep.prompt.insert(ep.prompt.end(), sent_ids[used[k]].begin(), sent_ids[used[k]].end());
          ep.needle_begin = static_cast<int64_t>(ep.prompt.size());
          ep.prompt.insert(ep.prompt.end(), nid.begin(), nid.end());
          ep.needle_end = static_cast<int64_t>(ep.prompt.size());
          for (size_t k = at; k < used.size(); ++k) ep.prompt.insert(ep.prompt.end(), sent_ids[used[k]].begin(), sent_ids[used[k]].end());
          ep.prompt.insert(ep.prompt.end(), qid.begin(), qid.end());
          ep.answer = tok->encode(" " + needles[ni].answer, false);
          ep.answer_text = needles[ni].answer;
          ep.length_index = static_cast<int64_t>(li);
          ep.depth_index = static_cast<int64_t>(di);
          ep.needle_index = static_cast<int64_t>(ni);
          out.push_back(std::move(ep));
        }
    return out;
  });
}

std::vector<NeedleEpisode> id_episodes(const IdEpisodeSpec& s, const std::vector<int64_t>& lengths,
                                       const std::vector<double>& depths) {
  std::vector<int32_t> ordinary;
  for (int64_t t = s.first_ordinary; t < s.vocab; ++t) ordinary.push_back(static_cast<int32_t>(t));
  if (s.needle_len + 1 >= static_cast<int64_t>(ordinary.size()) || s.cue_len >= s.needle_len || s.cue_len < 1)
    fail_usage("id episodes: needle_len must leave filler ids and exceed cue_len >= 1");
  std::vector<NeedleEpisode> out;
  for (size_t li = 0; li < lengths.size(); ++li)
    for (size_t di = 0; di < depths.size(); ++di)
      for (int64_t ni = 0; ni < s.n_needles; ++ni) {
        std::mt19937_64 rng(s.seed * 1000003ULL + static_cast<uint64_t>(ni) * 7919ULL + li * 131ULL + di);
        std::vector<int32_t> pool = ordinary;
        std::shuffle(pool.begin(), pool.end(), rng);
        std::vector<int32_t> needle(pool.begin(), pool.begin() + s.needle_len);
        std::vector<int32_t> filler_ids(pool.begin() + s.needle_len, pool.end());
        int64_t n_filler = lengths[li] - 2 - s.needle_len - s.cue_len;
        if (n_filler < 0) fail_usage("id episodes: length " + std::to_string(lengths[li]) + " is too short");
        int64_t before = static_cast<int64_t>(std::llround(depths[di] * static_cast<double>(n_filler)));
        auto filler = [&]() { return filler_ids[rng() % filler_ids.size()]; };
        NeedleEpisode ep;
        ep.prompt.push_back(s.bos);
        for (int64_t i = 0; i < before; ++i) ep.prompt.push_back(filler());
        ep.needle_begin = static_cast<int64_t>(ep.prompt.size());
        ep.prompt.insert(ep.prompt.end(), needle.begin(), needle.end());
        ep.needle_end = static_cast<int64_t>(ep.prompt.size());
        for (int64_t i = before; i < n_filler; ++i) ep.prompt.push_back(filler());
        ep.prompt.push_back(s.delim);
        ep.prompt.insert(ep.prompt.end(), needle.begin(), needle.begin() + s.cue_len);
        ep.answer.assign(needle.begin() + s.cue_len, needle.end());
        ep.max_new = static_cast<int64_t>(ep.answer.size());
        ep.length_index = static_cast<int64_t>(li);
        ep.depth_index = static_cast<int64_t>(di);
        ep.needle_index = ni;
        out.push_back(std::move(ep));
      }
  return out;
}

}  // namespace ms

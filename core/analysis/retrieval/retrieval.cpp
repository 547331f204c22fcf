// Retrieval-head scores and head masking: the per-step argmax observer, the uniform-attention mask,
// one needle episode (prefill + greedy KV-cache decoding) and the aggregation over a grid.
#include "core/analysis/retrieval/retrieval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>

#include "core/attention/observer_chain.h"

namespace ms {

std::vector<double> retrieval_step_scores(const std::vector<int64_t>& argmax_keys, int64_t needle_begin,
                                          int64_t needle_end, const std::vector<int32_t>& tokens,
                                          int32_t generated) {
  std::vector<double> out(argmax_keys.size(), 0.0);
  if (needle_end <= needle_begin) return out;
  const double inc = 1.0 / static_cast<double>(needle_end - needle_begin);
  for (size_t i = 0; i < argmax_keys.size(); ++i) {
    int64_t j = argmax_keys[i];
    if (j >= needle_begin && j < needle_end && j < static_cast<int64_t>(tokens.size()) &&
        tokens[static_cast<size_t>(j)] == generated)
      out[i] = inc;
  }
  return out;
}

std::vector<std::string> rouge_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(static_cast<char>(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

double rouge1_recall(const std::vector<std::string>& candidate, const std::vector<std::string>& reference) {
  if (reference.empty()) return 0.0;
  std::map<std::string, int64_t> have;
  for (const auto& w : candidate) ++have[w];
  int64_t hit = 0;
  for (const auto& w : reference) {
    auto it = have.find(w);
    if (it != have.end() && it->second > 0) {
      --it->second;
      ++hit;
    }
  }
  return static_cast<double>(hit) / static_cast<double>(reference.size());
}

ArgmaxObserver::ArgmaxObserver(int64_t n_layers, int64_t n_heads)
    : m_heads(n_heads), m_pos(static_cast<size_t>(n_layers * n_heads), -1),
      m_best(static_cast<size_t>(n_layers * n_heads), -1.0f) {}

void ArgmaxObserver::reset() {
  std::fill(m_pos.begin(), m_pos.end(), -1);
  std::fill(m_best.begin(), m_best.end(), -1.0f);
}

void ArgmaxObserver::on_block(AttentionBlock& b) {
  if (!enabled || b.n_queries != 1) return;
  at::Tensor row = b.pattern.select(0, 0).select(1, 0).to(at::kCPU, at::kFloat);  // (H, nk)
  auto [val, idx] = row.max(-1);
  val = val.contiguous();
  idx = idx.contiguous();
  const float* v = val.data_ptr<float>();
  const int64_t* ix = idx.data_ptr<int64_t>();
  for (int64_t h = 0; h < m_heads && h < row.size(0); ++h) {
    size_t i = static_cast<size_t>(b.layer * m_heads + h);
    if (v[h] > m_best[i]) {  // keys may come in several blocks: keep the first maximum overall
      m_best[i] = v[h];
      m_pos[i] = b.k_begin + ix[h];
    }
  }
}

bool ArgmaxObserver::fused_stats(int64_t layer, int64_t q_begin, int64_t n_queries, int64_t sliding_window,
                                 FusedAttentionStats& out) {
  (void)sliding_window;
  if (!enabled || n_queries != 1) return false;  // scored steps decode one token, batch 1
  out.batch = 1, out.n_heads = m_heads;
  out.argmax = m_pos.data() + layer * m_heads;  // (1, heads, 1) at the step's position
  out.query_positions = 1, out.query_offset = q_begin;
  return true;
}

HeadMask::HeadMask(std::vector<HeadRef> heads) : m_heads(std::move(heads)) {}

bool HeadMask::wants_layer(int64_t layer) const {
  return std::any_of(m_heads.begin(), m_heads.end(), [&](const HeadRef& h) { return h.layer == layer; });
}

void HeadMask::on_block(AttentionBlock& b) {
  at::Tensor u = visible_keys(b).to(b.pattern.scalar_type());  // (tb, nk)
  u = u / u.sum(-1, true).clamp_min(1.0);
  for (const HeadRef& hr : m_heads) {
    if (hr.layer != b.layer || hr.head >= b.pattern.size(1)) continue;
    b.pattern.select(1, hr.head).copy_(u.unsqueeze(0).expand_as(b.pattern.select(1, hr.head)));
  }
}

EpisodeResult run_needle_episode(const Model& model, const NeedleEpisode& ep, const RetrievalOptions& opts,
                                 const std::vector<HeadRef>& masked, bool score,
                                 const std::function<std::string(const std::vector<int32_t>&)>& decode) {
  if (ep.prompt.empty()) fail_input("needle episode with an empty prompt");
  c10::InferenceMode guard_mode;
  const ModelConfig& c = model.config();
  const int64_t max_new = ep.max_new > 0 ? ep.max_new : opts.max_new;
  // Positions the run writes: the prompt, then one per generated token but the last; never past
  // the context limit (decoding stops there).
  const int64_t n_prompt = static_cast<int64_t>(ep.prompt.size());
  const int64_t capacity = std::min(n_prompt + max_new - 1, std::max(c.n_ctx, n_prompt));
  HeadMask mask(masked);
  ArgmaxObserver argmax(c.n_layers, c.n_heads);
  // Mask first, then observe: the argmax sees the pattern the model actually uses.
  ObserverChain both({masked.empty() ? nullptr : &mask, score ? &argmax : nullptr});
  KVCache cache = model.make_cache(1, capacity);
  ForwardOptions fo;
  fo.cache = &cache;
  fo.last_logits_only = true;
  fo.attention = (masked.empty() && !score) ? nullptr : &both;

  EpisodeResult r;
  std::vector<double> acc(static_cast<size_t>(c.n_layers * c.n_heads), 0.0);
  // As Wu et al.'s code: prefill all but the last prompt token, then decode starting from it, so
  // the step that generates the first answer token is scored like every later one.
  const std::vector<int32_t>& prompt = ep.prompt;
  if (prompt.size() > 1) {
    argmax.enabled = false;  // the prefill itself is not scored
    const int64_t n_prefill = n_prompt - 1, chunk = opts.prefill_chunk > 0 ? opts.prefill_chunk : n_prefill;
    for (int64_t s = 0; s < n_prefill; s += chunk) {
      const int64_t e = std::min(n_prefill, s + chunk);
      model.forward(model.tokens_tensor(std::vector<int32_t>(prompt.begin() + s, prompt.begin() + e)), fo);
    }
    argmax.enabled = true;
  }
  std::vector<int32_t> tokens = prompt;  // the ids at every position the next query sees
  int32_t inp = prompt.back();
  while (static_cast<int64_t>(r.generated.size()) < max_new && cache.length < capacity) {
    argmax.reset();
    at::Tensor logits = model.forward(model.tokens_tensor({inp}), fo).view({-1});
    const int32_t next = static_cast<int32_t>(logits.argmax().item<int64_t>());
    r.generated.push_back(next);
    if (score) {
      std::vector<double> s = retrieval_step_scores(argmax.argmax(), ep.needle_begin, ep.needle_end, tokens, next);
      for (size_t i = 0; i < acc.size(); ++i) acc[i] += s[i];
    }
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end()) break;
    tokens.push_back(next);
    inp = next;
  }
  r.head_score = at::tensor(acc, at::kDouble).view({c.n_layers, c.n_heads});
  if (opts.exact_match) {
    r.correct = r.generated.size() >= ep.answer.size() &&
                std::equal(ep.answer.begin(), ep.answer.end(), r.generated.begin());
    r.rouge = r.correct ? 1.0 : 0.0;
  } else {
    if (!ep.answer_text.empty() && decode) {
      r.rouge = rouge1_recall(rouge_words(decode(r.generated)), rouge_words(ep.answer_text));
    } else {
      std::vector<std::string> cand, ref;
      for (int32_t t : r.generated) cand.push_back(std::to_string(t));
      for (int32_t t : ep.answer) ref.push_back(std::to_string(t));
      r.rouge = rouge1_recall(cand, ref);
    }
    r.correct = r.rouge > opts.rouge_threshold;
  }
  return r;
}

RetrievalReport aggregate_retrieval(const std::vector<NeedleEpisode>& episodes,
                                    const std::vector<EpisodeResult>& results, int64_t n_lengths,
                                    int64_t n_depths, int64_t n_layers, int64_t n_heads) {
  RetrievalReport rep;
  rep.n_layers = n_layers;
  rep.n_heads = n_heads;
  rep.head_score = at::zeros({n_layers, n_heads}, at::kDouble);
  at::Tensor correct = at::zeros({n_lengths, n_depths}, at::kDouble);
  at::Tensor count = at::zeros({n_lengths, n_depths}, at::kDouble);
  for (size_t i = 0; i < results.size() && i < episodes.size(); ++i) {
    const NeedleEpisode& ep = episodes[i];
    const EpisodeResult& r = results[i];
    ++rep.n_tests;
    count[ep.length_index][ep.depth_index] += 1.0;
    if (r.correct) {
      correct[ep.length_index][ep.depth_index] += 1.0;
      ++rep.n_counted;
      if (r.head_score.defined()) rep.head_score += r.head_score;
    }
  }
  if (rep.n_counted > 0) rep.head_score /= static_cast<double>(rep.n_counted);
  rep.accuracy = 100.0 * correct / count.clamp_min(1.0);
  rep.results = results;
  return rep;
}

RetrievalReport analyze_retrieval(const Model& model, const std::vector<NeedleEpisode>& episodes,
                                  int64_t n_lengths, int64_t n_depths, const RetrievalOptions& opts,
                                  const std::vector<HeadRef>& masked, const Progress& progress,
                                  const std::atomic<bool>* cancel) {
  std::vector<EpisodeResult> results;
  const int64_t total = static_cast<int64_t>(episodes.size());
  for (int64_t i = 0; i < total; ++i) {
    if (cancel && *cancel) break;
    results.push_back(run_needle_episode(model, episodes[static_cast<size_t>(i)], opts, masked, masked.empty()));
    if (progress) progress(i + 1, total);
  }
  return aggregate_retrieval(episodes, results, n_lengths, n_depths, model.config().n_layers,
                             model.config().n_heads);
}

std::vector<std::pair<HeadRef, double>> rank_heads(const at::Tensor& head_score) {
  std::vector<std::pair<HeadRef, double>> out;
  at::Tensor s = head_score.to(at::kCPU, at::kDouble).contiguous();
  for (int64_t l = 0; l < s.size(0); ++l)
    for (int64_t h = 0; h < s.size(1); ++h) out.push_back({{l, h}, s[l][h].item<double>()});
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

std::vector<HeadRef> retrieval_heads(const at::Tensor& head_score, double threshold) {
  std::vector<HeadRef> out;
  for (const auto& [h, s] : rank_heads(head_score))
    if (s > threshold) out.push_back(h);
  return out;
}

std::vector<HeadRef> random_heads(int64_t n_layers, int64_t n_heads, const std::vector<HeadRef>& exclude,
                                  int64_t k, uint64_t seed) {
  std::vector<HeadRef> pool;
  for (int64_t l = 0; l < n_layers; ++l)
    for (int64_t h = 0; h < n_heads; ++h)
      if (std::none_of(exclude.begin(), exclude.end(), [&](const HeadRef& e) { return e.layer == l && e.head == h; }))
        pool.push_back({l, h});
  std::mt19937_64 rng(seed);
  std::shuffle(pool.begin(), pool.end(), rng);
  if (static_cast<int64_t>(pool.size()) > k) pool.resize(static_cast<size_t>(std::max<int64_t>(0, k)));
  return pool;
}

}  // namespace ms

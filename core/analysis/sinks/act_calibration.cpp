// ACT calibration metrics and head search (moved out of `mechscope sinks`).
#include "core/analysis/sinks/act_calibration.h"

#include "core/analysis/task_metrics.h"

namespace ms {
namespace {

// The hidden-sink positions of prompt p in the given heads.
std::vector<int64_t> sinks_of(const SinkReport& rep, size_t p, const std::vector<HeadRef>& hs) {
  std::vector<int64_t> pos;
  for (const auto& h : rep.hidden)
    if (h.prompt == static_cast<int64_t>(p))
      for (const auto& hr : hs)
        if (hr.layer == h.layer && hr.head == h.head) pos.push_back(h.position);
  return pos;
}

}  // namespace

std::vector<PromptMetric> calibration_metrics(const Model& m, const SinkReport& rep,
                                              const std::vector<CalibrationPrompt>& prompts,
                                              const std::vector<HeadRef>& heads, double beta) {
  std::vector<PromptMetric> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const CalibrationPrompt& cp = prompts[p];
    SinkCalibration cal(heads, sinks_of(rep, p, heads), beta);
    ForwardOptions fo;
    fo.attention = heads.empty() ? nullptr : &cal;
    PromptMetric mt;
    std::vector<int32_t> ids = cp.ids;
    int64_t start = 1;
    if (!cp.continuation.empty()) {
      start = static_cast<int64_t>(ids.size());
      ids.insert(ids.end(), cp.continuation.begin(), cp.continuation.end());
    }
    mt.loss = ids.size() > 1 ? continuation_loss(m, ids, start, fo) : 0.0;
    if (!cp.choices.empty()) mt.correct = best_choice(m, cp.ids, cp.choices, fo) == cp.answer ? 1 : 0;
    out.push_back(mt);
  }
  return out;
}

double mean_loss(const std::vector<PromptMetric>& v) {
  double s = 0;
  for (const auto& x : v) s += x.loss;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

std::vector<HeadRef> search_calibration_heads(const Model& m, const SinkReport& rep,
                                              const std::vector<CalibrationPrompt>& prompts, double beta,
                                              const std::vector<PromptMetric>& base,
                                              const std::function<void(int64_t, int64_t)>& progress,
                                              const std::atomic<bool>* cancel) {
  const ModelConfig& c = m.config();
  std::vector<HeadRef> cands, kept;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h)
      if (rep.head_hidden_count[l][h].item<int64_t>() > 0) cands.push_back({l, h});
  const double base_loss = mean_loss(base);
  for (size_t i = 0; i < cands.size(); ++i) {
    if (cancel && *cancel) break;
    if (mean_loss(calibration_metrics(m, rep, prompts, {cands[i]}, beta)) < base_loss) kept.push_back(cands[i]);
    if (progress) progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(cands.size()));
  }
  return kept;
}

}  // namespace ms

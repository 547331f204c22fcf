// Small helpers of the record types: status names, head scores from a tensor, shell quoting.
#include "storage/records.h"

#include <ATen/ATen.h>

#include <stdexcept>

namespace ms {

const char* run_status_name(RunStatus s) {
  switch (s) {
    case RunStatus::kQueued: return "queued";
    case RunStatus::kRunning: return "running";
    case RunStatus::kDone: return "done";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kCancelled: return "cancelled";
  }
  return "failed";
}

std::optional<RunStatus> parse_run_status(const std::string& s) {
  for (RunStatus st : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kDone, RunStatus::kFailed,
                       RunStatus::kCancelled})
    if (s == run_status_name(st)) return st;
  return std::nullopt;
}

HeadScores head_scores_from_tensor(const std::string& metric, const at::Tensor& scores) {
  if (scores.dim() != 2)
    throw std::invalid_argument("head scores '" + metric + "': expected a [n_layers, n_heads] tensor, got " +
                                std::to_string(scores.dim()) + " dimensions");
  at::Tensor t = scores.detach().to(at::kCPU, at::kDouble).contiguous();
  HeadScores h;
  h.metric = metric;
  h.n_layers = static_cast<int>(t.size(0));
  h.n_heads = static_cast<int>(t.size(1));
  const double* p = t.data_ptr<double>();
  h.values.assign(p, p + t.numel());
  return h;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty();
    for (char ch : a) {
      bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                std::string("-_./=:,+@%").find(ch) != std::string::npos;
      if (!ok) plain = false;
    }
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char ch : a) {
      if (ch == '\'') out += "'\\''";
      else out += ch;
    }
    out += '\'';
  }
  return out;
}

}  // namespace ms

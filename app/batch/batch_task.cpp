// Size bounds of a batch patch or circuit item's task, for the estimates.
#include "app/batch/batch_task.h"

#include <algorithm>
#include <fstream>

namespace ms::app::batch {

TaskSize task_size_bound(const nlohmann::json& p, const ModelConfig& c) {
  TaskSize t;
  const std::string task = p["task"].get<std::string>();
  t.pairs = p["n"].get<int64_t>();
  if (task == "induction") {
    t.tokens = 2 * p["seq_len"].get<int64_t>();
  } else if (task == "ioi") {
    t.tokens = 96;  // the longest template, one token per byte
  } else if (task == "greater-than") {
    t.tokens = 64;
  } else {  // custom: a row per line, at most a token per byte
    std::ifstream in(p["task_file"].get<std::string>(), std::ios::binary);
    std::string line;
    t.pairs = 0;
    while (std::getline(in, line))
      if (!line.empty()) ++t.pairs, t.tokens = std::max<int64_t>(t.tokens, static_cast<int64_t>(line.size()) + 2);
  }
  t.tokens = std::max<int64_t>(1, std::min(t.tokens, c.n_ctx));
  t.pairs = std::max<int64_t>(1, t.pairs);
  return t;
}

double task_forward_bytes(const TaskSize& t, const ModelConfig& c) {
  return static_cast<double>(t.pairs) * forward_activation_bytes(c, t.tokens);
}

double task_forward_flops(const TaskSize& t, const ItemShape& s) {
  return static_cast<double>(t.pairs) * forward_flops(*s.config, s.n_params, t.tokens);
}

}  // namespace ms::app::batch

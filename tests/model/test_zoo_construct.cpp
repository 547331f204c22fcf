// The constructed models measured from their own activations, not assumed: sink heads and the hidden
// sink by alpha_k against the analyses' thresholds, massive activations against |h| > 100 and
// 1000x the median, the copy head by greedy decoding and top-1 attention; plus save/load and the CLI.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "core/model/model_save.h"
#include "core/zoo/zoo_construct.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

std::unique_ptr<Model> model_of(const ConstructedModel& c) {
  Result<std::unique_ptr<Model>> m = Model::from_weights(c.config, c.weights);
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

using HeadId = std::pair<int, int>;
std::set<HeadId> heads_of(const nlohmann::json& list) {
  std::set<HeadId> out;
  for (const auto& h : list) out.insert({h[0].get<int>(), h[1].get<int>()});
  return out;
}

// alpha_k = (1 / (T - k)) * sum_{i >= k} A[i, k] for a [.., T, T] pattern: [.., T].
at::Tensor alpha_of(const at::Tensor& pattern) {
  const int64_t T = pattern.size(-1);
  return pattern.to(at::kDouble).sum(-2) / at::arange(T, 0, -1, at::kDouble);
}
// The same for uniform causal attention (A[i, k] = 1 / (i + 1)).
at::Tensor uniform_alpha(int64_t T) {
  at::Tensor a = at::tril(at::ones({T, T}, at::kDouble)) / at::arange(1, T + 1, at::kDouble).unsqueeze(1);
  return alpha_of(a);
}

// A sink-model prompt per zoo.json: any tokens, 1..3 delimiters at positions >= 4.
std::vector<int32_t> sink_prompt(std::mt19937_64& rng, int64_t len, bool bos) {
  std::uniform_int_distribution<int32_t> tok(kZooFirstOrdinary, static_cast<int32_t>(kZooVocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(len));
  for (auto& t : ids) t = tok(rng);
  if (bos) ids[0] = kZooBos;
  const int n_delim = std::uniform_int_distribution<int>(1, 3)(rng);
  std::uniform_int_distribution<int64_t> where(4, len - 1);
  for (int d = 0; d < n_delim; ++d) ids[static_cast<size_t>(where(rng))] = kZooDelim;
  return ids;
}

TEST(ZooConstruct, SinkHeadsHiddenSinkAndNothingElse) {
  ConstructedModel c = build_sink_model();
  auto m = model_of(c);
  const std::set<HeadId> sinks = heads_of(c.zoo["sink_heads"]);
  const HeadId hidden{c.zoo["hidden_sink"]["layer"].get<int>(), c.zoo["hidden_sink"]["head"].get<int>()};
  const int64_t lo = c.zoo["prompt_lengths"]["min"], hi = c.zoo["prompt_lengths"]["max"];
  ASSERT_EQ(sinks.size(), 3u);
  std::mt19937_64 rng(7);
  double sink_min = 1, hidden_delim_min = 1, hidden_ratio_min = 1e9, hidden_else_max = 0, other_a0_max = 0,
         other_ak_max = 0, other_ratio_max = 0, resid_max = 0;
  int prompts = 0;
  for (int64_t len : {lo, int64_t(100), int64_t(160), hi}) {
    at::Tensor unif = uniform_alpha(len);
    for (int rep = 0; rep < 4; ++rep, ++prompts) {
      std::vector<int32_t> ids = sink_prompt(rng, len, rep % 2 == 0);
      HookRegistry reg;
      ActivationCache cache;
      reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
      reg.add_forward("blocks.*.hook_resid_*", cache_hook(cache));
      ForwardOptions fo;
      fo.hooks = &reg;
      m->forward(m->tokens_tensor(ids), fo);
      for (int l = 0; l < c.config.n_layers; ++l) {
        for (const char* r : {"pre", "post"})
          resid_max = std::max(resid_max, cache.at("blocks." + std::to_string(l) + ".hook_resid_" + r).abs().max().item<double>());
        at::Tensor alpha = alpha_of(cache.at("blocks." + std::to_string(l) + ".attn.hook_pattern")[0]);  // (H, T)
        for (int h = 0; h < c.config.n_heads; ++h) {
          at::Tensor ratio_t = (alpha[h] / unif).contiguous();
          at::Tensor a_t = alpha[h].contiguous();
          auto a = a_t.accessor<double, 1>();
          auto ratio = ratio_t.accessor<double, 1>();
          const HeadId id{l, h};
          for (int64_t k = 1; k < len; ++k) {
            const bool delim = ids[static_cast<size_t>(k)] == kZooDelim;
            const double ak = a[k], rk = ratio[k];
            if (id == hidden && delim) {
              hidden_delim_min = std::min(hidden_delim_min, ak);
              hidden_ratio_min = std::min(hidden_ratio_min, rk);
              EXPECT_GT(ak, 0.1) << "len " << len << " key " << k;
              EXPECT_GT(rk, 5.0) << "len " << len << " key " << k;
            } else {
              // Neither hidden-sink threshold may pass anywhere else.
              EXPECT_FALSE(ak > 0.1 || rk > 5.0) << "head " << l << "." << h << " key " << k << " alpha " << ak
                                                 << " ratio " << rk << " (len " << len << ")";
              if (id == hidden) hidden_else_max = std::max(hidden_else_max, ak);
              else if (!sinks.count(id)) {
                other_ak_max = std::max(other_ak_max, ak);
                other_ratio_max = std::max(other_ratio_max, rk);
              }
            }
          }
          const double a0 = a[0];
          if (sinks.count(id)) {
            sink_min = std::min(sink_min, a0);
            EXPECT_GT(a0, 0.9) << "sink head " << l << "." << h << " len " << len;
          } else {
            EXPECT_LT(a0, 0.3) << "head " << l << "." << h << " len " << len;
            other_a0_max = std::max(other_a0_max, a0);
          }
        }
      }
    }
  }
  EXPECT_LT(resid_max, 100.0) << "the sink model must have no massive activation";
  std::cout << "[sink] " << prompts << " prompts of " << lo << ".." << hi << " tokens: sink heads alpha_0 >= "
            << sink_min << "; hidden sink at <delim>: alpha >= " << hidden_delim_min << ", >= "
            << hidden_ratio_min << "x uniform, elsewhere alpha <= " << hidden_else_max
            << "; other heads alpha_0 <= " << other_a0_max << ", alpha_k <= " << other_ak_max << ", <= "
            << other_ratio_max << "x uniform; max |resid| " << resid_max << "\n";
}

TEST(ZooConstruct, MassiveActivationsExactlyWherePlanted) {
  ConstructedModel c = build_massive_model();
  auto m = model_of(c);
  std::set<int64_t> dims;
  std::set<int32_t> tokens;
  std::set<int> layers;
  for (const auto& e : c.zoo["massive"]) {
    dims.insert(e["dim"].get<int64_t>());
    tokens.insert(e["token_id"].get<int32_t>());
    for (const auto& l : e["layers"]) layers.insert(l.get<int>());
  }
  const double tol = c.zoo["value_tolerance"];
  ASSERT_TRUE(c.zoo["sink_heads"].empty());
  std::mt19937_64 rng(3);
  double min_abs = 1e9, min_ratio = 1e9, max_other = 0, max_value_err = 0, median_max = 0, left_max = 0;
  double a0_max = 0, ak_max = 0, ratio_max = 0;
  int found = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const int64_t len = rep < 3 ? 64 : 200;
    std::vector<int32_t> ids = sink_prompt(rng, len, rep % 3 != 2);
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("blocks.*.hook_resid_*", cache_hook(cache));
    reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(m->tokens_tensor(ids), fo);
    for (int l = 0; l < c.config.n_layers; ++l) {
      for (const char* r : {"pre", "post"}) {
        const std::string name = "blocks." + std::to_string(l) + ".hook_resid_" + r;
        const bool planted_here = layers.count(std::string(r) == "post" ? l : l - 1) != 0;
        at::Tensor h = cache.at(name)[0].abs().to(at::kDouble);  // (T, d)
        const double median = h.flatten().median().item<double>();
        median_max = std::max(median_max, median);
        at::Tensor massive_t = (h > 100.0).logical_and(h >= 1000.0 * median).contiguous();
        auto massive = massive_t.accessor<bool, 2>();
        h = h.contiguous();
        auto ha = h.accessor<double, 2>();
        for (int64_t p = 0; p < h.size(0); ++p) {
          for (int64_t d = 0; d < h.size(1); ++d) {
            const bool want = planted_here && tokens.count(ids[static_cast<size_t>(p)]) && dims.count(d);
            const double v = ha[p][d];
            EXPECT_EQ(massive[p][d], want) << name << " pos " << p << " dim " << d << " |h| " << v;
            if (want) {
              ++found;
              min_abs = std::min(min_abs, v);
              min_ratio = std::min(min_ratio, v / median);
              for (const auto& e : c.zoo["massive"])
                if (e["dim"] == d && e["token_id"] == ids[static_cast<size_t>(p)])
                  max_value_err = std::max(max_value_err, std::abs(v / std::abs(e["value"].get<double>()) - 1));
            } else {
              max_other = std::max(max_other, v);
              if (tokens.count(ids[static_cast<size_t>(p)]) && dims.count(d)) left_max = std::max(left_max, v);
            }
          }
        }
      }
      // zoo.json lists no sink heads: no head passes the sink or hidden-sink thresholds either.
      at::Tensor alpha = alpha_of(cache.at("blocks." + std::to_string(l) + ".attn.hook_pattern")[0]);  // (H, T)
      at::Tensor ratio = alpha / uniform_alpha(len);
      a0_max = std::max(a0_max, alpha.select(1, 0).max().item<double>());
      ak_max = std::max(ak_max, alpha.narrow(1, 1, len - 1).max().item<double>());
      ratio_max = std::max(ratio_max, ratio.narrow(1, 1, len - 1).max().item<double>());
    }
  }
  EXPECT_LT(a0_max, 0.3);
  EXPECT_LT(ak_max, 0.1);
  EXPECT_LT(ratio_max, 5.0);
  EXPECT_GT(found, 0);
  EXPECT_LT(max_value_err, tol);
  std::cout << "[massive] " << found << " planted entries found: |h| >= " << min_abs << ", >= " << min_ratio
            << "x the layer median (median <= " << median_max << "), within " << max_value_err * 100
            << "% of the zoo.json values; largest other |h| " << max_other << ", left after the remover "
            << left_max << "; heads: alpha_0 <= " << a0_max << ", alpha_k <= " << ak_max << ", <= " << ratio_max
            << "x uniform\n";
}

TEST(ZooConstruct, CopyHeadContinuesTheRepeatedSequence) {
  ConstructedModel c = build_copy_model();
  auto m = model_of(c);
  const std::set<HeadId> copy_heads = heads_of(c.zoo["copy_heads"]);
  ASSERT_EQ(c.zoo["copy_attends_to"], "next_after_previous_occurrence");
  std::mt19937_64 rng(5);
  int steps = 0, correct = 0;
  std::map<HeadId, int> on_target, retrieval;
  double copy_mass_min = 1, other_mass_max = 0;
  for (int rep = 0; rep < 16; ++rep) {
    std::vector<int32_t> pool(kZooVocab - kZooFirstOrdinary);
    std::iota(pool.begin(), pool.end(), kZooFirstOrdinary);
    std::shuffle(pool.begin(), pool.end(), rng);
    const int n = std::uniform_int_distribution<int>(20, 60)(rng);
    const int k = std::uniform_int_distribution<int>(1, 10)(rng);
    std::vector<int32_t> seq = {kZooBos};
    seq.insert(seq.end(), pool.begin(), pool.begin() + n);
    seq.push_back(kZooDelim);
    seq.insert(seq.end(), pool.begin(), pool.begin() + k);
    // Per decode step, per layer: the new query's attention row (H, S).
    std::vector<std::vector<at::Tensor>> rows;
    HookRegistry reg;
    reg.add_forward("blocks.*.attn.hook_pattern", [&](const at::Tensor& a, const HookContext& ctx) {
      if (ctx.layer == 0) rows.emplace_back();
      rows.back().push_back(a[0].select(1, a.size(2) - 1).clone());
      return at::Tensor();
    });
    GenerateOptions go;
    go.max_new = n - k;
    go.stop_at_eos = false;
    go.hooks = &reg;
    std::vector<int32_t> out = m->generate(seq, go);
    ASSERT_EQ(out.size(), static_cast<size_t>(n - k));
    ASSERT_EQ(rows.size(), out.size());
    for (size_t s = 0; s < out.size(); ++s, ++steps) {
      const int32_t want = pool[static_cast<size_t>(k) + s];
      correct += out[s] == want;
      const int64_t t = static_cast<int64_t>(seq.size()) - 1;  // the query's position
      int64_t prev = -1;
      for (int64_t j = t - 1; j >= 0 && prev < 0; --j)
        if (seq[static_cast<size_t>(j)] == seq[static_cast<size_t>(t)]) prev = j;
      const int64_t target = prev + 1;
      for (int l = 0; l < c.config.n_layers; ++l)
        for (int h = 0; h < c.config.n_heads; ++h) {
          const at::Tensor& row = rows[s][static_cast<size_t>(l)][h];
          const int64_t top = row.argmax().item<int64_t>();
          const double mass = row[target].item<double>();
          if (copy_heads.count({l, h})) copy_mass_min = std::min(copy_mass_min, mass);
          else other_mass_max = std::max(other_mass_max, mass);
          on_target[{l, h}] += top == target && seq[static_cast<size_t>(top)] == out[s];
          // The retrieval score: top-1 key in the needle span with the token just generated.
          retrieval[{l, h}] += top >= 1 && top <= n && seq[static_cast<size_t>(top)] == out[s];
        }
      seq.push_back(out[s]);
    }
  }
  const double acc = double(correct) / steps;
  EXPECT_GE(acc, 0.95);
  std::cout << "[copy] " << steps << " greedy steps, " << acc * 100 << "% correct; top-1 on the token after the "
            << "previous occurrence / retrieval score per head:";
  for (const auto& [id, hits] : on_target) {
    const double r = double(hits) / steps, ret = double(retrieval[id]) / steps;
    std::cout << " " << id.first << "." << id.second << "=" << r << "/" << ret;
    if (copy_heads.count(id)) {
      EXPECT_GE(r, 0.95) << "copy head " << id.first << "." << id.second;
      EXPECT_GT(ret, 0.5);
    } else {
      EXPECT_EQ(hits, 0) << "head " << id.first << "." << id.second;
      EXPECT_LT(ret, 0.05);
    }
  }
  std::cout << "\n[copy] attention on the target: copy head >= " << copy_mass_min << ", other heads <= "
            << other_mass_max << "\n";
}

TEST(ZooConstruct, SavedModelsLoadWithTheSameLogits) {
  for (const std::string& name : constructed_model_names()) {
    Result<ConstructedModel> c = build_constructed_model(name);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto m = model_of(*c);
    const std::string dir = test::temp_dir("construct") + "/" + name;
    Status st = construct_model(name, dir, false);
    ASSERT_TRUE(st.ok()) << st.error().message;
    Result<std::unique_ptr<Model>> back = Model::load(dir);
    ASSERT_TRUE(back.ok()) << name << ": " << back.error().message;
    nlohmann::json zoo = nlohmann::json::parse(test::read_file(dir + "/zoo.json"));
    EXPECT_EQ(zoo, c->zoo);
    for (const auto& p : zoo["check_prompts"]) {
      at::Tensor toks = m->tokens_tensor(p.get<std::vector<int32_t>>());
      at::Tensor a = m->forward(toks), b = (*back)->forward(toks);
      const double diff = (a - b).abs().max().item<double>();
      EXPECT_LT(diff, 1e-4 * std::max(1.0, a.abs().max().item<double>())) << name;
    }
    // An existing folder is kept unless overwriting is asked for.
    Status again = construct_model(name, dir, false);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, ErrorCode::kUsage);
    EXPECT_TRUE(construct_model(name, dir, true).ok());
  }
  Result<ConstructedModel> bad = build_constructed_model("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kUsage);
}

TEST(ZooConstruct, CopyCheckPromptContinues) {
  ConstructedModel c = build_copy_model();
  auto m = model_of(c);
  GenerateOptions go;
  const auto want = c.zoo["check_continuations"][0].get<std::vector<int32_t>>();
  go.max_new = static_cast<int64_t>(want.size());
  go.stop_at_eos = false;
  EXPECT_EQ(m->generate(c.zoo["check_prompts"][0].get<std::vector<int32_t>>(), go), want);
}

TEST(ZooConstruct, Cli) {
  const std::string dir = test::temp_dir("construct_cli") + "/copy";
  auto r = test::run_mechscope({"zoo", "construct", "copy", "--out", dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("copy_heads"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir + "/zoo.json"));
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors"));
  r = test::run_mechscope({"zoo", "construct", "copy", "--out", dir});
  EXPECT_EQ(r.exit_code, 2) << "existing folder without --force";
  r = test::run_mechscope({"zoo", "construct", "copy", "--out", dir, "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = test::run_mechscope({"zoo", "construct", "nope", "--out", dir + "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("sink"), std::string::npos) << r.err;
  r = test::run_mechscope({"forward", "--model", dir, "--tokens", "0,5,6,7,1,5,6"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace ms

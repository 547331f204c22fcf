// Feature dashboards: the streaming accumulator against a brute-force computation over all
// activations at once (top-k with ties, histogram, density: exactly equal whatever the batching),
// the end-to-end pass on a tiny model, logit effects against W_dec @ W_U^T, bad input, the stored
// cards read back identically, and `mechscope sae features` storing a run whose report has cards.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <tuple>

#include "core/features/sae_dashboard.h"
#include "core/features/sae_load.h"
#include "core/io/safetensors.h"
#include "hooks/activation_cache.h"
#include "storage/database.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace fs = std::filesystem;
using namespace ms;

namespace {

// Random prompts of lengths 1..max_len with ids in [0, vocab).
std::vector<std::vector<int32_t>> random_prompts(int n, int max_len, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(n));
  for (auto& p : out) {
    p.resize(static_cast<size_t>(1 + rng() % static_cast<uint32_t>(max_len)));
    for (int32_t& id : p) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  }
  return out;
}

// The cards by brute force: every activation at once, sorted.
std::vector<FeatureCard> brute_force(const at::Tensor& acts, const std::vector<std::vector<int32_t>>& prompts,
                                     const DashboardOptions& o) {
  std::vector<std::pair<int64_t, int64_t>> where;  // row -> (prompt, pos)
  std::vector<int64_t> row0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    row0.push_back(static_cast<int64_t>(where.size()));
    for (size_t q = 0; q < prompts[p].size(); ++q) where.emplace_back(p, q);
  }
  const int64_t N = acts.size(0), F = acts.size(1);
  auto a = acts.accessor<float, 2>();
  std::vector<FeatureCard> cards;
  for (int64_t f = 0; f < F; ++f) {
    FeatureCard c;
    c.feature = f;
    c.n_tokens = N;
    std::vector<std::tuple<float, int64_t, int64_t>> all;  // (-act, prompt, pos)
    for (int64_t r = 0; r < N; ++r) {
      if (!(a[r][f] > 0)) continue;
      ++c.n_firing;
      c.max_act = std::max(c.max_act, a[r][f]);
      all.emplace_back(-a[r][f], where[static_cast<size_t>(r)].first, where[static_cast<size_t>(r)].second);
    }
    c.hist_max = dashboard_hist_max(c.max_act);
    c.histogram.assign(static_cast<size_t>(o.n_bins), 0);
    for (auto& [na, p, q] : all) ++c.histogram[static_cast<size_t>(dashboard_bin(-na, c.hist_max, o.n_bins))];
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i < all.size() && i < static_cast<size_t>(o.top_k); ++i) {
      auto [na, p, q] = all[i];
      FeatureExample e;
      e.rank = static_cast<int>(i);
      e.prompt = p;
      e.position = q;
      e.activation = -na;
      const int64_t len = static_cast<int64_t>(prompts[static_cast<size_t>(p)].size());
      e.window_start = std::max<int64_t>(0, q - o.context);
      for (int64_t t = e.window_start; t < std::min(len, q + o.context + 1); ++t) {
        e.token_ids.push_back(prompts[static_cast<size_t>(p)][static_cast<size_t>(t)]);
        e.acts.push_back(a[row0[static_cast<size_t>(p)] + t][f]);
      }
      c.examples.push_back(e);
    }
    cards.push_back(c);
  }
  return cards;
}

void expect_same(const FeatureCard& a, const FeatureCard& b, bool labels = true) {
  EXPECT_EQ(a.feature, b.feature);
  EXPECT_EQ(a.n_tokens, b.n_tokens);
  EXPECT_EQ(a.n_firing, b.n_firing) << "feature " << a.feature;
  EXPECT_EQ(a.max_act, b.max_act) << "feature " << a.feature;
  EXPECT_EQ(a.hist_max, b.hist_max) << "feature " << a.feature;
  EXPECT_EQ(a.histogram, b.histogram) << "feature " << a.feature;
  ASSERT_EQ(a.examples.size(), b.examples.size()) << "feature " << a.feature;
  for (size_t i = 0; i < a.examples.size(); ++i) {
    const FeatureExample &x = a.examples[i], &y = b.examples[i];
    EXPECT_EQ(x.rank, y.rank);
    EXPECT_EQ(x.prompt, y.prompt) << "feature " << a.feature << " rank " << i;
    EXPECT_EQ(x.position, y.position) << "feature " << a.feature << " rank " << i;
    EXPECT_EQ(x.activation, y.activation);
    EXPECT_EQ(x.window_start, y.window_start);
    EXPECT_EQ(x.token_ids, y.token_ids);
    EXPECT_EQ(x.acts, y.acts);
    if (labels) {
      EXPECT_EQ(x.tokens, y.tokens);
    }
  }
  if (!labels) return;
  ASSERT_EQ(a.top_logits.size(), b.top_logits.size());
  ASSERT_EQ(a.bottom_logits.size(), b.bottom_logits.size());
  for (size_t i = 0; i < a.top_logits.size(); ++i) {
    EXPECT_EQ(a.top_logits[i].token_id, b.top_logits[i].token_id);
    EXPECT_EQ(a.top_logits[i].token, b.top_logits[i].token);
    EXPECT_FLOAT_EQ(a.top_logits[i].value, b.top_logits[i].value);
    EXPECT_EQ(a.bottom_logits[i].token_id, b.bottom_logits[i].token_id);
    EXPECT_FLOAT_EQ(a.bottom_logits[i].value, b.bottom_logits[i].value);
  }
}

std::shared_ptr<Sae> random_sae(int64_t d_in, int64_t d_sae, const std::string& hook, uint64_t seed) {
  at::manual_seed(seed);
  auto s = std::make_shared<Sae>();
  s->cfg.d_in = s->cfg.d_out = d_in;
  s->cfg.d_sae = d_sae;
  s->cfg.hook_name = hook;
  s->cfg.source = "test-sae";
  s->w.W_enc = at::randn({d_in, d_sae}) * 0.3;
  s->w.W_dec = at::randn({d_sae, d_in}) * 0.3;
  s->w.b_enc = at::randn({d_sae}) * 0.1 - 0.2;
  s->w.b_dec = at::randn({d_in}) * 0.1;
  return s;
}

}  // namespace

// Activations with many zeros and many ties (multiples of 1/4), fed in random batches of whole
// prompts: every count, bin, example and window equals the brute force's.
TEST(SaeDashboard, StreamingEqualsBruteForce) {
  const auto prompts = random_prompts(60, 12, 50, 5);
  int64_t N = 0;
  for (const auto& p : prompts) N += static_cast<int64_t>(p.size());
  const int64_t F = 24;
  at::manual_seed(3);
  // Feature f's scale grows with f so histogram ranges differ (and grow across batches).
  at::Tensor acts = at::floor(at::randn({N, F}) * 4 * (at::arange(F).to(at::kFloat) / 6 + 0.25)) / 4;
  acts = at::relu(acts).contiguous();
  DashboardOptions o;
  o.top_k = 7;
  o.context = 3;
  o.n_bins = 10;
  const std::vector<FeatureCard> want = brute_force(acts, prompts, o);
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<int64_t> features(static_cast<size_t>(F));
    for (int64_t f = 0; f < F; ++f) features[static_cast<size_t>(f)] = f;
    DashboardAccumulator acc(features, o);
    std::mt19937 rng(seed);
    size_t p = 0;
    int64_t row = 0;
    while (p < prompts.size()) {
      const size_t q = std::min(prompts.size(), p + 1 + rng() % 9);
      std::vector<DashboardRow> rows;
      int64_t r0 = 0;
      for (size_t i = p; i < q; ++i) {
        const int64_t len = static_cast<int64_t>(prompts[i].size());
        for (int64_t t = 0; t < len; ++t) rows.push_back({static_cast<int64_t>(i), t, r0, len});
        r0 += len;
      }
      acc.add(acts.narrow(0, row, r0).contiguous(), rows, prompts);
      row += r0;
      p = q;
    }
    for (int64_t f = 0; f < F; ++f) expect_same(acc.card(static_cast<size_t>(f), N), want[static_cast<size_t>(f)], false);
  }
  int64_t ties = 0;
  for (const auto& c : want)
    for (size_t i = 1; i < c.examples.size(); ++i) ties += c.examples[i].activation == c.examples[i - 1].activation;
  std::printf("  %lld tied neighbours among the top examples\n", static_cast<long long>(ties));
  EXPECT_GT(ties, 20);  // the tie rule was exercised
}

TEST(SaeDashboard, HistogramBinsAreExactAtPowersOfTwo) {
  EXPECT_EQ(dashboard_hist_max(1.0f), 2.0);
  EXPECT_EQ(dashboard_hist_max(0.75f), 1.0);
  EXPECT_EQ(dashboard_hist_max(0.0f), 0.0);
  EXPECT_EQ(dashboard_bin(1.0f, 2.0, 32), 16);
  EXPECT_EQ(dashboard_bin(1.9999f, 2.0, 32), 31);
  EXPECT_EQ(dashboard_bin(1e-30f, 2.0, 32), 0);
}

// End to end on a tiny model: the activations come from the model and the SAE (batched forwards,
// batched encodes), so they are compared with the per-prompt brute force to 5e-5.
TEST(SaeDashboard, OnATinyModelMatchesPerPromptActivations) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2", 2);
  auto sae = random_sae(m->config().d_model, 40, "blocks.1.hook_resid_pre", 4);
  auto prompts = random_prompts(30, 10, static_cast<int>(m->config().d_vocab), 8);
  for (auto& p : prompts) p.push_back(p[0]), p.push_back(p[0]);  // at least 3 tokens, some equal lengths
  DashboardOptions o;
  o.top_k = 5;
  o.context = 2;
  o.n_bins = 16;
  o.n_logits = 6;
  o.skip_bos = false;
  o.batch_tokens = 37;  // many batches
  DashboardStats stats;
  std::vector<FeatureCard> cards = feature_dashboards(*m, *sae, prompts, o, {}, nullptr, &stats);
  EXPECT_GT(stats.n_batches, 5);
  // Brute force: each prompt alone.
  std::vector<at::Tensor> per;
  for (const auto& p : prompts) {
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward(sae->cfg.hook_name, cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(m->tokens_tensor(p), fo);
    per.push_back(sae->encode(cache.at(sae->cfg.hook_name)[0]));
  }
  at::Tensor all = at::cat(per, 0);  // (N, d_sae)
  ASSERT_EQ(cards.size(), 40u);
  double worst = 0;
  for (const FeatureCard& c : cards) {
    at::Tensor col = all.select(1, c.feature);
    EXPECT_EQ(c.n_tokens, all.size(0));
    EXPECT_EQ(c.n_firing, (col > 0).sum().item<int64_t>()) << c.feature;
    worst = std::max(worst, std::abs(c.max_act - col.max().item<double>()));
    at::Tensor top = std::get<0>(at::topk(col, std::min<int64_t>(o.top_k, (col > 0).sum().item<int64_t>())));
    ASSERT_EQ(static_cast<int64_t>(c.examples.size()), top.size(0)) << c.feature;
    for (size_t i = 0; i < c.examples.size(); ++i) {
      const FeatureExample& e = c.examples[i];
      worst = std::max(worst, std::abs(e.activation - top[static_cast<int64_t>(i)].item<double>()));
      EXPECT_EQ(e.token_ids[static_cast<size_t>(e.position - e.window_start)],
                prompts[static_cast<size_t>(e.prompt)][static_cast<size_t>(e.position)]);
      EXPECT_EQ(e.tokens.size(), e.token_ids.size());
    }
    int64_t hist_total = 0;
    for (int64_t h : c.histogram) hist_total += h;
    EXPECT_EQ(hist_total, c.n_firing);
  }
  std::printf("  max |streamed - per-prompt| activation %.3g\n", worst);
  EXPECT_LT(worst, 5e-5);
  // Logit effects: W_dec[f] @ W_U^T directly.
  at::Tensor eff = at::matmul(sae->w.W_dec, m->weights().w_u.to(at::kFloat).t());  // (d_sae, d_vocab)
  for (const FeatureCard& c : cards) {
    ASSERT_EQ(c.top_logits.size(), 6u);
    auto [tv, ti] = at::topk(eff[c.feature], 6);
    auto [bv, bi] = at::topk(eff[c.feature], 6, 0, false);
    for (int64_t i = 0; i < 6; ++i) {
      EXPECT_EQ(c.top_logits[static_cast<size_t>(i)].token_id, ti[i].item<int64_t>());
      EXPECT_NEAR(c.top_logits[static_cast<size_t>(i)].value, tv[i].item<float>(), 1e-5);
      EXPECT_EQ(c.bottom_logits[static_cast<size_t>(i)].token_id, bi[i].item<int64_t>());
      EXPECT_NEAR(c.bottom_logits[static_cast<size_t>(i)].value, bv[i].item<float>(), 1e-5);
    }
  }
  // A selection and top_features.
  o.features = {7, 3};
  std::vector<FeatureCard> two = feature_dashboards(*m, *sae, prompts, o);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].feature, 7);
  expect_same(two[1], cards[3]);
  o.features.clear();
  o.top_features = 4;
  std::vector<FeatureCard> busiest = feature_dashboards(*m, *sae, prompts, o);
  ASSERT_EQ(busiest.size(), 4u);
  for (size_t i = 1; i < busiest.size(); ++i) EXPECT_GE(busiest[i - 1].n_firing, busiest[i].n_firing);
}

TEST(SaeDashboard, BadInputIsRefused) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2", 2);
  auto sae = random_sae(m->config().d_model, 16, "blocks.0.hook_resid_pre", 1);
  std::vector<std::vector<int32_t>> prompts{{1, 2, 3}};
  DashboardOptions o;
  o.features = {16};
  try {
    feature_dashboards(*m, *sae, prompts, o);
    ADD_FAILURE() << "feature 16 of 16 accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    EXPECT_NE(std::string(e.what()).find("feature 16"), std::string::npos) << e.what();
  }
  auto wide = random_sae(m->config().d_model + 8, 16, "blocks.0.hook_resid_pre", 1);
  o.features.clear();
  try {
    feature_dashboards(*m, *wide, prompts, o);
    ADD_FAILURE() << "d_in mismatch accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
  }
}

// Cards with labels and logit lists, stored and read back field for field; merged into another
// database identically; deleted with their run.
TEST(SaeDashboard, StoredCardsReadBackIdentically) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2", 2);
  auto sae = random_sae(m->config().d_model, 12, "blocks.0.hook_resid_post", 6);
  auto prompts = random_prompts(12, 9, static_cast<int>(m->config().d_vocab), 4);
  DashboardOptions o;
  o.top_k = 4;
  o.context = 2;
  o.n_bins = 8;
  o.n_logits = 3;
  std::vector<FeatureCard> cards = feature_dashboards(*m, *sae, prompts, o);
  cards[0].examples.at(0).tokens[0] = "quote\" and \xff byte";  // odd labels survive (as JSON replaces them)
  const std::string dir = test::temp_dir("sae_dashboard_store");
  auto db = Database::open(dir + "/a.db");
  ASSERT_TRUE(db.ok()) << db.error().message;
  RunResults res;
  res.features = cards;
  auto id = (*db)->store_run(RunSpec("sae-features"), res);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto back = (*db)->get_feature_cards(*id);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), cards.size());
  cards[0].examples[0].tokens[0] = (*back)[0].examples[0].tokens[0];  // the invalid byte was replaced
  EXPECT_NE(cards[0].examples[0].tokens[0].find("quote\" and"), std::string::npos);
  for (size_t i = 0; i < cards.size(); ++i) expect_same((*back)[i], cards[i]);
  auto some = (*db)->get_feature_cards(*id, {5, 2}, true);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].feature, 5);
  EXPECT_TRUE((*some)[0].examples.empty());
  EXPECT_EQ((*db)->count_feature_cards(*id).value(), 12);
  auto other = Database::open(dir + "/b.db");
  ASSERT_TRUE(other.ok());
  auto merged = (*other)->merge_from(dir + "/a.db");
  ASSERT_TRUE(merged.ok()) << merged.error().message;
  auto runs = (*other)->list_runs();
  ASSERT_EQ(runs->size(), 1u);
  auto copied = (*other)->get_feature_cards((*runs)[0].run.id);
  ASSERT_TRUE(copied.ok());
  for (size_t i = 0; i < cards.size(); ++i) expect_same((*copied)[i], cards[i]);
  ASSERT_TRUE((*db)->delete_run(*id).ok());
  EXPECT_EQ((*db)->count_feature_cards(*id).value(), 0);
}

// `mechscope sae features` on a zoo random model: the run is stored, `runs show` names its cards,
// the HTML report renders them; bad feature indices and an SAE of the wrong width exit 3.
TEST(SaeDashboard, CliStoresARunAndTheReportHasCards) {
  const std::string dir = test::temp_dir("sae_features_cli");
  const std::string model = dir + "/tiny", db = dir + "/runs.db";
  auto z = test::run_mechscope({"zoo", "random", "--n-layers", "2", "--d-model", "32", "--n-heads", "4", "--d-vocab",
                                "64", "--seed", "3", "--init-std", "0.2", "--out", model});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  auto write_sae = [&](const std::string& d, int64_t d_in) {
    fs::create_directories(d);
    at::manual_seed(9);
    nlohmann::json cfg{{"architecture", "standard"}, {"d_in", d_in}, {"d_sae", 24}, {"dtype", "float32"},
                       {"metadata", {{"hook_name", "blocks.1.hook_resid_pre"}}}};
    test::write_file(d + "/cfg.json", cfg.dump());
    Status st = write_safetensors(d + "/sae_weights.safetensors",
                                  {{"W_enc", at::randn({d_in, 24}) * 0.3}, {"W_dec", at::randn({24, d_in}) * 0.3},
                                   {"b_enc", at::randn({24}) * 0.1}, {"b_dec", at::randn({d_in}) * 0.1}});
    ASSERT_TRUE(st.ok()) << st.error().message;
  };
  write_sae(dir + "/sae", 32);
  write_sae(dir + "/wide", 48);
  std::string lines;
  for (int i = 0; i < 20; ++i) lines += "{\"tokens\": [" + std::to_string(i) + ", 5, 7, " + std::to_string(i * 3 % 64) + ", 9, 11]}\n";
  test::write_file(dir + "/p.jsonl", lines);
  auto r = test::run_mechscope({"sae", "features", "--model", model, "--sae", dir + "/sae", "--prompts", dir + "/p.jsonl",
                                "--top-k", "3", "--context", "2", "--db", db, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const int64_t run = j["run"].get<int64_t>();
  EXPECT_EQ(j["n_tokens"], 120);
  auto show = test::run_mechscope({"runs", "show", std::to_string(run), "--db", db});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("24 feature cards"), std::string::npos) << show.out;
  auto rep = test::run_mechscope({"report", "--run", std::to_string(run), "--db", db, "--format", "html", "--out", dir + "/r.html"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  const std::string html = test::read_file(dir + "/r.html");
  EXPECT_NE(html.find("Feature cards"), std::string::npos);
  EXPECT_NE(html.find("id=\"run-" + std::to_string(run) + "-feature-0\""), std::string::npos);
  EXPECT_NE(html.find("promotes"), std::string::npos);
  auto bad = test::run_mechscope({"sae", "features", "--model", model, "--sae", dir + "/sae", "--prompts",
                                  dir + "/p.jsonl", "--features", "3,24", "--db", db});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("feature 24"), std::string::npos) << bad.err;
  auto wide = test::run_mechscope({"sae", "features", "--model", model, "--sae", dir + "/wide", "--prompts",
                                   dir + "/p.jsonl", "--db", db});
  EXPECT_EQ(wide.exit_code, 3) << wide.err;
  EXPECT_NE(wide.err.find(dir + "/wide"), std::string::npos) << wide.err;
}

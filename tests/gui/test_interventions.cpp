// The Contributions and Activations windows' numbers (views/forward_result.h) against direct
// computations: per-position logit difference and loss from the model's own logits (clean,
// corrupted, and with a head ablated by cutting its w_o columns), the direct logit attribution
// adding up to the logit, the cached hook point equal to a forward with cache_hook, and the .npy
// export (a background task; cancelled between files) read back equal to it.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/io/npy.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"
#include "views/forward_result.h"
#include "views/heatmap_data.h"
#include "views/settings.h"
#include "views/task_manager.h"
#include "views/workbench.h"

namespace {
using namespace ms;
using namespace ms::views;

const std::vector<int32_t> kClean = {0, 5, 9, 13, 1, 17, 21, 5, 9, 13, 1, 17};
const std::vector<int32_t> kCorrupt = {0, 7, 11, 13, 1, 17, 21, 5, 9, 13, 1, 17, 3};

at::Tensor logits_of(const Model& m, const std::vector<int32_t>& ids, HookRegistry* hooks = nullptr,
                     AttentionKernel kernel = AttentionKernel::kAuto) {
  ForwardOptions o;
  o.hooks = hooks;
  o.attention_kernel = kernel;
  return m.forward(m.tokens_tensor(ids), o)[0].to(at::kDouble);  // (T, V)
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    worst = std::max(worst, std::fabs(got[i] - want[i]));
  }
  std::printf("%s: max |difference| %.3g (tolerance %.0e)\n", what, worst, tol);
  EXPECT_LT(worst, tol) << what;
}

TEST(Interventions, PerPositionLogitDiffAndLossEqualTheModelsLogits) {
  auto m = ms::test::tiny_model("gpt2");
  const int32_t answer = 17, wrong = 9;
  ForwardRequest req;
  req.ids = kClean;
  req.contributions = true;
  req.corrupted_ids = kCorrupt;
  req.answer = answer;
  req.wrong = wrong;
  req.ablate = {{1, 0}};
  ForwardResult r = compute_forward(*m, req);
  EXPECT_EQ(r.answer, answer);
  EXPECT_EQ(r.wrong, wrong);
  EXPECT_EQ(r.contrib_pos, static_cast<int64_t>(kClean.size()) - 1);
  auto direct = [&](const at::Tensor& lg, const std::vector<int32_t>& ids, std::vector<double>* diff, std::vector<double>* loss) {
    at::Tensor lp = at::log_softmax(lg, -1);
    for (int64_t t = 0; t < lg.size(0); ++t) {
      diff->push_back(lg[t][answer].item<double>() - lg[t][wrong].item<double>());
      loss->push_back(t + 1 < lg.size(0) ? -lp[t][ids[static_cast<size_t>(t + 1)]].item<double>() : std::nan(""));
    }
  };
  std::vector<double> d, l;
  direct(logits_of(*m, kClean), kClean, &d, &l);
  expect_near_all(r.diff_clean, d, 1e-4, "clean logit difference");
  expect_near_all(r.loss_clean, l, 1e-4, "clean loss");
  d.clear(), l.clear();
  direct(logits_of(*m, kCorrupt), kCorrupt, &d, &l);
  expect_near_all(r.diff_corrupted, d, 1e-4, "corrupted logit difference");
  expect_near_all(r.loss_corrupted, l, 1e-4, "corrupted loss");
  // The ablated head, by another path: its hook_z zeroed through the stock zero-ablation hook.
  HookRegistry reg;
  Selection sel;
  sel.heads = {0};
  reg.add_forward("blocks.1.attn.hook_z", zero_ablate_hook(sel));
  d.clear(), l.clear();
  direct(logits_of(*m, kClean, &reg), kClean, &d, &l);
  expect_near_all(r.diff_ablated, d, 1e-4, "ablated logit difference");
  expect_near_all(r.loss_ablated, l, 1e-4, "ablated loss");
  double change = 0;
  for (size_t t = 0; t < d.size(); ++t) change = std::max(change, std::fabs(r.diff_ablated[t] - r.diff_clean[t]));
  EXPECT_GT(change, 1e-4);  // the ablation changes the metric
}

// Heads + MLPs + embeddings + biases add up to the logit (difference) at the chosen position, for
// LayerNorm with biases (gpt2: b_O, ln_final bias) and RMSNorm (llama), with and without a wrong token.
TEST(Interventions, DirectContributionsAddUpToTheLogit) {
  for (const char* family : {"gpt2", "llama"}) {
    auto m = ms::test::tiny_model(family);
    for (int32_t wrong : {-1, 9}) {
      ForwardRequest req;
      req.ids = kClean;
      req.contributions = true;
      req.contrib_pos = 6;
      req.wrong = wrong;
      ForwardResult r = compute_forward(*m, req);
      at::Tensor lg = logits_of(*m, kClean);
      EXPECT_EQ(r.answer, lg[6].argmax().item<int64_t>()) << family;  // default: the top prediction there
      double want = lg[6][r.answer].item<double>() - (wrong >= 0 ? lg[6][wrong].item<double>() : 0.0);
      double sum = r.dla_embed + r.dla_bias;
      for (double v : r.dla_heads) sum += v;
      for (double v : r.dla_mlp) sum += v;
      std::printf("%s wrong %d: parts sum %.6f, DLA total %.6f, model logit %.6f\n", family, wrong, sum, r.dla_total, want);
      EXPECT_EQ(r.dla_heads.size(), static_cast<size_t>(m->config().n_layers * m->config().n_heads));
      EXPECT_EQ(r.dla_mlp.size(), static_cast<size_t>(m->config().n_layers));
      EXPECT_NEAR(sum, want, 1e-3 * std::max(1.0, std::fabs(want))) << family << " wrong " << wrong;
      EXPECT_NEAR(r.dla_total, want, 1e-3 * std::max(1.0, std::fabs(want))) << family;
      EXPECT_NEAR(r.diff_clean[6], want, 1e-4) << family;
    }
  }
}

TEST(Interventions, CachedHookPointEqualsAForwardWithCache) {
  auto m = ms::test::tiny_model("gpt2");
  for (const char* name : {"blocks.1.attn.hook_z", "blocks.0.mlp.hook_post", "blocks.1.hook_resid_post",
                           "blocks.0.attn.hook_pattern"}) {
    ForwardRequest req;
    req.ids = kClean;
    req.cache_hook = name;
    ForwardResult r = compute_forward(*m, req);
    ASSERT_TRUE(r.act_error.empty()) << r.act_error;
    // The workbench's pass records the patterns it shows, so it takes the materialising attention
    // path: against a forward with cache on that path it is bit for bit the same; against the
    // default forward (the fused kernel where nothing reads the pattern) within float32 reordering.
    HookRegistry reg;
    ActivationCache cache, cache_auto;
    reg.add_forward(name, cache_hook(cache));
    logits_of(*m, kClean, &reg, AttentionKernel::kMaterialise);
    at::Tensor want = cache.at(name).to(at::kFloat);
    ASSERT_TRUE(r.act.sizes().equals(want.sizes())) << name;
    double diff = (r.act - want).abs().max().item<double>();
    HookRegistry reg_auto;
    reg_auto.add_forward(name, cache_hook(cache_auto));
    logits_of(*m, kClean, &reg_auto);
    at::Tensor want_auto = cache_auto.at(name).to(at::kFloat);
    const double diff_auto = (r.act - want_auto).abs().max().item<double>() / want_auto.abs().max().item<double>();
    std::printf("%s: max |shown - run_with_cache| %.3g (materialising), relative %.3g (default path)\n", name, diff,
                diff_auto);
    EXPECT_EQ(diff, 0.0) << name;
    EXPECT_LT(diff_auto, 1e-5) << name;
    // The matrix: positions x the rest, in the activation's own order after the position axis.
    const int64_t T = static_cast<int64_t>(kClean.size());
    ASSERT_EQ(r.act_rows, T) << name;
    ASSERT_EQ(r.act_cols * T, want.numel()) << name;
    at::Tensor rows = std::string(name).find("pattern") != std::string::npos ? want[0].movedim(1, 0) : want[0];
    at::Tensor flat = rows.reshape({T, -1}).contiguous();
    for (int64_t t : {int64_t(0), T / 2, T - 1})
      for (int64_t c : {int64_t(0), r.act_cols / 3, r.act_cols - 1})
        EXPECT_EQ((*r.act_matrix)[static_cast<size_t>(t * r.act_cols + c)], flat[t][c].item<float>()) << name;
    // The top positions of a column are its largest values.
    auto top = r.top_positions(r.act_cols / 3, 3);
    ASSERT_EQ(top.size(), 3u);
    EXPECT_EQ(top[0].second, flat.select(1, r.act_cols / 3).max().item<float>()) << name;
    EXPECT_GE(top[0].second, top[1].second);
  }
  ForwardRequest bad;
  bad.ids = kClean;
  bad.cache_hook = "blocks.9.hook_nothing";
  EXPECT_NE(compute_forward(*m, bad).act_error.find("no hook point"), std::string::npos);
}

// The Activations window's colour scale: symmetric around zero, zero white, signs blue and red.
TEST(Interventions, SignedHeatScaleIsDivergingAroundZero) {
  std::vector<float> v = {-2.0f, 0.0f, 1.0f, 0.5f};
  HeatRange r = heat_range(v.data(), 2, 2, HeatScale::kSigned);
  EXPECT_EQ(r.lo, -2.0);
  EXPECT_EQ(r.hi, 2.0);
  EXPECT_DOUBLE_EQ(r.normalize(0.0), 0.5);
  HeatLevel lv{2, 2, 1, v};
  std::vector<uint8_t> rgba;
  colorize(lv, r, rgba);
  EXPECT_GT(rgba[0 * 4 + 2], rgba[0 * 4 + 0]);                       // -2: blue
  EXPECT_GT(rgba[1 * 4 + 0], 240);                                    // 0: white
  EXPECT_GT(rgba[1 * 4 + 1], 240);
  EXPECT_GT(rgba[2 * 4 + 0], rgba[2 * 4 + 2]);                       // 1: red
  EXPECT_STREQ(heat_scale_name(HeatScale::kSigned), "signed");
}

void wait_idle(Workbench& wb, TaskManager& tasks) {
  for (int i = 0; i < 60000 && (wb.busy() || tasks.busy()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    wb.poll();
  }
  wb.poll();
}

// Runs the Activations window's export (a background task) to its end; what it wrote.
NpyExport run_export(Workbench& wb, TaskManager& tasks, const std::string& folder, bool all) {
  int64_t id = wb.export_activations(folder, all);
  EXPECT_GT(id, 0);
  EXPECT_TRUE(wb.export_running());
  wait_idle(wb, tasks);
  EXPECT_FALSE(wb.export_running());
  EXPECT_EQ(wb.export_task(), id);
  for (const TaskSnapshot& t : tasks.snapshot())  // progress: hook points written / total
    if (t.id == id) {
      EXPECT_FALSE(t.failed) << t.error;
      EXPECT_DOUBLE_EQ(t.progress, 1.0);
      std::string n = std::to_string(wb.last_export().total);
      EXPECT_EQ(t.status, n + " / " + n + " hook points written");
    }
  return wb.last_export();
}

// The files in a folder (names), sorted.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> names_of(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) out.push_back(std::filesystem::path(p).filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The Workbench's export (the Activations window's buttons) on the default model, run as a task to
// its end: the .npy files read back equal a forward with cache of the same prompt, float32 exactly.
TEST(Interventions, NpyExportRoundTripsThroughTheWorkbench) {
  TaskManager tasks;
  Settings settings;
  Workbench wb(tasks, settings);
  wb.open_model(ms::test::source_dir() + "/resources/models/default");
  wait_idle(wb, tasks);
  ASSERT_TRUE(wb.model());
  wb.open_activation("blocks.1.mlp.hook_post");
  wait_idle(wb, tasks);
  ASSERT_TRUE(wb.forward());
  ASSERT_EQ(wb.forward()->act_name, "blocks.1.mlp.hook_post");
  const std::string dir = ms::test::temp_dir("npy-export");
  std::vector<std::string> one = run_export(wb, tasks, dir + "/one", false).paths;
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(wb.export_note(), "1 file written to " + dir + "/one: " + one[0]);
  NpyExport all_export = run_export(wb, tasks, dir + "/all", true);
  std::vector<std::string> all = all_export.paths;
  EXPECT_FALSE(all_export.cancelled);
  EXPECT_EQ(all.size(), wb.model()->hook_points().size());
  EXPECT_EQ(all_export.total, static_cast<int64_t>(all.size()));
  EXPECT_EQ(files_in(dir + "/all"), names_of(all));  // nothing else (no temporary files)
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward("*", cache_hook(cache));
  ForwardOptions o;
  o.hooks = &reg;
  wb.model()->forward(wb.model()->tokens_tensor(wb.forward()->ids), o);
  auto check = [&](const std::string& path, const std::string& name) {
    Result<at::Tensor> t = read_npy(path);
    ASSERT_TRUE(t.ok()) << t.error().message;
    at::Tensor want = cache.at(name).to(at::kFloat);
    ASSERT_TRUE(t->sizes().equals(want.sizes())) << name;
    EXPECT_TRUE(at::equal(t->to(at::kFloat), want)) << name;  // exact (masked scores are -inf in both)
  };
  for (const std::string& p : all) check(p, std::filesystem::path(p).stem().string());

  // Cancelled between files (the third file's update interrupts): three whole files, nothing else.
  RunControl control;
  control.set_listener([&control](int64_t done, int64_t) {
    if (done == 3) control.interrupt();
  });
  NpyExport part = export_cache_npy(*wb.model(), wb.forward()->ids, "*", dir + "/part", &control);
  EXPECT_TRUE(part.cancelled);
  EXPECT_EQ(part.total, static_cast<int64_t>(all.size()));
  ASSERT_EQ(part.paths.size(), 3u);
  EXPECT_EQ(files_in(dir + "/part"), names_of(part.paths));
  for (const std::string& p : part.paths) check(p, std::filesystem::path(p).stem().string());
  // The window's Cancel (the task's): the task ends, the note says so, and the folder holds only
  // whole files, those the export reports (none when the cancel came before the forward pass ended).
  int64_t id = wb.export_activations(dir + "/cancelled", true);
  ASSERT_GT(id, 0);
  EXPECT_EQ(wb.export_activations(dir + "/second", true), 0);  // one export at a time
  std::string title, why;
  EXPECT_TRUE(wb.take_error(&title, &why));
  tasks.cancel(id);
  wait_idle(wb, tasks);
  const NpyExport& c = wb.last_export();
  std::printf("cancelled export: %zu of %lld files written (cancelled: %d)\n", c.paths.size(),
              static_cast<long long>(c.total), c.cancelled);
  if (c.cancelled) EXPECT_EQ(wb.export_note().rfind("cancelled", 0), 0u) << wb.export_note();
  else EXPECT_EQ(c.paths.size(), all.size());
  if (std::filesystem::exists(dir + "/cancelled")) EXPECT_EQ(files_in(dir + "/cancelled"), names_of(c.paths));
  else EXPECT_TRUE(c.paths.empty());
  for (const std::string& p : c.paths) check(p, std::filesystem::path(p).stem().string());

  // One point: against a forward that caches just that point (caching every point, attention
  // patterns included, takes another attention path, equal to about 1e-6).
  cache.clear();
  HookRegistry one_reg;
  one_reg.add_forward("blocks.1.mlp.hook_post", cache_hook(cache));
  o.hooks = &one_reg;
  wb.model()->forward(wb.model()->tokens_tensor(wb.forward()->ids), o);
  check(one[0], "blocks.1.mlp.hook_post");
  // The window's activation (its pass also records patterns through the attention observers).
  double shown = (wb.forward()->act - cache.at("blocks.1.mlp.hook_post").to(at::kFloat)).abs().max().item<double>();
  std::printf("shown blocks.1.mlp.hook_post: max |difference| to a forward with cache %.3g (tolerance 1e-5)\n", shown);
  EXPECT_LT(shown, 1e-5);
  // Nothing chosen / a bad folder: the popup, no task.
  wb.take_error(&title, &why);
  wb.act_hook.clear();
  EXPECT_EQ(wb.export_activations(dir + "/none", false), 0);
  EXPECT_TRUE(wb.take_error(&title, &why));
  EXPECT_FALSE(std::filesystem::exists(dir + "/none"));
}

}  // namespace

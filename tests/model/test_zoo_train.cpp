// The trained zoo at CI size: `induction` and `retrieval` are trained from scratch, saved, loaded
// back like any model, and their mechanisms are measured on fresh data with the head detectors
// (not read from zoo.json). Also: determinism, cancellation and the CLI.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/analysis/heads/head_detectors.h"
#include "core/analysis/retrieval/retrieval.h"
#include "core/zoo/zoo_measure.h"
#include "core/zoo/zoo_trained.h"
#include "tests/support/test_support.h"
#include "tests/support/zoo_fixture.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

std::unique_ptr<Model> train_and_load(const ZooRecipe& r, const std::string& dir) {
  ZooTrainSettings s;
  s.command = "test";
  Result<ZooTrainResult> res = train_zoo(r, dir, s);
  if (!res) throw std::runtime_error(res.error().message);
  std::printf("%s: %lld steps in %.1f s, %.0f tokens/s, final loss %.4f\n", r.name.c_str(),
              static_cast<long long>(res->outcome.steps_done), res->outcome.seconds,
              res->outcome.tokens_per_s, res->outcome.final_loss);
  Result<std::unique_ptr<Model>> m = Model::load(dir);
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

// A zoo episode as a needle-in-a-haystack test: the prompt ends with the question "?K", the needle
// is the asked value's digits, and the answer is those digits.
NeedleEpisode decode_episode(const Episode& e, int64_t index) {
  NeedleEpisode n;
  n.prompt.assign(e.tokens.begin(), e.tokens.begin() + e.answer_pos.front());
  n.needle_begin = e.source_pos.front();
  n.needle_end = e.source_pos.back() + 1;
  for (int64_t p : e.answer_pos) n.answer.push_back(e.tokens[static_cast<size_t>(p)]);
  n.max_new = static_cast<int64_t>(n.answer.size());
  n.depth_index = index;
  return n;
}

double max_in_layer(const at::Tensor& scores, int64_t layer) { return scores[layer].max().item<double>(); }

// The trained models are seed 1's; MECHSCOPE_TEST_ZOO_SEED=N trains another draw (how the margins
// below were checked across draws: other seeds, OpenBLAS kernels and ATen capabilities train
// other models, and every bound must hold for each of them).
uint64_t zoo_seed() {
  const char* s = std::getenv("MECHSCOPE_TEST_ZOO_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : 1;
}

TEST(ZooTrain, InductionModelGrowsPreviousTokenAndInductionHeads) {
  ZooRecipe r = zoo_recipe("induction", zoo_seed()).value();
  r.train.steps = test::kInductionZooSteps;  // CI size; the recipe trains longer
  // Seed 1's model is the one ctest's fixture trains with `mechscope zoo train` (the same recipe
  // and weights); another seed is trained here.
  std::string dir;
  std::unique_ptr<Model> model;
  if (zoo_seed() == 1) {
    dir = test::induction_zoo_dir();
    model = Model::load(dir).value();
  } else {
    dir = test::temp_dir("zoo") + "/induction";
    model = train_and_load(r, dir);
  }
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "zoo.json"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  ASSERT_NE(model->tokenizer(), nullptr);
  EXPECT_EQ(model->tokenizer()->encode("ab")[0], kAsciiBos);

  // Fresh probe: BOS + random tokens, repeated.
  TaskRng rng(424242);
  const int64_t half = (r.config.n_ctx - 1) / 2;  // BOS + two copies fit the context
  at::Tensor probe = repeated_random_tokens(48, half, 1, 127, kAsciiBos, rng);
  at::Tensor prev = detect_heads(*model, probe, HeadPattern::kPreviousToken).value();
  at::Tensor ind = induction_scores(*model, probe, half).value();
  at::Tensor tl_ind = detect_heads(*model, probe, HeadPattern::kInduction, {true, false, ErrorMeasure::kMul}).value();
  RepeatLoss loss = repeat_loss(*model, probe, half).value();
  std::cout << "previous-token (TL, mul):\n" << prev << "\ninduction score:\n" << ind
            << "\nTL induction (exclude_bos):\n" << tl_ind << "\nloss: repeated half " << loss.repeated
            << ", first half " << loss.first << "\n";
  EXPECT_GT(max_in_layer(prev, 0), 0.4) << "no previous-token head in layer 0";
  EXPECT_GT(max_in_layer(ind, 1), 0.7) << "no induction head in layer 1";
  EXPECT_GT(max_in_layer(tl_ind, 1), 0.5);
  EXPECT_LT(max_in_layer(ind, 0), 0.3) << "layer 0 cannot hold an induction head";
  EXPECT_LT(loss.repeated, 0.5 * loss.first);
}

TEST(ZooTrain, RetrievalModelHasRetrievalHeadsThatMatter) {
  ZooRecipe r = zoo_recipe("retrieval", zoo_seed()).value();
  r.train.steps = 5000;  // CI size; half of it repeats only (the curriculum), then episodes
  const std::string dir = test::temp_dir("zoo") + "/retrieval";
  auto model = train_and_load(r, dir);
  TaskRng rng(777);
  std::vector<Episode> eps;
  for (int i = 0; i < 96; ++i) eps.push_back(needle_episode(r.needle, rng));
  RetrievalFigures rf = retrieval_scores(*model, eps, 0).value();
  std::vector<HeadRef> heads = top_heads(rf.scores, 0.1);
  std::cout << "retrieval scores:\n" << rf.scores << "\naccuracy " << rf.accuracy << "\n";
  EXPECT_GT(rf.accuracy, 0.8);
  ASSERT_FALSE(heads.empty()) << "no retrieval head";
  EXPECT_GT(rf.scores[heads[0].layer][heads[0].head].item<double>(), 0.5);
  // The retrieval heads read the needle through previous-token heads (K-composition: the key at a
  // needle digit says which token precedes it), so masking a previous-token head breaks retrieval
  // too, for a reason Wu et al.'s control does not test. Which heads take that role, and how many
  // share it, differs from one trained draw to the next (seed, BLAS kernel, ATen kernels), so the
  // controls below draw their random heads from those outside the whole mechanism: neither
  // retrieval heads nor previous-token heads (TransformerLens' detector on repeated random tokens,
  // score >= 0.3).
  TaskRng probe_rng(4242);
  const int64_t half = (r.config.n_ctx - 1) / 2;
  at::Tensor probe = repeated_random_tokens(48, half, 1, 127, kAsciiBos, probe_rng);
  at::Tensor prev = detect_heads(*model, probe, HeadPattern::kPreviousToken).value();
  std::cout << "previous-token scores:\n" << prev << "\n";
  const std::vector<HeadRef> prev_heads = top_heads(prev, 0.3);
  EXPECT_FALSE(prev_heads.empty()) << "no previous-token head for the retrieval heads to read from";
  auto with_prev = [&](std::vector<HeadRef> hs) {
    for (const HeadRef& h : prev_heads)
      if (std::find(hs.begin(), hs.end(), h) == hs.end()) hs.push_back(h);
    return hs;
  };
  const int64_t L = model->config().n_layers, H = model->config().n_heads;

  // Teacher-forced, zero ablation (hook_z): the retrieval heads against 10 draws of as many others.
  const double baseline = answer_accuracy(*model, eps, 0).value();
  const double ablated = answer_accuracy(*model, eps, 0, heads).value();
  double control_mean = 0, control_worst = 1;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::vector<HeadRef> rnd = random_heads(L, H, with_prev(heads), static_cast<int64_t>(heads.size()), seed);
    const double acc = answer_accuracy(*model, eps, 0, rnd).value();
    control_mean += acc / 10;
    control_worst = std::min(control_worst, acc);
  }
  std::printf("accuracy: baseline %.3f, %zu retrieval heads ablated %.3f, as many heads outside the mechanism "
              "%.3f (mean of 10 draws, worst %.3f)\n", baseline, heads.size(), ablated, control_mean, control_worst);
  EXPECT_LT(ablated, 0.3 * baseline) << "ablating the retrieval heads should break retrieval";
  EXPECT_GT(control_mean, 0.6 * baseline) << "ablating as many heads outside the mechanism should not";
  EXPECT_LE(heads.size(), 6u) << "retrieval heads should be a few of the 16";

  // Issue 6's analysis on the same model, exactly as `mechscope retrieval` runs it: greedy decoding
  // with the KV cache, Wu et al.'s per-step copy score, and their masking (uniform attention).
  std::vector<NeedleEpisode> wu;
  for (size_t i = 0; i < eps.size(); ++i) wu.push_back(decode_episode(eps[i], static_cast<int64_t>(i)));
  RetrievalOptions opts;
  opts.exact_match = true;
  const int64_t n = static_cast<int64_t>(wu.size());
  RetrievalReport rep = analyze_retrieval(*model, wu, 1, n, opts);
  const std::vector<HeadRef> found = retrieval_heads(rep.head_score, 0.1);
  std::cout << "Wu et al. retrieval scores (decoding):\n" << rep.head_score << "\naccuracy " << rep.accuracy.mean() << "\n";
  ASSERT_FALSE(found.empty()) << "the decode-time score finds no retrieval head";
  EXPECT_GT(rep.head_score[found[0].layer][found[0].head].item<double>(), 0.5);
  for (int64_t l = 0; l < model->config().n_layers; ++l)
    for (int64_t h = 0; h < model->config().n_heads; ++h)
      if (std::find(found.begin(), found.end(), HeadRef{l, h}) == found.end()) {
        EXPECT_LT(rep.head_score[l][h].item<double>(), 0.1) << "non-retrieval head " << l << "." << h;
      }
  const double base = rep.accuracy.mean().item<double>();
  const double top_masked = analyze_retrieval(*model, wu, 1, n, opts, found).accuracy.mean().item<double>();
  // The control: every head outside the mechanism (above), masked one at a time. Wu et al. mask
  // as many random heads as retrieval heads, but in this 16-head model that is 5 of the 9 heads
  // outside the mechanism, more than half of the rest of the model: its median drop measured
  // 2.1 and 6.2 points on two trained draws, 36.5 on a third (issue 19) and 47.9 on a fourth (the
  // same seed built with clang), so it asserted which model the draw trained, not the mechanism.
  // Masking each other head alone asks the mechanism's question without depending on the draw's
  // seeds: no typical head outside it matters for retrieval, while the retrieval heads together
  // take it to zero. (All heads, no random draw: the same answer for one trained model anywhere.)
  const std::vector<HeadRef> mechanism = with_prev(found);
  std::vector<double> drops;
  std::string singles;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) {
      if (std::find(mechanism.begin(), mechanism.end(), HeadRef{l, h}) != mechanism.end()) continue;
      const double drop = base - analyze_retrieval(*model, wu, 1, n, opts, {HeadRef{l, h}}).accuracy.mean().item<double>();
      char buf[48];
      std::snprintf(buf, sizeof buf, " %lld.%lld:%.1f", static_cast<long long>(l), static_cast<long long>(h), drop);
      singles += buf;
      drops.push_back(drop);
    }
  ASSERT_FALSE(drops.empty());
  std::sort(drops.begin(), drops.end());
  const double median = drops[drops.size() / 2];
  std::printf("needle accuracy %.1f; %zu top heads masked: drop %.1f points; each of the %zu heads outside the "
              "mechanism (%zu heads) masked alone:%s; median drop %.1f, worst %.1f points\n", base, found.size(),
              base - top_masked, drops.size(), mechanism.size(), singles.c_str(), median, drops.back());
  EXPECT_GT(base - top_masked, 50.0);
  EXPECT_LT(median, 10.0) << "a typical head outside the mechanism should not matter for retrieval";
  EXPECT_GT(base - top_masked - median, 50.0) << "the retrieval heads must matter far more than the others";
}

TEST(ZooTrain, SameSeedSameModel) {
  ZooRecipe r = zoo_recipe("induction", 7).value();
  r.train.steps = 20;
  r.eval_batch = 8;
  const std::string base = test::temp_dir("zoo");
  ASSERT_TRUE(train_zoo(r, base + "/a").ok());
  ASSERT_TRUE(train_zoo(r, base + "/b").ok());
  EXPECT_EQ(test::read_file(base + "/a/model.safetensors"), test::read_file(base + "/b/model.safetensors"));
  ZooRecipe other = zoo_recipe("induction", 8).value();
  other.train.steps = 20;
  other.eval_batch = 8;
  ASSERT_TRUE(train_zoo(other, base + "/c").ok());
  EXPECT_NE(test::read_file(base + "/a/model.safetensors"), test::read_file(base + "/c/model.safetensors"));
  // zoo.json records the recipe, seed, threads, result and measurements.
  nlohmann::json z = nlohmann::json::parse(test::read_file(base + "/a/zoo.json"));
  EXPECT_EQ(z["name"], "induction");
  EXPECT_EQ(z["seed"], 7);
  EXPECT_EQ(z["threads"], r.train.threads);
  EXPECT_TRUE(z["result"].contains("final_loss"));
  EXPECT_TRUE(z["measured"].contains("induction_score"));
  // An existing folder is not replaced unless asked.
  Result<ZooTrainResult> again = train_zoo(r, base + "/a");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kUsage);
}

TEST(ZooTrain, CancelledRunWritesNothing) {
  ZooRecipe r = zoo_recipe("induction", 1).value();
  r.train.steps = 1000;
  std::atomic<bool> cancel{false};
  ZooTrainSettings s;
  s.callbacks.cancel = &cancel;
  s.callbacks.report_every = 1;
  s.callbacks.on_progress = [&](const TrainProgress& p) {
    if (p.step == 3) cancel.store(true);
  };
  const std::string dir = test::temp_dir("zoo") + "/cancelled";
  Result<ZooTrainResult> res = train_zoo(r, dir, s);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(res->cancelled);
  EXPECT_EQ(res->outcome.steps_done, 3);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST(ZooTrain, CommandLine) {
  const std::string base = test::temp_dir("zoo-cli");
  test::ProcessResult ok = test::run_mechscope({"zoo", "train", "induction", "--steps", "5", "--threads", "1",
                                                "--out", base + "/m"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("wrote induction"), std::string::npos) << ok.out;
  EXPECT_NE(ok.err.find("5/5"), std::string::npos) << "progress lines on stderr: " << ok.err;
  test::ProcessResult fwd = test::run_mechscope({"forward", "--model", base + "/m", "--text", "abcabc"});
  EXPECT_EQ(fwd.exit_code, 0) << fwd.err;
  // Refuses to overwrite, then replaces with --force.
  EXPECT_EQ(test::run_mechscope({"zoo", "train", "induction", "--steps", "2", "--out", base + "/m"}).exit_code, 2);
  EXPECT_EQ(test::run_mechscope({"zoo", "train", "induction", "--steps", "2", "--threads", "1", "--force",
                                 "--out", base + "/m"}).exit_code, 0);
  EXPECT_EQ(test::run_mechscope({"zoo", "train", "nonsense", "--out", base + "/x"}).exit_code, 2);
  EXPECT_EQ(test::run_mechscope({"zoo", "train", "induction"}).exit_code, 2);
}

// Ctrl-C: the process stops with exit code 130 and leaves no folder (neither DIR nor DIR.tmp).
TEST(ZooTrain, InterruptLeavesNoOutput) {
  const std::string base = test::temp_dir("zoo-int"), out = base + "/m";
  const std::string err_path = base + "/err";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* err = std::freopen(err_path.c_str(), "w", stderr);
    (void)err;
    std::string bin = test::mechscope_binary();
    ::execl(bin.c_str(), bin.c_str(), "zoo", "train", "induction", "--steps", "100000", "--threads", "1",
            "--out", out.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until training has started, then interrupt.
  for (int i = 0; i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (test::read_file(err_path).find("training") != std::string::npos) break;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130) << test::read_file(err_path);
  EXPECT_NE(test::read_file(err_path).find("nothing was written"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

}  // namespace
}  // namespace ms

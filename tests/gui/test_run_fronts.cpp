// Each analysis (sinks, retrieval, heads, patch, circuit, sae-train, sae-features, sae-heads, sae-circuit) launched all three ways, `mechscope
// KIND`, a batch job and the workbench's launch (`mechscope gui --launch`, under Xvfb), on tiny
// models: the three databases hold the same run, byte for byte (parameters, inputs, head scores,
// tensors, circuits), apart from ids, times, the reproducing command and batch provenance.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "storage/database.h"
#include "tests/support/test_support.h"

namespace {

using ms::test::run_mechscope;

// Everything stored of the one done run of kind, as text (tensor bytes verbatim); the batch
// provenance ("batch" parameters) left out.
std::string stored(const std::string& db_path, const std::string& kind) {
  auto db = ms::Database::open(db_path);
  EXPECT_TRUE(db.ok()) << db_path;
  if (!db.ok()) return "";
  ms::Database& d = **db;
  ms::RunFilter f;
  f.kind = kind;
  auto runs = d.list_runs(f);
  EXPECT_TRUE(runs.ok() && runs->size() == 1) << db_path << " " << kind;
  if (!runs.ok() || runs->size() != 1) return "";
  const ms::RunInfo& run = (*runs)[0].run;
  EXPECT_EQ(run.status, ms::RunStatus::kDone) << db_path;
  nlohmann::json p = nlohmann::json::parse(run.spec.params_json);
  p.erase("batch");
  std::string v = "kind " + run.spec.kind + "\nparams " + p.dump() + "\n";
  auto inputs = d.get_inputs(run.id);
  auto scores = d.get_head_scores(run.id);
  auto tensors = d.list_tensors(run.id);
  auto circuits = d.get_circuits(run.id);
  EXPECT_TRUE(inputs && scores && tensors && circuits);
  if (!inputs || !scores || !tensors || !circuits) return v;
  for (const auto& in : *inputs) {
    v += "input " + std::to_string(in.index) + " " + in.text + " [";
    for (size_t i = 0; i < in.token_ids.size(); ++i) v += std::to_string(in.token_ids[i]) + " " + in.tokens[i] + ",";
    v += "]\n";
  }
  char buf[64];
  for (const auto& hs : *scores) {
    v += "score " + hs.metric + ":";
    for (double x : hs.values) std::snprintf(buf, sizeof(buf), " %.17g", x), v += buf;
    v += "\n";
  }
  for (const auto& ti : *tensors) {
    auto t = d.get_tensor(run.id, ti.name);
    EXPECT_TRUE(t) << ti.name;
    if (!t) continue;
    at::Tensor c = t->contiguous();
    v += "tensor " + ti.name + " " + ti.dtype + " " + ti.meta_json + " ";
    v += std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes())) + "\n";
  }
  for (const auto& ci : *circuits) {
    v += "circuit " + ci.name + " " + ci.meta_json + "\n";
    for (const auto& n : ci.nodes) std::snprintf(buf, sizeof(buf), " %.17g", n.score), v += " node " + n.name + buf;
    for (const auto& e : ci.edges)
      std::snprintf(buf, sizeof(buf), " %.17g", e.score), v += " edge " + std::to_string(e.src) + ">" + std::to_string(e.dst) + buf;
    v += "\n";
  }
  auto cards = d.get_feature_cards(run.id);  // sae-features
  EXPECT_TRUE(cards);
  if (!cards) return v;
  for (const auto& fc : *cards) {
    std::snprintf(buf, sizeof(buf), " %.9g %.17g", fc.max_act, fc.hist_max);
    v += "card " + std::to_string(fc.feature) + " " + std::to_string(fc.n_tokens) + " " + std::to_string(fc.n_firing) + buf;
    for (int64_t h : fc.histogram) v += " " + std::to_string(h);
    for (const auto& l : fc.top_logits) std::snprintf(buf, sizeof(buf), " %.9g", l.value), v += " +" + l.token + buf;
    for (const auto& l : fc.bottom_logits) std::snprintf(buf, sizeof(buf), " %.9g", l.value), v += " -" + l.token + buf;
    for (const auto& e : fc.examples) {
      std::snprintf(buf, sizeof(buf), " %.9g", e.activation);
      v += " ex " + std::to_string(e.prompt) + ":" + std::to_string(e.position) + buf;
      for (float a : e.acts) std::snprintf(buf, sizeof(buf), " %.9g", a), v += buf;
    }
    v += "\n";
  }
  return v;
}

// Runs one analysis the three ways into dir/{cli,batch,gui}.db and expects the same stored run.
void three_ways(const std::string& dir, const std::string& model, const std::string& kind,
                const std::vector<std::string>& cli_args, const std::string& toml, const std::string& launch,
                const std::string& toml_prompts = "", const std::vector<std::string>& also = {}) {
  // sae-train / sae-features / sae-heads / sae-circuit are `mechscope sae train|features|heads|circuit`.
  std::vector<std::string> cli = {kind};
  if (kind.rfind("sae-", 0) == 0) cli = {"sae", kind.substr(4)};
  for (const std::string& a : {std::string("--model"), model, std::string("--threads"), std::string("1"), std::string("--db"), dir + "/cli.db"})
    cli.push_back(a);
  cli.insert(cli.end(), cli_args.begin(), cli_args.end());
  auto c = run_mechscope(cli);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ms::test::write_file(dir + "/job.toml", "threads = 1\n[[model]]\nname = \"m\"\npath = \"" + model + "\"\n" + toml_prompts +
                                              "[[analysis]]\nkind = \"" + kind + "\"\n" + toml);
  auto b = run_mechscope({"batch", dir + "/job.toml", "--db", dir + "/batch.db"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  auto g = run_mechscope({"gui", "--model", model, "--db", dir + "/gui.db", "--threads", "1", "--prompt", "0 5 9 13",
                          "--view", "analyses", "--screenshot", dir + "/shot.png", "--launch", kind + " " + launch});
  ASSERT_EQ(g.exit_code, 0) << g.err << g.out;
  const std::string from_cli = stored(dir + "/cli.db", kind);
  EXPECT_GT(from_cli.size(), 200u) << from_cli;
  EXPECT_TRUE(stored(dir + "/batch.db", kind) == from_cli) << kind << ": the batch job stored another run than the CLI";
  EXPECT_TRUE(stored(dir + "/gui.db", kind) == from_cli) << kind << ": the workbench stored another run than the CLI";
  for (const std::string& k : also) {  // linked runs (retrieval's masked re-runs)
    const std::string linked = stored(dir + "/cli.db", k);
    EXPECT_GT(linked.size(), 50u) << linked;
    EXPECT_TRUE(stored(dir + "/batch.db", k) == linked) << k << ": the batch job stored another run than the CLI";
    EXPECT_TRUE(stored(dir + "/gui.db", k) == linked) << k << ": the workbench stored another run than the CLI";
  }
}

// Token-id prompts for the random model (64 ids), each with a repeated half.
std::string repeat_prompts(const std::string& dir) {
  std::string prompts;
  for (int i = 0; i < 3; ++i) {
    std::vector<int> seq = {0};
    for (int t = 0; t < 8; ++t) seq.push_back(2 + (i * 13 + t * 7) % 62);
    for (int t = 0; t < 8; ++t) seq.push_back(seq[static_cast<size_t>(1 + t)]);
    prompts += "{\"tokens\": [";
    for (size_t t = 0; t < seq.size(); ++t) prompts += (t ? ", " : "") + std::to_string(seq[t]);
    prompts += "]}\n";
  }
  ms::test::write_file(dir + "/p.jsonl", prompts);
  return dir + "/p.jsonl";
}

const std::string& random_model() {
  static std::string dir = [] {
    std::string d = ms::test::temp_dir("fronts-random") + "/m";
    auto r = run_mechscope({"zoo", "random", "--out", d, "--init-std", "0.2", "--d-vocab", "64"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return d;
  }();
  return dir;
}

TEST(RunFronts, SinksStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-sinks");
  auto r = run_mechscope({"zoo", "construct", "sink", "--out", dir + "/sink"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string prompts;
  for (int i = 0; i < 3; ++i) {
    prompts += "{\"tokens\": [0";
    for (int t = 1; t < 24; ++t) prompts += ", " + std::to_string(2 + (i * 37 + t * 11) % 62);
    prompts += "]}\n";
  }
  ms::test::write_file(dir + "/p.jsonl", prompts);
  // The threshold written three ways ("rel:5.0", "rel:5", "rel:05") is stored as "rel:5".
  three_ways(dir, dir + "/sink", "sinks", {"--prompts", dir + "/p.jsonl", "--epsilon", "0.25", "--hidden-threshold", "rel:5.0"},
             "prompts = [\"p\"]\nepsilon = 0.25\nhidden_threshold = \"rel:5\"\n",
             "prompts=" + dir + "/p.jsonl epsilon=0.25 hidden_threshold=rel:05",
             "[[prompts]]\nname = \"p\"\npath = \"" + dir + "/p.jsonl\"\n");
  EXPECT_NE(stored(dir + "/gui.db", "sinks").find("\"hidden_threshold\":\"rel:5\""), std::string::npos);
}

TEST(RunFronts, RetrievalStoresTheSameRunsFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-retrieval");
  // No tokenizer: token-id needles. The lengths as text ("48,64") and as a TOML array are stored alike.
  three_ways(dir, random_model(), "retrieval", {"--lengths", "48,64", "--depths", "2", "--max-new", "6", "--mask-top", "1"},
             "lengths = [48, 64]\ndepths = 2\nmax_new = 6\nmask_top = 1\n", "lengths=48,64 depths=2 max_new=6 mask_top=1",
             "", {"retrieval-mask"});
  EXPECT_NE(stored(dir + "/gui.db", "retrieval").find("\"lengths\":[48,64]"), std::string::npos);
}

TEST(RunFronts, HeadDetectorsStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-heads");
  const std::string prompts = repeat_prompts(dir);
  // detect written as short and TransformerLens names is stored as "previous,induction".
  three_ways(dir, random_model(), "heads", {"--prompts", prompts, "--detect", "previous,induction_head", "--exclude-bos"},
             "prompts = [\"p\"]\ndetect = \"previous_token_head,induction\"\nexclude_bos = true\n",
             "prompts=" + prompts + " detect=previous,induction exclude_bos=true",
             "[[prompts]]\nname = \"p\"\npath = \"" + prompts + "\"\n");
  const std::string gui = stored(dir + "/gui.db", "heads");
  EXPECT_NE(gui.find("\"detect\":\"previous,induction\""), std::string::npos) << gui;
  EXPECT_NE(gui.find("\"input\":\"prompts\""), std::string::npos) << gui;
  EXPECT_NE(gui.find("induction_head_per_prompt"), std::string::npos) << gui;
}

TEST(RunFronts, PatchingStoresTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-patch");
  three_ways(dir, random_model(), "patch", {"--task", "induction", "--n", "6", "--seq-len", "5", "--seed", "3", "--what", "z"},
             "task = \"induction\"\nn = 6\nseq_len = 5\nseed = 3\nwhat = \"z\"\n",
             "task=induction n=6 seq_len=5 seed=3 what=z");
}

TEST(RunFronts, CircuitsStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-circuit");
  three_ways(dir, random_model(), "circuit",
             {"--task", "induction", "--n", "6", "--seq-len", "5", "--seed", "3", "--method", "eap", "--top-n", "30", "--evaluate"},
             "task = \"induction\"\nn = 6\nseq_len = 5\nseed = 3\nmethod = \"eap\"\ntop_n = 30\nevaluate = true\n",
             "task=induction n=6 seq_len=5 seed=3 method=eap top_n=30 evaluate=true");
}

TEST(RunFronts, SaeTrainingStoresTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-sae-train");
  const std::string prompts = repeat_prompts(dir);
  // The three write the same folder (its path is a stored parameter); each trains from scratch.
  const std::string out = dir + "/sae";
  three_ways(dir, random_model(), "sae-train",
             {"--prompts", prompts, "--hook", "blocks.0.hook_resid_post", "--arch", "topk", "--k", "4", "--d-sae", "32",
              "--steps", "12", "--batch-size", "16", "--log-every", "4", "--seed", "5", "--out", out},
             "prompts = [\"p\"]\nhook = \"blocks.0.hook_resid_post\"\narch = \"topk\"\nk = 4\nd_sae = 32\nsteps = 12\n"
             "batch_size = 16\nlog_every = 4\nseed = 5\nout = \"" + out + "\"\n",
             "prompts=" + prompts + " hook=blocks.0.hook_resid_post arch=topk k=4 d_sae=32 steps=12 batch_size=16 "
             "log_every=4 seed=5 out=" + out,
             "[[prompts]]\nname = \"p\"\npath = \"" + prompts + "\"\n");
  const std::string gui = stored(dir + "/gui.db", "sae-train");
  EXPECT_NE(gui.find("training_curve"), std::string::npos) << gui;
  EXPECT_NE(gui.find("final_metrics"), std::string::npos) << gui;
}

TEST(RunFronts, SaeFeaturesStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-sae-features");
  const std::string prompts = repeat_prompts(dir);
  // An SAE to describe: trained once here on the same model.
  auto t = run_mechscope({"sae", "train", "--model", random_model(), "--threads", "1", "--db", dir + "/train.db",
                          "--prompts", prompts, "--hook", "blocks.0.hook_resid_post", "--arch", "standard",
                          "--d-sae", "24", "--steps", "8", "--batch-size", "16", "--seed", "2", "--out", dir + "/sae"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  three_ways(dir, random_model(), "sae-features",
             {"--prompts", prompts, "--sae", dir + "/sae", "--top-k", "3", "--context", "2", "--n-bins", "8"},
             "prompts = [\"p\"]\nsae = \"" + dir + "/sae\"\ntop_k = 3\ncontext = 2\nn_bins = 8\n",
             "prompts=" + prompts + " sae=" + dir + "/sae top_k=3 context=2 n_bins=8",
             "[[prompts]]\nname = \"p\"\npath = \"" + prompts + "\"\n");
}

TEST(RunFronts, SaeHeadsStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-sae-heads");
  const std::string prompts = repeat_prompts(dir);
  const std::string& model = random_model();
  nlohmann::json mc = nlohmann::json::parse(ms::test::read_file(model + "/config.json"));
  const int64_t n_heads = mc["n_head"].get<int64_t>(), d_in = mc["n_embd"].get<int64_t>();  // d_head x n_heads = d_model
  const std::string sae = dir + "/sae";
  std::filesystem::create_directories(sae);
  at::manual_seed(5);
  nlohmann::json cfg{{"architecture", "standard"}, {"d_in", d_in}, {"d_sae", 24}, {"dtype", "float32"},
                     {"apply_b_dec_to_input", true}, {"normalize_activations", "none"},
                     {"metadata", {{"hook_name", "blocks.1.attn.hook_z"}}}};
  ms::test::write_file(sae + "/cfg.json", cfg.dump());
  ASSERT_TRUE(ms::write_safetensors(sae + "/sae_weights.safetensors",
                                    {{"W_enc", at::randn({d_in, 24}) * 0.4}, {"W_dec", at::randn({24, d_in}) * 0.3},
                                     {"b_enc", at::randn({24}) * 0.1}, {"b_dec", at::randn({d_in}) * 0.1}})
                  .ok());
  ASSERT_GT(n_heads, 1);
  three_ways(dir, model, "sae-heads", {"--sae", sae, "--prompts", prompts, "--dominance", "0.4"},
             "prompts = [\"p\"]\nsae = \"" + sae + "\"\ndominance = 0.4\n",
             "prompts=" + prompts + " sae=" + sae + " dominance=0.4", "[[prompts]]\nname = \"p\"\npath = \"" + prompts + "\"\n");
  const std::string gui = stored(dir + "/gui.db", "sae-heads");
  EXPECT_NE(gui.find("score sae_dominated_features"), std::string::npos) << gui;
  EXPECT_NE(gui.find("feature_head_fraction"), std::string::npos) << gui;
}

TEST(RunFronts, DiscreteSaeCircuitsStoreTheSameRunFromTheCliABatchJobAndTheWorkbench) {
  std::string dir = ms::test::temp_dir("fronts-sae-circuit");
  ASSERT_EQ(run_mechscope({"zoo", "construct", "copy", "--out", dir + "/copy"}).exit_code, 0);
  three_ways(dir, dir + "/copy", "sae-circuit",
             {"--task", "induction", "--n", "12", "--seq-len", "6", "--vocab-range", "2:64", "--epochs", "100", "--d-sae", "32"},
             "task = \"induction\"\nn = 12\nseq_len = 6\nvocab_range = \"2:64\"\nepochs = 100\nd_sae = 32\n",
             "task=induction n=12 seq_len=6 vocab_range=2:64 epochs=100 d_sae=32");
}

}  // namespace

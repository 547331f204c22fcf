// Sparse autoencoders: encode / decode against the float64 reference's fixtures (every
// architecture and normalisation, SAELens folders and a Gemma Scope params.npz), bad files, and the
// splice into a tiny model (error term, hook names, single-feature ablation, hook_z, metrics).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>
#include <fstream>

#include "core/features/sae_load.h"
#include "core/features/sae_metrics.h"
#include "core/features/sae_splice.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace fs = std::filesystem;
using namespace ms;

namespace {

const fs::path kFixtures = fs::path(test::fixtures_dir()) / "sae";

at::Tensor npy(const fs::path& p) {
  auto r = read_npy(p.string());
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : at::Tensor();
}

// max |a - b| / max(|b|, 1e-12), printed with the name.
double rel_diff(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  EXPECT_EQ(ad.sizes(), bd.sizes()) << what;
  if (ad.sizes() != bd.sizes()) return 1e9;
  const double diff = (ad - bd).abs().max().item<double>();
  const double scale = std::max(bd.abs().max().item<double>(), 1e-12);
  std::printf("  %-40s max diff %.3g (scale %.3g, rel %.3g)\n", what.c_str(), diff, scale, diff / scale);
  return diff / scale;
}

std::shared_ptr<Sae> load_ok(const std::string& path, const SaeLoadOptions& o = {}) {
  auto r = load_sae(path, o);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : nullptr;
}

std::string load_error(const std::string& path, const SaeLoadOptions& o = {}) {
  auto r = load_sae(path, o);
  EXPECT_FALSE(r.ok()) << path << " loaded";
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput) << r.error().message;
  return r.error().message;
}

// A copy of a fixture folder to edit.
std::string copy_case(const std::string& name, const std::string& tag) {
  std::string dst = test::temp_dir(tag);
  for (const auto& e : fs::directory_iterator(kFixtures / name)) fs::copy(e.path(), fs::path(dst) / e.path().filename());
  return dst;
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = test::read_file(path);
  size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << path;
  s.replace(at, from.size(), to);
  test::write_file(path, s);
}

}  // namespace

TEST(SaeFixtures, EveryCaseMatchesTheReference) {
  c10::InferenceMode guard;
  int n = 0;
  for (const auto& e : fs::directory_iterator(kFixtures)) {
    if (!e.is_directory() || !fs::exists(e.path() / "x.npy")) continue;  // circuit_tracer_set: below
    const std::string name = e.path().filename().string();
    std::printf("%s\n", name.c_str());
    std::shared_ptr<Sae> s = load_ok(e.path().string());
    ASSERT_TRUE(s) << name;
    at::Tensor x = npy(e.path() / "x.npy");
    SaePass p = s->run(s->to_input(x));
    EXPECT_LE(rel_diff(p.acts_post, npy(e.path() / "acts.npy"), name + " acts"), 1e-4);
    at::Tensor out = sae_is_transcoder(s->cfg.arch) ? p.out : s->from_output(p.out, x);
    EXPECT_LE(rel_diff(out, npy(e.path() / "recons.npy"), name + " recons"), 1e-4);
    ++n;
  }
  EXPECT_EQ(n, 15);
}

// circuit-tracer's per-layer transcoder folder: layers 0..3 are relu, jumprelu, relu + W_skip,
// jumprelu + W_skip; the folder with --layer and the layer file itself load the same transcoder.
TEST(TranscoderSet, EveryLayerMatchesTheReference) {
  c10::InferenceMode guard;
  const fs::path dir = kFixtures / "circuit_tracer_set";
  const SaeArch want[] = {SaeArch::kTranscoder, SaeArch::kJumpReluTranscoder, SaeArch::kSkipTranscoder,
                          SaeArch::kJumpReluTranscoder};
  for (int layer = 0; layer < 4; ++layer) {
    SaeLoadOptions o;
    o.layer = layer;
    std::shared_ptr<Sae> s = load_ok(dir.string(), o);
    ASSERT_TRUE(s) << layer;
    const std::string L = std::to_string(layer);
    EXPECT_EQ(s->cfg.arch, want[layer]);
    EXPECT_EQ(s->cfg.format, "circuit-tracer");
    EXPECT_EQ(s->cfg.hook_name, "blocks." + L + ".ln2.hook_normalized");  // mlp.hook_in
    EXPECT_EQ(s->cfg.hook_name_out, "blocks." + L + ".hook_mlp_out");     // mlp.hook_out
    EXPECT_EQ(s->cfg.d_in, 16);
    EXPECT_EQ(s->cfg.d_sae, 32);
    EXPECT_EQ(s->w.W_skip.defined(), layer >= 2);
    at::Tensor x = npy(dir / ("x_" + L + ".npy"));
    SaePass p = s->run(s->to_input(x));
    // 1e-4 relative: float32 arithmetic against the float64 reference on O(1) values, d_in 16.
    EXPECT_LE(rel_diff(p.acts_post, npy(dir / ("acts_" + L + ".npy")), "layer " + L + " acts"), 1e-4);
    EXPECT_LE(rel_diff(p.out, npy(dir / ("recons_" + L + ".npy")), "layer " + L + " recons"), 1e-4);

    std::shared_ptr<Sae> f = load_ok((dir / ("layer_" + L + ".safetensors")).string());
    ASSERT_TRUE(f);
    EXPECT_EQ(f->cfg.hook_name, s->cfg.hook_name);
    EXPECT_TRUE(at::equal(f->w.W_enc, s->w.W_enc));
  }
}

TEST(TranscoderSet, ConfigAndBadFiles) {
  const fs::path dir = kFixtures / "circuit_tracer_set";
  // No layer given for the folder: the error lists the layers it holds.
  EXPECT_NE(load_error(dir.string()).find("holds layers 0, 1, 2, 3"), std::string::npos);
  SaeLoadOptions o;
  o.layer = 7;
  EXPECT_NE(load_error(dir.string(), o).find("layer_7.safetensors: no such file"), std::string::npos);
  o.layer = 2;
  EXPECT_NE(load_error((dir / "layer_1.safetensors").string(), o).find("the file is layer 1"), std::string::npos);

  // Without config.yaml: circuit-tracer's usual hooks (the MLP's input and output).
  std::string bare = copy_case("circuit_tracer_set", "tcset_bare");
  fs::remove(fs::path(bare) / "config.yaml");
  auto s = load_ok((fs::path(bare) / "layer_3.safetensors").string());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cfg.hook_name, "blocks.3.ln2.hook_normalized");
  EXPECT_EQ(s->cfg.hook_name_out, "blocks.3.hook_mlp_out");

  // Hooks written relative to the block, or in full.
  std::string rel = copy_case("circuit_tracer_set", "tcset_rel");
  replace_in_file(rel + "/config.yaml", "\"mlp.hook_in\"", "hook_resid_mid");
  replace_in_file(rel + "/config.yaml", "mlp.hook_out", "blocks.1.hook_mlp_out");
  o.layer = 1;
  s = load_ok(rel, o);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cfg.hook_name, "blocks.1.hook_resid_mid");
  EXPECT_EQ(s->cfg.hook_name_out, "blocks.1.hook_mlp_out");

  auto bad_yaml = [&](const std::string& from, const std::string& to, const std::string& expect) {
    std::string d = copy_case("circuit_tracer_set", "tcset_bad");
    replace_in_file(d + "/config.yaml", from, to);
    SaeLoadOptions lo;
    lo.layer = 0;
    std::string e = load_error(d, lo);
    EXPECT_NE(e.find(expect), std::string::npos) << e;
    EXPECT_NE(e.find("config.yaml"), std::string::npos) << e;
  };
  bad_yaml("model_kind: transcoder_set", "model_kind: cross_layer_transcoder", "cross-layer transcoders are not");
  bad_yaml("scan: tiny-transcoders", "scan:\n  nested: 1", "nested mappings are not supported");
  bad_yaml("scan: tiny-transcoders", "scan: [a, b]", "does not understand");
  bad_yaml("scan: tiny-transcoders", "lazy: true", "key 'lazy' is not understood");
  bad_yaml("model_kind: transcoder_set", "activation: topk", "topk transcoders are not");

  // A tensor of the wrong shape, a missing one, a negative JumpReLU threshold.
  auto bad_layer = [&](std::vector<std::pair<std::string, at::Tensor>> t, const std::string& expect) {
    std::string d = copy_case("circuit_tracer_set", "tcset_badw");
    const std::string file = d + "/layer_0.safetensors";
    ASSERT_TRUE(write_safetensors(file, t).ok());
    std::string e = load_error(file);
    EXPECT_NE(e.find(expect), std::string::npos) << e;
    EXPECT_NE(e.find("layer_0.safetensors"), std::string::npos) << e;
  };
  auto f = [](std::vector<int64_t> shape) { return at::ones(shape, at::kFloat); };
  bad_layer({{"W_enc", f({32, 16})}, {"W_dec", f({32, 15})}, {"b_enc", f({32})}, {"b_dec", f({16})}},
            "tensor 'W_dec' has shape [32, 15]");
  bad_layer({{"W_enc", f({32, 16})}, {"W_dec", f({32, 16})}, {"b_dec", f({16})}}, "tensor 'b_enc' is missing");
  bad_layer({{"W_enc", f({32, 16})}, {"W_dec", f({32, 16})}, {"b_enc", f({32})}, {"b_dec", f({16})},
             {"activation_function.threshold", -f({32})}},
            "negative entries");
}

TEST(SaeLoad, ConfigFields) {
  auto s = load_ok((kFixtures / "standard").string());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->cfg.arch, SaeArch::kStandard);
  EXPECT_EQ(s->cfg.hook_name, "blocks.0.hook_resid_pre");  // metadata.hook_name
  EXPECT_EQ(s->cfg.d_in, 16);
  EXPECT_EQ(s->cfg.d_sae, 32);
  EXPECT_TRUE(s->cfg.apply_b_dec_to_input);
  EXPECT_FALSE(s->w.log_sparsity.defined());

  auto legacy = load_ok((kFixtures / "topk_legacy_cfg").string());
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->cfg.arch, SaeArch::kTopK);  // activation_fn_str topk, no architecture
  EXPECT_EQ(legacy->cfg.k, 3);                  // activation_fn_kwargs.k
  EXPECT_EQ(legacy->cfg.hook_name, "blocks.0.hook_resid_pre");  // hook_point
  EXPECT_EQ(legacy->cfg.normalize_activations, "none");         // false

  auto topk = load_ok((kFixtures / "topk").string());
  ASSERT_TRUE(topk);
  EXPECT_TRUE(topk->w.log_sparsity.defined());

  auto ea = load_ok((kFixtures / "standard_expected_average").string());
  ASSERT_TRUE(ea);
  EXPECT_DOUBLE_EQ(ea->cfg.folded_norm_scaling_factor, 0.37);
  EXPECT_EQ(ea->cfg.runtime_norm, SaeRuntimeNorm::kNone);

  auto z = load_ok((kFixtures / "hook_z").string());
  ASSERT_TRUE(z);
  EXPECT_TRUE(z->cfg.reshape_hook_z);

  auto tc = load_ok((kFixtures / "skip_transcoder").string());
  ASSERT_TRUE(tc);
  EXPECT_EQ(tc->cfg.d_out, 24);
  EXPECT_EQ(tc->cfg.hook_name_out, "blocks.0.hook_mlp_out");
  EXPECT_FALSE(tc->cfg.apply_b_dec_to_input);

  SaeLoadOptions o;
  o.hook_name = "blocks.0.hook_resid_post";
  auto npz = load_ok((kFixtures / "gemma_scope_npz" / "params.npz").string(), o);
  ASSERT_TRUE(npz);
  EXPECT_EQ(npz->cfg.arch, SaeArch::kJumpRelu);
  EXPECT_FALSE(npz->cfg.apply_b_dec_to_input);
  EXPECT_EQ(npz->cfg.hook_name, "blocks.0.hook_resid_post");
  EXPECT_EQ(npz->cfg.format, "gemma-scope-npz");
}

TEST(SaeLoad, BadFilesNameTheFileAndTheProblem) {
  {
    std::string d = copy_case("standard", "sae_arch");
    replace_in_file(d + "/cfg.json", "\"standard\"", "\"matryoshka_wibble\"");
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unknown SAE architecture 'matryoshka_wibble'"), std::string::npos) << msg;
  }
  {
    std::string d = copy_case("standard", "sae_din");
    replace_in_file(d + "/cfg.json", "\"d_in\": 16", "\"d_in\": 17");
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("sae_weights.safetensors: tensor 'W_enc' has shape [16, 32]"), std::string::npos) << msg;
  }
  {
    std::string d = copy_case("standard", "sae_trunc");
    std::string bytes = test::read_file(d + "/sae_weights.safetensors");
    test::write_file(d + "/sae_weights.safetensors", bytes.substr(0, bytes.size() - 100));
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("sae_weights.safetensors"), std::string::npos) << msg;
  }
  {
    std::string d = copy_case("gated", "sae_missing");
    replace_in_file(d + "/cfg.json", "\"gated\"", "\"jumprelu\"");
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("sae_weights.safetensors: tensor 'b_enc' is missing (a jumprelu SAE needs it)"), std::string::npos)
        << msg;
  }
  {
    std::string d = copy_case("standard_expected_average", "sae_scaler");
    fs::remove(d + "/activation_scaler.json");
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("expected_average_only_in"), std::string::npos) << msg;
    SaeLoadOptions o;
    o.norm_scaling_factor = 0.37;
    EXPECT_TRUE(load_ok(d, o));
  }
  {
    std::string d = test::temp_dir("sae_npz");
    test::write_file(d + "/params.npz", "PK\x03\x04 this is not a zip archive at all");
    std::string msg = load_error(d);
    EXPECT_NE(msg.find("params.npz"), std::string::npos) << msg;
    std::string good = test::read_file((kFixtures / "gemma_scope_npz" / "params.npz").string());
    test::write_file(d + "/params.npz", good.substr(0, good.size() / 2));
    msg = load_error(d);
    EXPECT_NE(msg.find("params.npz"), std::string::npos) << msg;
  }
  {
    std::string d = test::temp_dir("sae_pickle");
    test::write_file(d + "/sae.pt", "not read");
    std::string msg = load_error(d + "/sae.pt");
    EXPECT_NE(msg.find("pickle"), std::string::npos) << msg;
  }
}

namespace {

// An SAE on blocks.L.hook_resid_pre of the tiny models (d_model 32), random weights.
std::shared_ptr<Sae> random_sae(int64_t d_in, int64_t d_sae, const std::string& hook, uint64_t seed,
                                SaeArch arch = SaeArch::kStandard) {
  at::manual_seed(seed);
  auto s = std::make_shared<Sae>();
  s->cfg.arch = arch;
  s->cfg.d_in = s->cfg.d_out = d_in;
  s->cfg.d_sae = d_sae;
  s->cfg.hook_name = hook;
  s->cfg.source = "test-sae";
  s->w.W_enc = at::randn({d_in, d_sae}) * 0.3;
  s->w.W_dec = at::randn({d_sae, d_in}) * 0.3;
  s->w.b_enc = at::randn({d_sae}) * 0.1;
  s->w.b_dec = at::randn({d_in}) * 0.1;
  return s;
}

// relu(x) - relu(-x) = x: a 2 d_in-feature SAE that reconstructs every activation exactly.
std::shared_ptr<Sae> identity_sae(int64_t d_in, const std::string& hook) {
  auto s = random_sae(d_in, 2 * d_in, hook, 1);
  at::Tensor eye = at::eye(d_in);
  s->w.W_enc = at::cat({eye, -eye}, 1);
  s->w.W_dec = at::cat({eye, -eye}, 0);
  s->w.b_enc = at::zeros({2 * d_in});
  s->w.b_dec = at::zeros({d_in});
  return s;
}

at::Tensor logits_with(const Model& m, const at::Tensor& tokens, HookRegistry* reg) {
  ForwardOptions fo;
  fo.hooks = reg;
  return m.forward(tokens, fo);
}

}  // namespace

TEST(SaeSplice, ErrorTermKeepsTheLogitsAndHookNamesAreCacheable) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2");
  at::Tensor tokens = m->tokens_tensor({1, 5, 9, 2, 7, 3});
  at::Tensor clean = m->forward(tokens);
  auto s = random_sae(32, 64, "blocks.1.hook_resid_pre", 7);
  ASSERT_TRUE(check_sae_fits(*s, *m).ok());

  HookRegistry reg;
  SaeSplice splice(reg, s);
  const double scale = clean.abs().max().item<double>();
  EXPECT_LE((logits_with(*m, tokens, &reg) - clean).abs().max().item<double>(), 1e-5 * scale);

  ActivationCache cache;
  reg.add_forward("blocks.1.hook_resid_pre.*", cache_hook(cache));
  at::Tensor cached_run = logits_with(*m, tokens, &reg);
  EXPECT_LE((cached_run - clean).abs().max().item<double>(), 1e-5 * scale);
  for (const std::string& name : splice.hook_names()) EXPECT_TRUE(cache.contains(name)) << name;
  EXPECT_EQ(splice.hook_names()[2], "blocks.1.hook_resid_pre.hook_sae_acts_post");
  EXPECT_EQ(cache.at("blocks.1.hook_resid_pre.hook_sae_acts_post").sizes(), (std::vector<int64_t>{1, 6, 64}));
  EXPECT_EQ(cache.at("blocks.1.hook_resid_pre.hook_sae_recons").sizes(), (std::vector<int64_t>{1, 6, 32}));
  // hook_sae_error + hook_sae_recons = the activation.
  ActivationCache point;
  HookRegistry plain;
  plain.add_forward("blocks.1.hook_resid_pre", cache_hook(point));
  m->forward(tokens, ForwardOptions{&plain});
  at::Tensor sum = cache.at("blocks.1.hook_resid_pre.hook_sae_recons") + cache.at("blocks.1.hook_resid_pre.hook_sae_error");
  EXPECT_LE((sum - point.at("blocks.1.hook_resid_pre")).abs().max().item<double>(), 1e-5);

  HookRegistry no_err;
  SaeSplice spliced(no_err, s, SpliceOptions{false});
  EXPECT_GT((logits_with(*m, tokens, &no_err) - clean).abs().max().item<double>(), 1e-3 * scale);
}

TEST(SaeSplice, AblatingOneFeatureMovesTheOutputByItsDecoderRow) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("llama");
  at::Tensor tokens = m->tokens_tensor({4, 8, 15, 16, 23});
  auto s = random_sae(32, 48, "blocks.1.hook_resid_pre", 11);
  const std::string base = "blocks.1.hook_resid_pre";

  ActivationCache before, after;
  {
    HookRegistry reg;
    SaeSplice splice(reg, s);
    reg.add_forward(base + ".hook_sae_*", cache_hook(before));
    logits_with(*m, tokens, &reg);
  }
  at::Tensor acts = before.at(base + ".hook_sae_acts_post")[0];  // (T, d_sae)
  at::Tensor fired = (acts > 0).sum(0);
  const int64_t f = fired.argmax().item<int64_t>();  // a feature that fires somewhere
  ASSERT_GT(fired[f].item<int64_t>(), 0);
  {
    HookRegistry reg;
    SaeSplice splice(reg, s);
    reg.add_forward(base + ".hook_sae_acts_post", [f](const at::Tensor& a, const HookContext&) {
      at::Tensor r = a.clone();
      r.select(-1, f).zero_();
      return r;
    });
    reg.add_forward(base + ".hook_sae_*", cache_hook(after));
    logits_with(*m, tokens, &reg);
  }
  at::Tensor expected = -acts.select(-1, f).unsqueeze(1) * s->w.W_dec[f].unsqueeze(0);  // (T, d_in)
  for (const char* h : {".hook_sae_recons", ".hook_sae_output"}) {
    at::Tensor delta = after.at(base + h)[0] - before.at(base + h)[0];
    EXPECT_LE(rel_diff(delta, expected, std::string("ablated feature, ") + h), 1e-5);
  }
}

TEST(SaeSplice, HookZAndHeadIndex) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2");
  at::Tensor tokens = m->tokens_tensor({3, 1, 4, 1, 5});
  at::Tensor clean = m->forward(tokens);
  const double scale = clean.abs().max().item<double>();
  auto z = random_sae(32, 40, "blocks.0.attn.hook_z", 3);  // 4 heads x d_head 8
  z->cfg.reshape_hook_z = true;
  ASSERT_TRUE(check_sae_fits(*z, *m).ok());
  auto head = random_sae(8, 16, "blocks.0.attn.hook_z", 4);
  head->cfg.hook_head_index = 2;
  ASSERT_TRUE(check_sae_fits(*head, *m).ok());
  for (auto& s : {z, head}) {
    HookRegistry keep;
    SaeSplice a(keep, s);
    ActivationCache cache;
    keep.add_forward("*hook_sae_output", cache_hook(cache));
    EXPECT_LE((logits_with(*m, tokens, &keep) - clean).abs().max().item<double>(), 1e-5 * scale);
    EXPECT_TRUE(cache.contains("blocks.0.attn.hook_z.hook_sae_output"));
    HookRegistry drop;
    SaeSplice b(drop, s, SpliceOptions{false});
    EXPECT_GT((logits_with(*m, tokens, &drop) - clean).abs().max().item<double>(), 1e-4 * scale);
  }
  EXPECT_EQ(head->to_input(at::zeros({1, 5, 4, 8})).sizes(), (std::vector<int64_t>{1, 5, 8}));
}

TEST(SaeSplice, FitsChecksNameTheHookAndWidths) {
  auto m = test::tiny_model("gpt2");
  auto wide = random_sae(48, 64, "blocks.1.hook_resid_pre", 1);
  Status st = check_sae_fits(*wide, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kBadInput);
  EXPECT_NE(st.error().message.find("test-sae: d_in 48 does not match blocks.1.hook_resid_pre"), std::string::npos)
      << st.error().message;
  auto nowhere = random_sae(32, 64, "blocks.9.hook_resid_pre", 1);
  st = check_sae_fits(*nowhere, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'blocks.9.hook_resid_pre' does not exist"), std::string::npos) << st.error().message;
}

TEST(SaeMetricsTest, ExactReconstructionRecoversEverything) {
  auto m = test::tiny_model("gpt2");
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10}};
  auto id = identity_sae(32, "blocks.1.hook_resid_pre");
  auto r = sae_metrics(*m, id, prompts);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::printf("identity SAE: EV %.6f, CE clean %.5f spliced %.5f zero %.5f, recovered %.6f, L0 %.2f\n",
              r->explained_variance, r->ce_clean, r->ce_spliced, r->ce_zero_ablated, r->ce_loss_recovered, r->l0);
  EXPECT_EQ(r->n_tokens, 10);
  EXPECT_EQ(r->n_predictions, 8);
  EXPECT_NEAR(r->explained_variance, 1.0, 1e-6);
  EXPECT_NEAR(r->ce_spliced, r->ce_clean, 1e-5);
  EXPECT_NEAR(r->ce_loss_recovered, 1.0, 1e-4);
  EXPECT_LE(r->l0, 32.0);
  EXPECT_NE(r->ce_zero_ablated, r->ce_clean);  // a random model: zeroing may even help

  auto rnd = random_sae(32, 64, "blocks.1.hook_resid_pre", 5);
  auto rr = sae_metrics(*m, rnd, prompts);
  ASSERT_TRUE(rr.ok()) << rr.error().message;
  EXPECT_LT(rr->explained_variance, 0.9);
  EXPECT_GT(rr->l0, 0.0);
}

TEST(SaeSplice, TranscoderFromItsInputToItsOutputPoint) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2");
  at::Tensor tokens = m->tokens_tensor({2, 7, 1, 8, 2, 8});
  at::Tensor clean = m->forward(tokens);
  const double scale = clean.abs().max().item<double>();
  auto t = random_sae(32, 48, "blocks.0.ln2.hook_normalized", 13, SaeArch::kSkipTranscoder);
  t->cfg.hook_name_out = "blocks.0.hook_mlp_out";
  t->cfg.apply_b_dec_to_input = false;
  t->w.W_skip = at::randn({32, 32}) * 0.1;
  ASSERT_TRUE(check_sae_fits(*t, *m).ok()) << check_sae_fits(*t, *m).error().message;

  const std::string base = "blocks.0.ln2.hook_normalized";
  ActivationCache before, after;
  {
    HookRegistry reg;
    SaeSplice splice(reg, t);
    reg.add_forward(base + ".hook_sae_*", cache_hook(before));
    EXPECT_LE((logits_with(*m, tokens, &reg) - clean).abs().max().item<double>(), 1e-5 * scale);
  }
  for (const char* h : {".hook_sae_input", ".hook_sae_acts_post", ".hook_sae_recons", ".hook_sae_output"})
    EXPECT_TRUE(before.contains(base + h)) << h;
  at::Tensor acts = before.at(base + ".hook_sae_acts_post")[0];
  const int64_t f = (acts > 0).sum(0).argmax().item<int64_t>();
  {
    HookRegistry reg;
    SaeSplice splice(reg, t);
    reg.add_forward(base + ".hook_sae_acts_post", [f](const at::Tensor& a, const HookContext&) {
      at::Tensor r = a.clone();
      r.select(-1, f).zero_();
      return r;
    });
    reg.add_forward(base + ".hook_sae_output", cache_hook(after));
    logits_with(*m, tokens, &reg);
  }
  at::Tensor expected = -acts.select(-1, f).unsqueeze(1) * t->w.W_dec[f].unsqueeze(0);
  EXPECT_LE(rel_diff(after.at(base + ".hook_sae_output")[0] - before.at(base + ".hook_sae_output")[0], expected,
                     "transcoder, ablated feature"), 1e-5);
  {
    HookRegistry reg;
    SaeSplice splice(reg, t, SpliceOptions{false});
    EXPECT_GT((logits_with(*m, tokens, &reg) - clean).abs().max().item<double>(), 1e-4 * scale);
  }
  auto r = sae_metrics(*m, t, {{1, 2, 3, 4, 5}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->n_tokens, 5);
  EXPECT_NE(r->ce_spliced, r->ce_clean);

  auto backwards = random_sae(32, 48, "blocks.0.hook_mlp_out", 13, SaeArch::kTranscoder);
  backwards->cfg.hook_name_out = "blocks.0.ln2.hook_normalized";
  Status st = check_sae_fits(*backwards, *m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("does not come after its input point"), std::string::npos) << st.error().message;
}

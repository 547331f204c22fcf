// The architecture registry (core/model/arch/): every family's table is well formed, a random
// model of each family survives save -> load bit for bit (every optional tensor switched on
// too), and every tensor name in the tables is used by some file.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/io/gguf.h"
#include "core/io/safetensors.h"
#include "core/model/arch/arch_spec.h"
#include "core/model/model.h"
#include "core/model/model_save.h"
#include "core/zoo/zoo_random.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

using json = nlohmann::json;

// Every name of the table for n layers, in one format (absent names skipped).
std::set<std::string> table_names(const ArchSpec& a, int64_t n_layers, bool gguf) {
  std::set<std::string> out;
  for_each_tensor(a, n_layers, [&](const TensorSpec& t, int64_t layer) {
    const char* n = gguf ? t.gguf.name : t.hf.name;
    if (n) out.insert(tensor_name(n, layer));
  });
  return out;
}

std::map<std::string, at::Tensor> read_safetensors(const std::string& dir) {
  auto ck = SafetensorsCheckpoint::open_dir(dir);
  EXPECT_TRUE(ck.ok()) << dir;
  std::map<std::string, at::Tensor> out;
  for (const std::string& n : (*ck)->names()) out[n] = to_tensor(*(*ck)->find(n), at::kFloat).clone();
  return out;
}

void expect_same_weights(const Model& a, const Model& b, const std::string& what) {
  EXPECT_EQ(a.config().to_json(), b.config().to_json()) << what;
  auto na = a.weights().named(), nb = b.weights().named();
  ASSERT_EQ(na.size(), nb.size()) << what;
  for (size_t i = 0; i < na.size(); ++i) {
    EXPECT_EQ(na[i].first, nb[i].first) << what;
    EXPECT_TRUE(at::equal(na[i].second.contiguous(), nb[i].second.contiguous())) << what << ": " << na[i].first;
  }
}

std::unique_ptr<Model> load_ok(const std::string& dir) {
  Result<std::unique_ptr<Model>> m = Model::load(dir);
  EXPECT_TRUE(m.ok()) << dir << ": " << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(*m) : nullptr;
}

TEST(ArchRegistry, TablesAreWellFormed) {
  const auto& all = arch_registry();
  ASSERT_GE(all.size(), 5u);
  EXPECT_EQ(arch_names(), "gemma2, gemma3_text, gpt2, gpt_neox, llama, mistral, olmo2, phi3, qwen2, qwen3");
  std::set<std::string> types;
  for (const ArchSpec* a : all) {
    SCOPED_TRACE(a->model_type);
    EXPECT_TRUE(types.insert(a->model_type).second) << "model_type given twice";
    EXPECT_EQ(find_arch(a->model_type), a);
    if (!a->gguf_arch.empty()) {
      EXPECT_EQ(find_arch_gguf(a->gguf_arch), a);
    }
    EXPECT_FALSE(a->hf_class.empty());
    // Names: per-layer slots hold {L}, model-wide ones do not; one per-layer block.
    int blocks = 0;
    bool prev_layer = false;
    std::set<std::pair<Slot, Part>> parts;
    for (const TensorSpec& t : a->tensors) {
      ASSERT_NE(t.hf.name, nullptr);
      for (const char* n : {t.hf.name, t.gguf.name}) {
        if (!n) continue;
        EXPECT_EQ(std::string(n).find("{L}") != std::string::npos, is_layer_slot(t.slot)) << n;
      }
      if (is_layer_slot(t.slot) && !prev_layer) ++blocks;
      prev_layer = is_layer_slot(t.slot);
      EXPECT_TRUE(parts.insert({t.slot, t.part}).second) << t.hf.name << " maps onto a part already mapped";
    }
    EXPECT_EQ(blocks, 1);
    // Config keys unique; random overrides name keys of the table.
    std::set<std::string> keys;
    for (const ConfigField& f : a->config) {
      ASSERT_FALSE(f.keys.empty());
      for (const std::string& k : f.keys) EXPECT_TRUE(keys.insert(k).second) << k;
    }
    for (const auto& [k, v] : a->random_overrides.items()) EXPECT_TRUE(keys.count(k)) << k;
    // A family's own GGUF keys set fields of its config table, and only a GGUF family has them.
    for (const GgufField& g : a->gguf_config) {
      EXPECT_FALSE(a->gguf_arch.empty()) << g.key;
      bool in_table = false;
      for (const ConfigField& f : a->config) in_table = in_table || f.field == g.field;
      EXPECT_TRUE(in_table) << g.key;
    }
  }
}

// A random model, saved again: the same file; loaded back: the same weights. Then the same with
// every optional tensor the family's config can express switched on (biases, untied output).
TEST(ArchRegistry, EveryFamilyRoundTripsAndUsesEveryTensorName) {
  for (const ArchSpec* a : arch_registry()) {
    SCOPED_TRACE(a->model_type);
    const std::string tmp = test::temp_dir("arch_" + a->model_type);
    RandomModelSpec spec;
    spec.arch = a->model_type;
    spec.n_layers = 2;
    spec.d_model = 32;
    spec.n_heads = 4;
    spec.n_kv_heads = 2;
    spec.d_vocab = 40;
    spec.n_ctx = 16;
    spec.seed = 5;
    ASSERT_TRUE(write_random_model(spec, tmp + "/random", false).ok());
    auto m = load_ok(tmp + "/random");
    ASSERT_TRUE(m);
    ASSERT_TRUE(save_model_hf(m->config(), m->weights(), tmp + "/saved").ok());
    auto random_file = read_safetensors(tmp + "/random"), saved_file = read_safetensors(tmp + "/saved");
    ASSERT_EQ(random_file.size(), saved_file.size());
    for (const auto& [name, t] : random_file) {
      ASSERT_TRUE(saved_file.count(name)) << name;
      EXPECT_TRUE(at::equal(t, saved_file[name])) << name;
    }
    auto back = load_ok(tmp + "/saved");
    ASSERT_TRUE(back);
    expect_same_weights(*m, *back, "random");

    // Every optional tensor on: the config fields that switch them, in this family's names.
    json j = json::parse(test::read_file(tmp + "/random/config.json"));
    for (const ConfigField& f : a->config) {
      if (f.field == Field::kAttnBias || f.field == Field::kMlpBias) j[f.keys[0]] = true;
      if (f.field == Field::kTieEmbeddings) j[f.keys[0]] = false;
    }
    Result<ModelConfig> cfg = parse_hf_config_text(j.dump(), "maximal config");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    auto full = Model::from_weights(*cfg, random_weights(*cfg, 9, 0.3));
    ASSERT_TRUE(full.ok());
    ASSERT_TRUE(save_model_hf((*full)->config(), (*full)->weights(), tmp + "/full").ok());
    auto full_back = load_ok(tmp + "/full");
    ASSERT_TRUE(full_back);
    expect_same_weights(**full, *full_back, "all optional tensors");

    std::set<std::string> used;
    for (const auto& kv : random_file) used.insert(kv.first);
    for (const auto& kv : read_safetensors(tmp + "/full")) used.insert(kv.first);
    EXPECT_EQ(used, table_names(*a, spec.n_layers, false));
  }
}

// GGUF names: the real stories260K file (llama) holds exactly the tensors the table lists for
// its config, and loading it through the table names them all.
TEST(ArchRegistry, GgufNamesMatchARealFile) {
  MS_REQUIRE_REFERENCE();
  const std::string path = test::reference_dir() + "/stories260K-gguf/stories260K.gguf";
  auto g = GgufFile::open(path);
  ASSERT_TRUE(g.ok()) << g.error().message;
  Result<ModelConfig> cfg = config_from_gguf(**g);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  const ArchSpec* a = find_arch_gguf((*g)->get_string("general.architecture"));
  ASSERT_NE(a, nullptr);
  std::set<std::string> expected, in_file;
  for_each_tensor(*a, cfg->n_layers, [&](const TensorSpec& t, int64_t layer) {
    if (tensor_present(t.when, *cfg)) expected.insert(tensor_name(t.gguf.name, layer));
  });
  for (const std::string& n : (*g)->names()) in_file.insert(n);
  EXPECT_EQ(expected, in_file);
  // Every GGUF name of the table is one of them (no name the file could not check).
  EXPECT_EQ(table_names(*a, cfg->n_layers, true), in_file);
}

TEST(ArchRegistry, UnknownFamiliesAreNamed) {
  Result<ModelConfig> c = parse_hf_config_text(R"({"model_type": "bert"})", "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("unknown model_type 'bert' (supported: " + arch_names() + ")"),
            std::string::npos) << c.error().message;
  RandomModelSpec spec;
  spec.arch = "bert";
  Status st = write_random_model(spec, test::temp_dir("arch_bert") + "/m", false);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("unknown architecture 'bert'"), std::string::npos);
}

}  // namespace
}  // namespace ms

// Hostile structure that byte-level fuzzing does not reach (libFuzzer keeps inputs small): deep
// nesting, integers that overflow or are floats, size products past 64 bits, small files that
// expand into huge work, duplicate tensor names. Each is generated here and must give a clear
// error naming the limit (exit 3 from the CLI), never a crash. Also: `tokenize --text ""` and
// `zoo random` configs that the loader must accept.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/analysis/circuits/circuit_task.h"
#include "core/base/json_input.h"
#include "core/io/gguf.h"
#include "core/io/prompts.h"
#include "core/io/safetensors.h"
#include "core/model/model_config.h"
#include "core/model/model.h"
#include "core/tokenizer/tokenizer.h"
#include "core/zoo/zoo_random.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace ms;
using ms::test::run_mechscope;
using ms::test::temp_dir;
using ms::test::write_file;

namespace {

const std::string kDefaultModel = ms::test::source_dir() + "/resources/models/default";

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A copy of the default model whose config.json is `config`.
std::string model_with_config(const std::string& tag, const std::string& config) {
  const std::string dir = temp_dir(tag);
  fs::copy_file(kDefaultModel + "/model.safetensors", dir + "/model.safetensors");
  write_file(dir + "/config.json", config);
  return dir;
}

std::string default_config_with(const std::string& key, const std::string& raw_value) {
  std::string cfg = ms::test::read_file(kDefaultModel + "/config.json");
  const size_t brace = cfg.rfind('}');
  return cfg.substr(0, brace) + ", \"" + key + "\": " + raw_value + "\n}\n";
}

void expect_exit3(const ms::test::ProcessResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

}  // namespace

// Before the depth limit, a config.json with a field nested 200,000 levels deep crashed `info` (a
// stack overflow in the recursive dump of the value for the error message; copies recurse too).
TEST(HostileInputs, DeeplyNestedConfigIsRefusedWithTheLimit) {
  for (const char* key : {"n_embd", "unused_key"})
    for (int depth : {65, 1000, 200000}) {
      const std::string dir = model_with_config("nested", default_config_with(key, nested(depth)));
      expect_exit3(run_mechscope({"info", "--model", dir}), "nested deeper than 64 levels");
    }
  // A value nested within the limit is fine where it is ignored.
  const std::string ok = model_with_config("nested-ok", default_config_with("extra", nested(60)));
  EXPECT_EQ(run_mechscope({"info", "--model", ok}).exit_code, 0);
  // Every other JSON reader of input files goes through the same limit.
  const std::string tdir = temp_dir("nested-tok");
  write_file(tdir + "/tokenizer.json", "{\"model\": " + nested(100000) + "}");
  auto tok = load_tokenizer_json(tdir + "/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.error().code, ErrorCode::kBadInput);
  EXPECT_NE(tok.error().message.find("nested deeper than 64"), std::string::npos) << tok.error().message;
  write_file(tdir + "/p.jsonl", "{\"text\": \"a\", \"x\": " + nested(100000) + "}\n");
  auto prompts = read_prompts(tdir + "/p.jsonl");
  ASSERT_FALSE(prompts.ok());
  EXPECT_NE(prompts.error().message.find("nested deeper than 64"), std::string::npos);
}

TEST(HostileInputs, IntegersAreNeverTruncatedOrWrapped) {
  // 4294967297 = 2^32 + 1 would become 1 in 32 bits.
  expect_exit3(run_mechscope({"info", "--model", model_with_config("id", default_config_with("bos_token_id", "4294967297"))}),
               "bos_token_id");
  expect_exit3(run_mechscope({"info", "--model", model_with_config("layers", default_config_with("n_layer", "4294967300"))}),
               "'n_layer' must be an integer from");
  expect_exit3(run_mechscope({"info", "--model", model_with_config("float", default_config_with("n_layer", "4.0"))}),
               "'n_layer' must be an integer");
  expect_exit3(run_mechscope({"info", "--model", model_with_config("huge", default_config_with("n_head", "18446744073709551615"))}),
               "'n_head' must be an integer");
  // 1e999 does not fit a double: bad input (exit 3), not an internal error.
  expect_exit3(run_mechscope({"info", "--model", model_with_config("inf", default_config_with("layer_norm_epsilon", "1e999"))}),
               "out of range");
  // Token ids in prompt and task files.
  const std::string dir = temp_dir("ids");
  write_file(dir + "/p.jsonl", R"({"text": "a", "choices": ["x", "y"], "answer": 4294967297})" "\n");
  auto p = read_prompts(dir + "/p.jsonl");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("not an index"), std::string::npos) << p.error().message;
  write_file(dir + "/t.jsonl", R"({"clean": [1, 4294967297], "corrupted": [1, 2], "answer": 3, "distractor": 4})" "\n");
  TaskOptions o;
  o.name = "custom";
  o.file = dir + "/t.jsonl";
  auto t = make_task(o, nullptr, 100);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
  EXPECT_NE(t.error().message.find("4294967297 is not a token id"), std::string::npos) << t.error().message;
}

TEST(HostileInputs, SizeProductsThatOverflowAreRefused) {
  // heads x head dim past the limit (and, unchecked, past what any product may hold).
  const std::string llama = R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4096,
      "head_dim": 4096, "intermediate_size": 64, "vocab_size": 64})";
  auto c = parse_hf_config_text(llama, "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("number of heads x head dimension 16777216 is implausible (the limit is 1048576)"),
            std::string::npos) << c.error().message;
  // A safetensors shape whose element count overflows 64 bits.
  const std::string dir = temp_dir("shape");
  std::string header = R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 4]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_file(dir + "/model.safetensors", bytes + header + std::string(4, '\0'));
  auto f = SafetensorsFile::open(dir + "/model.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("more than 2^63"), std::string::npos) << f.error().message;
}

// A GGUF metadata array is bounded before anything is reserved for it (each element costs a
// GgufValue in memory, far more than its byte in the file).
TEST(HostileInputs, GgufArrayLengthIsBounded) {
  auto le = [](uint64_t v, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
  };
  const std::string bytes = "GGUF" + le(3, 4) + le(0, 8) + le(1, 8) + le(1, 8) + "a" + le(9, 4) + le(0, 4) +
                            le((uint64_t{1} << 24) + 1, 8) + std::string(64, '\0');
  const std::string dir = temp_dir("gguf-array");
  write_file(dir + "/m.gguf", bytes);
  auto g = GgufFile::open(dir + "/m.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ErrorCode::kBadInput);
  EXPECT_NE(g.error().message.find("16777217 array elements, more than the limit of 16777216"), std::string::npos)
      << g.error().message;
}

TEST(HostileInputs, DuplicateTensorNamesAreRefused) {
  const std::string dir = temp_dir("dup");
  std::string header = R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_file(dir + "/model.safetensors", bytes + header + std::string(8, '\0'));
  auto f = SafetensorsFile::open(dir + "/model.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::kBadInput);
  EXPECT_NE(f.error().message.find("the key 'w' appears twice"), std::string::npos) << f.error().message;
}

TEST(HostileInputs, SmallFilesThatExpandIntoHugeWorkAreRefused) {
  const std::string dir = temp_dir("expand");
  // One vocabulary id of 2^24 in a 3-entry vocabulary would size a table of 2^24 strings.
  write_file(dir + "/vocab.json", R"({"a": 0, "b": 1, "c": 16777216})");
  write_file(dir + "/merges.txt", "a b\n");
  auto vm = load_vocab_merges(dir + "/vocab.json", dir + "/merges.txt");
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.error().message.find("min(2^24, 2 x entries + 1024)"), std::string::npos) << vm.error().message;
  // Thousands of chained normalizers.
  nlohmann::json norms = nlohmann::json::array();
  for (int i = 0; i < 5000; ++i) norms.push_back({{"type", "Lowercase"}});
  nlohmann::json tj = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", nlohmann::json::array()}}},
                       {"normalizer", {{"type", "Sequence"}, {"normalizers", norms}}},
                       {"pre_tokenizer", {{"type", "ByteLevel"}}}};
  write_file(dir + "/tokenizer.json", tj.dump());
  auto tok = load_tokenizer_json(dir + "/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.error().message.find("5000 chained steps, more than the limit of 64"), std::string::npos)
      << tok.error().message;
  // Rows padded to the longest: 5000 pairs and one of 10,000 tokens = 5e7 cells.
  std::string csv = "clean,corrupted,answer,distractor\n";
  std::string longrow = "[";
  for (int i = 0; i < 10000; ++i) longrow += (i ? "," : "") + std::string("1");
  longrow += "]";
  csv += "\"" + longrow + "\",\"" + longrow + "\",[2],[3]\n";
  for (int i = 0; i < 5000; ++i) csv += "\"[1]\",\"[2]\",[2],[3]\n";
  write_file(dir + "/task.csv", csv);
  TaskOptions o;
  o.name = "custom";
  o.file = dir + "/task.csv";
  auto t = make_task(o, nullptr, 100);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("exceed the limit of 16777216 token cells"), std::string::npos) << t.error().message;
  // A job grid of 200,000 items: refused from the counts, before anything is expanded.
  fs::create_directories(dir + "/job");
  fs::copy(kDefaultModel, dir + "/job/model");
  write_file(dir + "/job/p.txt", "hello\n");
  std::string eps, tokens;
  for (int i = 0; i < 200; ++i) {
    eps += (i ? ", " : "") + std::to_string(0.001 * (i + 1));
    tokens += (i ? ", " : "") + std::to_string(i + 1);
  }
  write_file(dir + "/job/job.toml", "[[model]]\nname = \"m\"\npath = \"model\"\n[[prompts]]\nname = \"p\"\npath = \"p.txt\"\n"
                                    "[[analysis]]\nkind = \"sinks\"\nepsilon = [" + eps + "]\nmax_tokens = [" + tokens + "]\n"
                                    "hidden_threshold = [\"abs:0.1\", \"abs:0.2\", \"abs:0.3\", \"abs:0.4\", \"abs:0.5\"]\n");
  auto r = run_mechscope({"batch", dir + "/job/job.toml", "--dry-run"});
  expect_exit3(r, "more than 20000 work items (the limit");
}

TEST(HostileInputs, TokenizeAcceptsAnEmptyText) {
  auto r = run_mechscope({"tokenize", "--model", kDefaultModel, "--text", "", "--json", "--no-special"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["ids"].empty()) << r.out;
  r = run_mechscope({"tokenize", "--model", kDefaultModel, "--text", "", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // With special tokens: at most BOS alone (whatever this tokenizer adds to any text).
  const auto ids = nlohmann::json::parse(r.out)["ids"].get<std::vector<int32_t>>();
  auto hi = run_mechscope({"tokenize", "--model", kDefaultModel, "--text", "hi", "--json"});
  auto hi_plain = run_mechscope({"tokenize", "--model", kDefaultModel, "--text", "hi", "--json", "--no-special"});
  const size_t n_special = nlohmann::json::parse(hi.out)["ids"].size() - nlohmann::json::parse(hi_plain.out)["ids"].size();
  EXPECT_EQ(ids.size(), n_special) << r.out;
  r = run_mechscope({"tokenize", "--model", kDefaultModel, "--text", ""});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// `zoo random` refuses (usage error) every size the loader would refuse, and writes nothing then;
// every model it does write loads. In process over the size options (the CLI once at the end).
TEST(HostileInputs, ZooRandomNeverWritesAConfigTheLoaderRefuses) {
  struct Size {
    int64_t d_model, n_heads, n_kv_heads;
  };
  const std::vector<Size> sizes = {{8, 4, 0}, {12, 2, 0}, {24, 4, 0}, {6, 6, 0}, {16, 4, 2},
                                   {16, 4, 3}, {20, 2, 1}, {48, 8, 4}, {40, 4, 0}};
  int written = 0, refused = 0;
  for (const char* arch : {"gpt2", "gpt_neox", "llama", "mistral", "qwen2"})
    for (const Size& s : sizes)
      for (int64_t d_mlp : {0, 7}) {
        RandomModelSpec spec;
        spec.arch = arch;
        spec.n_layers = 1;
        spec.d_model = s.d_model;
        spec.n_heads = s.n_heads;
        spec.n_kv_heads = s.n_kv_heads;
        spec.d_mlp = d_mlp;
        spec.d_vocab = 32;
        spec.n_ctx = 16;
        const std::string out = temp_dir("zoo") + "/m";
        const std::string what = std::string(arch) + " d_model " + std::to_string(s.d_model) + " heads " +
                                 std::to_string(s.n_heads) + "/" + std::to_string(s.n_kv_heads) + " d_mlp " +
                                 std::to_string(d_mlp);
        Status st = write_random_model(spec, out, false);
        if (!st) {
          EXPECT_EQ(st.error().code, ErrorCode::kUsage) << what << ": " << st.error().message;
          EXPECT_FALSE(fs::exists(out + "/config.json")) << what;
          ++refused;
          continue;
        }
        ++written;
        auto m = Model::load(out);
        EXPECT_TRUE(m.ok()) << what << ": the loader refuses what zoo random wrote: " << m.error().message;
      }
  EXPECT_GT(written, 40);
  EXPECT_GT(refused, 0);  // odd rotary head dims, key/value heads that do not divide
  // The command: a refused size is a usage error (exit 2) naming the loader's reason.
  auto r = run_mechscope({"zoo", "random", "--arch", "llama", "--d-model", "6", "--n-heads", "2", "--out",
                          temp_dir("zoo-cli") + "/m"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("rotary dimension 3 must be even"), std::string::npos) << r.err;
}

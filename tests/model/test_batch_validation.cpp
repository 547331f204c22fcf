// Bad job files: every validation error of `mechscope batch` exits 3 before anything runs, with
// the job file, line and column of the offending key or value and what is wrong.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/batch_support.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

struct Fixture {
  std::string dir;
  Fixture() {
    dir = test::temp_dir("batch-validation");
    test::write_test_job(dir);  // builds the models
    std::filesystem::create_directories(dir + "/noweights");
    std::filesystem::copy_file(dir + "/sink/config.json", dir + "/noweights/config.json");
    std::filesystem::create_directories(dir + "/nocfg");
    // A model far bigger than any machine: a GPT-2 config with 200 layers of width 65536.
    std::filesystem::create_directories(dir + "/huge");
    test::write_file(dir + "/huge/config.json",
                     R"({"model_type": "gpt2", "n_embd": 65536, "n_layer": 200, "n_head": 64, "vocab_size": 64,
                         "n_positions": 256, "n_inner": 262144})");
    test::write_file(dir + "/huge/model.safetensors", "");
  }
};

const std::string kHead =
    "[[model]]\nname = \"sink\"\npath = \"sink\"\n"          // lines 1-3
    "[[prompts]]\nname = \"p\"\npath = \"PROMPTS\"\n";       // lines 4-6

// Writes the job (PROMPTS replaced), runs a dry run, expects exit 3 and file:line in the message.
// top goes before the tables (top-level keys), body after them.
void expect_error(const Fixture& f, const std::string& body, int line, const std::string& what,
                  const std::string& top = "") {
  std::string text = top + kHead + body;
  const std::string prompts = test::source_dir() + "/resources/prompts/sink-check.jsonl";
  text.replace(text.find("PROMPTS"), 7, prompts);
  std::string job = f.dir + "/bad.toml";
  test::write_file(job, text);
  auto r = test::run_mechscope({"batch", job, "--db", f.dir + "/never.db", "--dry-run"});
  EXPECT_EQ(r.exit_code, 3) << body << "\n" << r.err;
  std::string where = job + ":" + std::to_string(line) + ":";
  EXPECT_NE(r.err.find(where), std::string::npos) << "expected " << where << " in: " << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << "expected '" << what << "' in: " << r.err;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/never.db"));
}

Fixture& fixture() {
  static Fixture f;
  return f;
}

TEST(BatchValidation, GoodJobPasses) {
  auto r = test::run_mechscope({"batch", fixture().dir + "/job.toml", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(BatchValidation, TomlSyntaxError) {
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\nepsilon = 0.3\n", 8, "TOML syntax error");
}

TEST(BatchValidation, UnknownKeys) {
  expect_error(fixture(), "colour = \"red\"\n", 7, "unknown key 'colour'");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nepsilonn = 0.3\n", 9, "unknown key 'epsilonn' in [[analysis]] sinks");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n[[model]]\nname = \"x\"\npath = \"sink\"\nsize = 3\n", 12,
               "unknown key 'size' in [[model]]");
  expect_error(fixture(), "[[analysis]]\nkind = \"heads-of-state\"\n", 8, "unknown analysis kind 'heads-of-state'");
  // retrieval takes no prompt sets
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [40]\nprompts = [\"p\"]\n", 10, "unknown key 'prompts'");
}

TEST(BatchValidation, WrongTypes) {
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nepsilon = \"high\"\n", 9, "'epsilon' in [[analysis]] sinks must be a number");
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [40, \"long\"]\n", 9, "must be a list of integers");
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [40]\ndepths = [2, 3]\n", 10, "takes one value, not a list");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n", 1, "'threads' must be an integer", "threads = \"many\"\n");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n", 2, "must be written as [[report]] tables", "db = \"x.db\"\nreport = 3\n");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n", 1, "'db' in the job must be a string", "db = 7\n");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nmodels = \"sink\"\n", 9, "must be an array of names");
}

TEST(BatchValidation, MissingFiles) {
  expect_error(fixture(), "[[model]]\nname = \"gone\"\npath = \"no/such/folder\"\n", 9, "does not exist");
  expect_error(fixture(), "[[model]]\nname = \"w\"\npath = \"noweights\"\n", 9, "has no model.safetensors");
  expect_error(fixture(), "[[model]]\nname = \"c\"\npath = \"nocfg\"\n", 9, "has no config.json");
  expect_error(fixture(), "[[prompts]]\nname = \"q\"\npath = \"nothing.jsonl\"\n", 9, "does not exist");
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [40]\nhaystack = \"hay.txt\"\n", 10, "hay.txt does not exist");
  auto r = test::run_mechscope({"batch", fixture().dir + "/no-job.toml"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("no-job.toml: job file does not exist"), std::string::npos) << r.err;
}

TEST(BatchValidation, BadValuesAndReferences) {
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nepsilon = [0.3, 1.5]\n", 9, "epsilon must be in (0, 1)");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nhidden_threshold = \"half\"\n", 9, "expected abs:X or rel:X");
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [[40], [256]]\n", 9, "lengths: 256 must be in [8, 256) for this model");
  expect_error(fixture(), "[[analysis]]\nkind = \"retrieval\"\nlengths = [4]\n", 9, "lengths must be in [8, 16777216], not 4");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nmodels = [\"gpt5\"]\n", 9, "no [[model]] defines");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\nprompts = [\"nope\"]\n", 9, "no [[prompts]] defines");
  expect_error(fixture(), "[[model]]\nname = \"sink\"\npath = \"copy\"\n", 7, "model name 'sink' is used twice");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n[[analysis]]\nkind = \"sinks\"\nname = \"sinks\"\n", 9,
               "analysis name 'sinks' is used twice");
  expect_error(fixture(), "[[analysis]]\nkind = \"sinks\"\n[[report]]\nformat = \"pdf\"\nout = \"r.pdf\"\n", 10,
               "report format 'pdf'");
}

// The patch and circuit adapters: bad tasks, methods, values and types, each at its line.
TEST(BatchValidation, PatchAndCircuitParameters) {
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\ntask = \"iot\"\n", 9,
               "task 'iot': expected ioi, induction, greater-than or custom");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\ntask = [\"induction\", \"ioi-2\"]\n", 9, "task 'ioi-2'");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\ntask = \"custom\"\n", 9, "task custom needs task_file");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\ntask = \"custom\"\ntask_file = \"pairs.csv\"\n", 10,
               "pairs.csv does not exist");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\ntask = \"induction\"\nwhat = [\"z\", \"zz\"]\n", 10,
               "what 'zz': expected resid_pre");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\ntask = \"induction\"\nmethod = \"eapp\"\n", 10,
               "method 'eapp': expected eap, eap-ig, acdc or path");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\nmethod = \"acdc\"\ntop_n = 5\n", 10,
               "acdc selects its own circuit with tau");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\ntop_n = 5\nthreshold = 0.1\n", 10,
               "give top_n or threshold, not both");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\nloss = \"l2\"\n", 9, "loss 'l2': expected kl or logit-diff");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\nmethod = \"path\"\nreceivers = \"9.9\"\n", 10,
               "receivers: '9.9' is not logits");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\ntask = \"induction\"\nvocab_range = \"2-60\"\n", 10,
               "vocab_range '2-60': expected LO:HI");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\ntask = \"induction\"\nvocab_range = \"2:900\"\n", 10,
               "outside the vocabulary of 64");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\nseq_len = 1\n", 9, "seq_len must be at least 2");
  // wrong types
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\ntop_n = \"ten\"\n", 9,
               "'top_n' in [[analysis]] circuit must be an integer");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\nmethod = 3\n", 9, "'method' in [[analysis]] circuit must be a string");
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\nper_position = 1\n", 9,
               "'per_position' in [[analysis]] patch must be a boolean");
  expect_error(fixture(), "[[analysis]]\nkind = \"circuit\"\nevaluate = [true, false]\n", 9, "takes one value, not a list");
  // patch and circuit make their own prompts
  expect_error(fixture(), "[[analysis]]\nkind = \"patch\"\nprompts = [\"p\"]\n", 9, "unknown key 'prompts'");
}

TEST(BatchValidation, MemoryEstimateAboveTheMachine) {
  expect_error(fixture(), "[[model]]\nname = \"huge\"\npath = \"huge\"\n[[analysis]]\nkind = \"sinks\"\nmodels = [\"huge\"]\n", 10,
               "of memory, more than this machine has");
}

TEST(BatchValidation, UsageErrors) {
  auto r = test::run_mechscope({"batch", fixture().dir + "/job.toml", "--shard", "2/2", "--dry-run"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  auto s = test::run_mechscope({"batch", fixture().dir + "/job.toml", "--shard", "x", "--dry-run"});
  EXPECT_EQ(s.exit_code, 2) << s.err;
}

}  // namespace
}  // namespace ms

// The batch `patch` and `circuit` adapters against the commands: on a small random model and the
// induction task, every item of a job stores exactly the inputs, head scores, tensors and circuit
// that `mechscope patch` / `mechscope circuit` store with the same options.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>

#include "storage/database.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::run_mechscope;

// What a run stored, less its parameters and command line: inputs, head scores, tensors (meta,
// dtype, shape and bytes) and circuits (nodes, edges, scores, meta).
std::string stored_content(Database& db, int64_t run) {
  std::string v;
  auto inputs = db.get_inputs(run);
  auto scores = db.get_head_scores(run);
  auto tensors = db.list_tensors(run);
  auto circuits = db.get_circuits(run);
  EXPECT_TRUE(inputs && scores && tensors && circuits);
  if (!inputs || !scores || !tensors || !circuits) return v;
  for (const auto& in : *inputs) {
    v += "input " + std::to_string(in.index) + " " + in.text + " [";
    for (size_t i = 0; i < in.token_ids.size(); ++i) v += std::to_string(in.token_ids[i]) + " " + in.tokens[i] + ",";
    v += "]\n";
  }
  char buf[64];
  for (const auto& hs : *scores) {
    v += "score " + hs.metric + " " + std::to_string(hs.n_layers) + "x" + std::to_string(hs.n_heads) + ":";
    for (double x : hs.values) std::snprintf(buf, sizeof(buf), " %.17g", x), v += buf;
    v += "\n";
  }
  for (const auto& ti : *tensors) {
    auto t = db.get_tensor(run, ti.name);
    EXPECT_TRUE(t) << ti.name;
    if (!t) continue;
    at::Tensor c = t->contiguous();
    v += "tensor " + ti.name + " " + ti.dtype + " " + ti.meta_json + " [";
    for (int64_t d : ti.shape) v += std::to_string(d) + ",";
    v += "] " + std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes())) + "\n";
  }
  for (const auto& ci : *circuits) {
    v += "circuit " + ci.name + " " + ci.meta_json + "\n";
    for (const auto& n : ci.nodes) std::snprintf(buf, sizeof(buf), " %.17g", n.score), v += " node " + n.name + buf;
    for (const auto& e : ci.edges) {
      std::snprintf(buf, sizeof(buf), " %.17g", e.score);
      v += " edge " + std::to_string(e.src) + "-" + std::to_string(e.dst) + buf;
    }
    v += "\n";
  }
  return v;
}

std::unique_ptr<Database> open_db(const std::string& path) {
  OpenOptions oo;
  oo.create = false;
  auto db = Database::open(path, oo);
  EXPECT_TRUE(db) << path;
  return db ? std::move(*db) : nullptr;
}

TEST(BatchCircuit, AdaptersStoreWhatTheCommandsStore) {
  std::string dir = test::temp_dir("batch-circuit");
  auto z = run_mechscope({"zoo", "random", "--out", dir + "/m", "--init-std", "0.2", "--d-vocab", "64"});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  const std::string cli_db = dir + "/cli.db", batch_db = dir + "/batch.db";
  const std::vector<std::string> task = {"--model", dir + "/m", "--task", "induction", "--n", "6", "--seq-len", "5",
                                         "--seed", "3", "--threads", "1", "--db", cli_db, "--json"};
  // (item key, command-line options): the same cells as the job below.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cells = {
      {"patch/m/what=resid_pre", {"patch", "--what", "resid_pre"}},
      {"patch/m/what=z", {"patch", "--what", "z"}},
      {"patch/m/what=k", {"patch", "--what", "k"}},
      {"patch/m/what=pattern", {"patch", "--what", "pattern"}},
      {"circuit/m/method=eap", {"circuit", "--method", "eap", "--top-n", "30", "--evaluate"}},
      {"circuit/m/method=eap-ig", {"circuit", "--method", "eap-ig", "--ig-steps", "2", "--top-n", "30", "--evaluate"}},
      {"circuit/m/method=path", {"circuit", "--method", "path", "--top-n", "30", "--receivers", "1.0:k,logits",
                                 "--evaluate"}},
      {"circuit-2/m", {"circuit", "--method", "acdc", "--tau", "0.05", "--evaluate"}},
      {"circuit-3/m", {"circuit", "--method", "eap", "--threshold", "0.01", "--name", "ind"}},
  };
  std::map<std::string, int64_t> cli_run;
  for (const auto& [key, args] : cells) {
    std::vector<std::string> a = args;
    a.insert(a.end(), task.begin(), task.end());
    auto r = run_mechscope(a);
    ASSERT_EQ(r.exit_code, 0) << key << ": " << r.err;
    cli_run[key] = nlohmann::json::parse(r.out)["run"].get<int64_t>();
  }
  const std::string common = "task = \"induction\"\nn = 6\nseq_len = 5\nseed = 3\n";
  test::write_file(dir + "/job.toml",
                   "threads = 1\n[[model]]\nname = \"m\"\npath = \"m\"\n"
                   "[[analysis]]\nkind = \"patch\"\n" + common + "what = [\"resid_pre\", \"z\", \"k\", \"pattern\"]\n"
                   "[[analysis]]\nkind = \"circuit\"\n" + common +
                   "method = [\"eap\", \"eap-ig\", \"path\"]\ntop_n = 30\nig_steps = 2\nreceivers = \"1.0:k,logits\"\n"
                   "evaluate = true\n"
                   "[[analysis]]\nkind = \"circuit\"\n" + common + "method = \"acdc\"\ntau = 0.05\nevaluate = true\n"
                   "[[analysis]]\nkind = \"circuit\"\n" + common +
                   "threshold = 0.01\ncircuit_name = \"ind\"\n");
  auto b = run_mechscope({"batch", dir + "/job.toml", "--db", batch_db, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;

  auto cdb = open_db(cli_db), bdb = open_db(batch_db);
  ASSERT_TRUE(cdb && bdb);
  auto runs = bdb->list_runs();
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), cells.size());
  std::map<std::string, int64_t> batch_run;
  for (const auto& s : *runs) batch_run[s.run.spec.label] = s.run.id;
  for (const auto& [key, args] : cells) {
    ASSERT_TRUE(batch_run.count(key)) << "no batch item " << key;
    std::string want = stored_content(*cdb, cli_run[key]), got = stored_content(*bdb, batch_run[key]);
    EXPECT_GT(want.size(), 100u) << key;
    EXPECT_TRUE(want == got) << key << ": the batch item stored other results than `mechscope " << args[0] << "`";
    auto info = bdb->get_run(batch_run[key]);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->spec.kind, args[0]);
    nlohmann::json p = nlohmann::json::parse(info->spec.params_json);
    EXPECT_EQ(p["survived"], 6) << info->spec.params_json;
    EXPECT_EQ(p["batch"]["item"], key);
  }
  // What the stores hold, in shape: a layer x position grid, a layer x head score, a circuit.
  auto grid = bdb->get_tensor(batch_run["patch/m/what=resid_pre"], "patch_resid_pre");
  ASSERT_TRUE(grid);
  auto tokens = bdb->get_tensor(batch_run["patch/m/what=resid_pre"], "clean_tokens");
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->size(0), 6);
  EXPECT_EQ(grid->size(0), 2);                 // layers
  EXPECT_EQ(grid->size(1), tokens->size(1));   // positions
  auto z_scores = bdb->get_head_scores(batch_run["patch/m/what=z"], "patch_z");
  ASSERT_TRUE(z_scores);
  EXPECT_EQ(z_scores->n_layers, 2);
  auto circ = bdb->get_circuits(batch_run["circuit-3/m"]);
  ASSERT_TRUE(circ);
  ASSERT_EQ(circ->size(), 1u);
  EXPECT_EQ((*circ)[0].name, "ind");
  auto eap = bdb->get_circuits(batch_run["circuit/m/method=eap"]);
  ASSERT_TRUE(eap && eap->size() == 1u);
  EXPECT_EQ((*eap)[0].name, "induction");
  EXPECT_FALSE((*eap)[0].edges.empty());
}

}  // namespace
}  // namespace ms

// Batch job files (TOML): models, prompt sets, analyses with parameter grids, output database and
// reports; validated before anything runs (every error names file:line:column) and expanded into
// work items with stable keys, a memory/time estimate each, and a stable shard assignment.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model/model_config.h"

namespace ms::app::batch {

// Where something was written in the job file: "job.toml:12:5".
struct Where {
  std::string file;
  int line = 0, column = 0;
  std::string str() const;
};

struct ModelEntry {
  std::string name, path;  // path resolved against the job file's folder
  ModelConfig config;      // read from config.json at validation (weights are not loaded)
  int64_t n_params = 0;    // from the config
  Where where;
};

struct PromptSet {
  std::string name, path;
  int64_t n_prompts = 0;
  int64_t max_tokens_bound = 0;  // an upper bound on any prompt's token count (bytes + 2, or ids)
  Where where;
};

struct ReportEntry {
  std::string format, out;
  Where where;
};

struct AnalysisEntry {
  std::string kind, name;                   // name: unique; defaults to kind (kind-2, ... when repeated)
  std::vector<std::string> models, prompts;  // names; all models / all prompt sets when not given
  nlohmann::json fixed = nlohmann::json::object();  // parameters with one value (defaults filled in)
  std::vector<std::pair<std::string, std::vector<nlohmann::json>>> axes;  // list-valued: the grid
  std::map<std::string, Where> where;       // of each parameter as written
  Where at;
};

struct Job {
  std::string path, dir;  // the job file and its folder
  std::string db;         // output database ("" : the default database)
  int threads = 1;        // CPU threads per process
  std::vector<ModelEntry> models;
  std::vector<PromptSet> prompts;
  std::vector<AnalysisEntry> analyses;
  std::vector<ReportEntry> reports;
};

// One unit of work: (model, prompt set, analysis, grid cell).
struct WorkItem {
  std::string key;         // stable and readable: "<analysis>/<model>[/<prompts>][/k=v,...]"
  std::string resume_key;  // key + "#" + a hash of everything the result depends on
  size_t analysis = 0, model = 0;
  int prompts = -1;        // index into Job::prompts, -1: none
  nlohmann::json params;   // fixed parameters with this cell's values
  int64_t mem_bytes = 0;   // estimated peak memory of the process while running it
  double flops = 0;        // estimated work
};

// Reads and validates the job file; throws InputError (exit 3) naming file:line:column for
// TOML syntax errors, unknown keys, wrong types, missing files, bad values and items whose
// memory estimate exceeds this machine's memory.
Job load_job(const std::string& path);
// The most work items one job may expand to (models x prompt sets x parameter grid, over all
// analyses): a few lines of TOML must not turn into hours of validation and gigabytes of items.
constexpr int64_t kMaxJobItems = 20000;

// All items of the job, sorted by key (keys are unique); throws InputError (naming the limit)
// when the job expands to more than kMaxJobItems.
std::vector<WorkItem> expand_items(const Job& job);
// The items of shard `index` of `count` (0-based): the i-th item in key order goes to shard
// i % count, so shards are disjoint, cover everything, and differ in size by at most one.
std::vector<WorkItem> shard_items(const std::vector<WorkItem>& items, int index, int count);
// Physical memory of this machine (or the cgroup limit when lower), in bytes.
int64_t machine_memory_bytes();
// "1.5 GiB"
std::string format_bytes(double bytes);

}  // namespace ms::app::batch

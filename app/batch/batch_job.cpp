// Reading a batch job file with toml++ and checking it before any work starts: every error names
// file:line:column (toml++ keeps each node's source region), then grid expansion into work items.
#include "app/batch/batch_job.h"

#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "app/batch/batch_analyses.h"
#include "core/io/gguf.h"
#include "core/io/prompts.h"
#include "core/base/result.h"

namespace ms::app::batch {
namespace fs = std::filesystem;

std::string Where::str() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

namespace {

Where where_of(const std::string& file, const toml::source_region& r) {
  return {file, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

[[noreturn]] void fail_at(const Where& w, const std::string& msg) { fail_input(w.str() + ": " + msg); }

const char* toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Checks a table's keys against the known ones (unknown key: error at the key).
void check_keys(const std::string& file, const toml::table& t, const std::vector<std::string>& known,
                const std::string& what) {
  for (auto&& [k, v] : t)
    if (std::find(known.begin(), known.end(), std::string(k.str())) == known.end())
      fail_at(where_of(file, k.source()), "unknown key '" + std::string(k.str()) + "' in " + what +
                                              "; known keys: " + join(known));
}

std::string get_string(const std::string& file, const toml::table& t, const std::string& key, const std::string& what,
                       bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) fail_at(where_of(file, t.source()), what + " needs '" + key + "'");
    return "";
  }
  if (!n->is_string())
    fail_at(where_of(file, n->source()), "'" + key + "' in " + what + " must be a string, not " + toml_type_name(*n));
  std::string s = n->as_string()->get();
  if (s.empty()) fail_at(where_of(file, n->source()), "'" + key + "' in " + what + " is empty");
  return s;
}

std::vector<std::string> get_names(const std::string& file, const toml::table& t, const std::string& key,
                                   const std::string& what) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) fail_at(where_of(file, n->source()), "'" + key + "' in " + what + " must be an array of names, not " + toml_type_name(*n));
  for (const toml::node& e : *a) {
    if (!e.is_string()) fail_at(where_of(file, e.source()), "'" + key + "' in " + what + " must hold names (strings), not " + toml_type_name(e));
    out.push_back(e.as_string()->get());
  }
  return out;
}

// Absolute, so that item keys do not depend on the folder mechscope was started in.
std::string resolve(const Job& job, const std::string& p) {
  fs::path full = fs::path(p).is_absolute() ? fs::path(p) : fs::path(job.dir) / p;
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(full, ec), ec);
  return (ec ? full.lexically_normal() : abs).string();
}

const toml::array* tables_of(const std::string& file, const toml::table& root, const std::string& key) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables())
    fail_at(where_of(file, n->source()), "'" + key + "' must be written as [[" + key + "]] tables");
  return a;
}

void read_model(Job& job, const toml::table& t) {
  const std::string& f = job.path;
  check_keys(f, t, {"name", "path"}, "[[model]]");
  ModelEntry m;
  m.where = where_of(f, t.source());
  m.name = get_string(f, t, "name", "[[model]]", true);
  std::string raw = get_string(f, t, "path", "[[model]]", true);
  Where pw = where_of(f, t.get("path")->source());
  m.path = resolve(job, raw);
  for (const auto& o : job.models)
    if (o.name == m.name) fail_at(m.where, "model name '" + m.name + "' is used twice (also at " + o.where.str() + ")");
  std::error_code ec;
  if (!fs::exists(m.path, ec)) fail_at(pw, "model '" + m.name + "': " + m.path + " does not exist");
  if (fs::is_regular_file(m.path, ec)) {
    Result<std::unique_ptr<GgufFile>> g = GgufFile::open(m.path);
    if (!g) fail_at(pw, "model '" + m.name + "': " + g.error().message);
    Result<ModelConfig> c = config_from_gguf(**g);
    if (!c) fail_at(pw, "model '" + m.name + "': " + c.error().message);
    m.config = *c;
  } else {
    std::string cfg = (fs::path(m.path) / "config.json").string();
    if (!fs::exists(cfg, ec)) fail_at(pw, "model '" + m.name + "': " + m.path + " has no config.json");
    if (!fs::exists(fs::path(m.path) / "model.safetensors", ec) &&
        !fs::exists(fs::path(m.path) / "model.safetensors.index.json", ec))
      fail_at(pw, "model '" + m.name + "': " + m.path + " has no model.safetensors (nor an index of shards)");
    Result<ModelConfig> c = parse_hf_config(cfg);
    if (!c) fail_at(pw, "model '" + m.name + "': " + c.error().message);
    m.config = *c;
  }
  const ModelConfig& c = m.config;
  m.n_params = c.d_vocab * c.d_model * (c.tie_embeddings ? 1 : 2) + (c.pos == PosKind::kLearned ? c.n_ctx * c.d_model : 0) +
               c.n_layers * (c.d_model * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.d_model +
                             (c.gated_mlp ? 3 : 2) * c.d_model * c.d_mlp + 4 * c.d_model);
  job.models.push_back(std::move(m));
}

void read_prompts(Job& job, const toml::table& t) {
  const std::string& f = job.path;
  check_keys(f, t, {"name", "path"}, "[[prompts]]");
  PromptSet p;
  p.where = where_of(f, t.source());
  p.name = get_string(f, t, "name", "[[prompts]]", true);
  std::string raw = get_string(f, t, "path", "[[prompts]]", true);
  Where pw = where_of(f, t.get("path")->source());
  p.path = resolve(job, raw);
  for (const auto& o : job.prompts)
    if (o.name == p.name) fail_at(p.where, "prompt set name '" + p.name + "' is used twice (also at " + o.where.str() + ")");
  std::error_code ec;
  if (!fs::is_regular_file(p.path, ec)) fail_at(pw, "prompt set '" + p.name + "': " + p.path + " does not exist");
  Result<std::vector<PromptRecord>> r = ms::read_prompts(p.path);
  if (!r) fail_at(pw, "prompt set '" + p.name + "': " + r.error().message);
  if (r->empty()) fail_at(pw, "prompt set '" + p.name + "': " + p.path + " holds no prompts");
  p.n_prompts = static_cast<int64_t>(r->size());
  for (const auto& rec : *r)
    p.max_tokens_bound = std::max<int64_t>(p.max_tokens_bound, rec.tokens.empty() ? static_cast<int64_t>(rec.text.size()) + 2
                                                                                  : static_cast<int64_t>(rec.tokens.size()));
  job.prompts.push_back(std::move(p));
}

// One parameter value against its spec: JSON value, or an error at the node.
nlohmann::json param_value(const Job& job, const ParamSpec& ps, const toml::node& n, const std::string& what) {
  const Where w = where_of(job.path, n.source());
  auto wrong = [&]() {
    fail_at(w, "'" + ps.name + "' in " + what + " must be " + param_type_name(ps.type) + (ps.grid ? " (or a list of them)" : "") +
                   ", not " + toml_type_name(n));
  };
  switch (ps.type) {
    case ParamType::kInt:
      if (!n.is_integer()) wrong();
      return n.as_integer()->get();
    case ParamType::kFloat:
      if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
      if (!n.is_floating_point()) wrong();
      return n.as_floating_point()->get();
    case ParamType::kBool:
      if (!n.is_boolean()) wrong();
      return n.as_boolean()->get();
    case ParamType::kString:
      if (!n.is_string()) wrong();
      return n.as_string()->get();
    case ParamType::kChoice:
    case ParamType::kHeads:
    case ParamType::kThreshold: {  // canonical when well formed; the item check names a bad one
      if (!n.is_string()) wrong();
      nlohmann::json v = n.as_string()->get();
      nlohmann::json canon = v;
      return check_param(ps, canon).empty() ? canon : v;
    }
    case ParamType::kIntList: {  // one integer or an array of them; the item check bounds them
      nlohmann::json v = nlohmann::json::array();
      if (n.is_integer()) {
        v.push_back(n.as_integer()->get());
        return v;
      }
      const toml::array* a = n.as_array();
      if (!a) wrong();
      for (const toml::node& e : *a) {
        if (!e.is_integer()) wrong();
        v.push_back(e.as_integer()->get());
      }
      return v;
    }
    case ParamType::kPath: {
      if (!n.is_string()) wrong();
      std::string p = resolve(job, n.as_string()->get());
      std::error_code ec;
      // A file, or a folder (an SAELens SAE is a folder); what it must hold is checked on use.
      if (!fs::is_regular_file(p, ec) && !fs::is_directory(p, ec))
        fail_at(w, "'" + ps.name + "' in " + what + ": file " + p + " does not exist");
      return p;
    }
  }
  wrong();
  return nullptr;
}

void read_analysis(Job& job, const toml::table& t) {
  const std::string& f = job.path;
  AnalysisEntry a;
  a.at = where_of(f, t.source());
  a.kind = get_string(f, t, "kind", "[[analysis]]", true);
  const Analysis* an = find_analysis(a.kind);
  std::vector<std::string> kinds;
  for (const auto& r : registry()) kinds.push_back(r.kind);
  if (!an) fail_at(where_of(f, t.get("kind")->source()), "unknown analysis kind '" + a.kind + "'; known kinds: " + join(kinds));
  const std::string what = "[[analysis]] " + a.kind;
  std::vector<std::string> known = {"kind", "name", "models"};
  if (an->uses_prompts) known.push_back("prompts");
  for (const auto& p : an->params) known.push_back(p.name);
  check_keys(f, t, known, what);
  a.name = get_string(f, t, "name", what, false);
  if (a.name.empty()) {
    int n = 1;
    for (const auto& o : job.analyses) n += o.kind == a.kind;
    a.name = n == 1 ? a.kind : a.kind + "-" + std::to_string(n);
  }
  if (a.name.find_first_of("/|#=,") != std::string::npos)
    fail_at(a.at, "analysis name '" + a.name + "' may not contain / | # = or ,");
  for (const auto& o : job.analyses)
    if (o.name == a.name) fail_at(a.at, "analysis name '" + a.name + "' is used twice (also at " + o.at.str() + "); give each a distinct 'name'");
  a.models = get_names(f, t, "models", what);
  for (const auto& m : a.models)
    if (std::none_of(job.models.begin(), job.models.end(), [&](const ModelEntry& e) { return e.name == m; }))
      fail_at(where_of(f, t.get("models")->source()), "'models' names '" + m + "', which no [[model]] defines");
  if (a.models.empty())
    for (const auto& m : job.models) a.models.push_back(m.name);
  if (an->uses_prompts) {
    a.prompts = get_names(f, t, "prompts", what);
    for (const auto& p : a.prompts)
      if (std::none_of(job.prompts.begin(), job.prompts.end(), [&](const PromptSet& e) { return e.name == p; }))
        fail_at(where_of(f, t.get("prompts")->source()), "'prompts' names '" + p + "', which no [[prompts]] defines");
    if (a.prompts.empty())
      for (const auto& p : job.prompts) a.prompts.push_back(p.name);
    if (a.prompts.empty()) fail_at(a.at, what + " needs prompts, and the job defines no [[prompts]]");
  }
  for (const ParamSpec& ps : an->params) {
    const toml::node* n = t.get(ps.name);
    if (!n) {
      if (ps.def.is_null()) fail_at(a.at, what + " needs '" + ps.name + "' (" + ps.help + ")");
      a.fixed[ps.name] = ps.def;
      continue;
    }
    a.where[ps.name] = where_of(f, n->source());
    const toml::array* arr = n->as_array();
    // A list-valued parameter is a grid axis only as a list of lists ([[256], [512, 1024]]).
    if (arr && ps.type == ParamType::kIntList && (arr->empty() || !arr->get(0)->is_array())) arr = nullptr;
    if (arr) {
      if (!ps.grid) fail_at(a.where[ps.name], "'" + ps.name + "' in " + what + " takes one value, not a list");
      if (arr->empty()) fail_at(a.where[ps.name], "'" + ps.name + "' in " + what + " is an empty list");
      std::vector<nlohmann::json> vals;
      for (const toml::node& e : *arr) vals.push_back(param_value(job, ps, e, what));
      if (vals.size() == 1) a.fixed[ps.name] = vals[0];
      else a.axes.push_back({ps.name, vals});
    } else {
      a.fixed[ps.name] = param_value(job, ps, *n, what);
    }
  }
  if (a.models.empty()) fail_at(a.at, what + ": the job defines no [[model]]");
  job.analyses.push_back(std::move(a));
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string format_bytes_count(double n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", n);
  return buf;
}

// A grid value in an item's label: a list as its elements joined by ':' (labels use ',' and '=').
std::string value_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) return v.dump();
  std::string s;
  for (const nlohmann::json& e : v) s += (s.empty() ? "" : ":") + value_text(e);
  return s;
}

}  // namespace

Job load_job(const std::string& path) {
  Job job;
  job.path = path;
  job.dir = fs::path(path).parent_path().string();
  if (job.dir.empty()) job.dir = ".";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail_input(path + ": job file does not exist");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail_at(where_of(path, e.source()), std::string("TOML syntax error: ") + std::string(e.description()));
  }
  check_keys(path, root, {"db", "threads", "model", "prompts", "analysis", "report"}, "the job");
  job.db = get_string(path, root, "db", "the job", false);  // outputs: relative to the working folder
  if (const toml::node* n = root.get("threads")) {
    if (!n->is_integer() || n->as_integer()->get() < 1 || n->as_integer()->get() > 1024)
      fail_at(where_of(path, n->source()), "'threads' must be an integer from 1 to 1024");
    job.threads = static_cast<int>(n->as_integer()->get());
  }
  if (const toml::array* a = tables_of(path, root, "model"))
    for (const toml::node& n : *a) read_model(job, *n.as_table());
  if (const toml::array* a = tables_of(path, root, "prompts"))
    for (const toml::node& n : *a) read_prompts(job, *n.as_table());
  if (const toml::array* a = tables_of(path, root, "analysis"))
    for (const toml::node& n : *a) read_analysis(job, *n.as_table());
  if (const toml::array* a = tables_of(path, root, "report"))
    for (const toml::node& n : *a) {
      const toml::table& t = *n.as_table();
      check_keys(path, t, {"format", "out"}, "[[report]]");
      ReportEntry r;
      r.where = where_of(path, t.source());
      r.format = get_string(path, t, "format", "[[report]]", true);
      static const std::vector<std::string> kFormats = {"html", "md", "markdown", "csv", "json", "npy"};
      if (std::find(kFormats.begin(), kFormats.end(), r.format) == kFormats.end())
        fail_at(where_of(path, t.get("format")->source()), "report format '" + r.format + "' is not one of " + join(kFormats));
      r.out = get_string(path, t, "out", "[[report]]", true);
      job.reports.push_back(std::move(r));
    }
  if (job.models.empty()) fail_at(where_of(path, root.source()), "the job defines no [[model]]");
  if (job.analyses.empty()) fail_at(where_of(path, root.source()), "the job defines no [[analysis]]");

  // Every cell against its model, and its memory estimate against this machine.
  const int64_t mem = machine_memory_bytes();
  for (const WorkItem& it : expand_items(job)) {
    const AnalysisEntry& a = job.analyses[it.analysis];
    const Analysis* an = find_analysis(a.kind);
    std::string param;
    std::string msg = an->check ? an->check(it.params, job.models[it.model].config, &param) : "";
    if (!msg.empty()) {
      auto w = a.where.find(param);
      fail_at(w != a.where.end() ? w->second : a.at, "item " + it.key + ": " + msg);
    }
    if (it.mem_bytes > mem)
      fail_at(a.at, "item " + it.key + " needs about " + format_bytes(static_cast<double>(it.mem_bytes)) +
                        " of memory, more than this machine has (" + format_bytes(static_cast<double>(mem)) +
                        "); use a smaller model or smaller parameters");
  }
  return job;
}

// The work items a job expands to, counted before anything is expanded (in double: a grid of many
// axes must not overflow the count); a job over kMaxJobItems is refused.
static void check_item_count(const Job& job) {
  double total = 0;
  for (const AnalysisEntry& a : job.analyses) {
    const Analysis* an = find_analysis(a.kind);
    double cells = 1;
    for (const auto& axis : a.axes) cells *= static_cast<double>(axis.second.size());
    double psets = 1;
    if (an && an->uses_prompts) {
      psets = 0;
      for (const auto& pn : a.prompts)
        for (const PromptSet& p : job.prompts) psets += p.name == pn ? 1 : 0;
    }
    const double n = cells * static_cast<double>(a.models.size()) * psets;
    total += n;
    if (total > static_cast<double>(kMaxJobItems))
      fail_at(a.at, "the job expands to more than " + std::to_string(kMaxJobItems) + " work items (the limit; [[analysis]] '" +
                        a.name + "' alone has " + format_bytes_count(n) + "); split it into several jobs or shorten its parameter lists");
  }
}

std::vector<WorkItem> expand_items(const Job& job) {
  check_item_count(job);
  std::vector<WorkItem> items;
  for (size_t ai = 0; ai < job.analyses.size(); ++ai) {
    const AnalysisEntry& a = job.analyses[ai];
    const Analysis* an = find_analysis(a.kind);
    // Cartesian product of the axes, in the order written.
    std::vector<nlohmann::json> cells = {a.fixed};
    std::vector<std::string> labels = {""};
    for (const auto& [name, vals] : a.axes) {
      std::vector<nlohmann::json> next;
      std::vector<std::string> nl;
      for (size_t c = 0; c < cells.size(); ++c)
        for (const auto& v : vals) {
          nlohmann::json p = cells[c];
          p[name] = v;
          next.push_back(p);
          nl.push_back(labels[c] + (labels[c].empty() ? "" : ",") + name + "=" + value_text(v));
        }
      cells = std::move(next);
      labels = std::move(nl);
    }
    for (const std::string& mname : a.models) {
      size_t mi = 0;
      while (job.models[mi].name != mname) ++mi;
      const ModelEntry& m = job.models[mi];
      std::vector<int> psets = {-1};
      if (an->uses_prompts) {
        psets.clear();
        for (const auto& pn : a.prompts)
          for (size_t pi = 0; pi < job.prompts.size(); ++pi)
            if (job.prompts[pi].name == pn) psets.push_back(static_cast<int>(pi));
      }
      for (int pi : psets)
        for (size_t c = 0; c < cells.size(); ++c) {
          WorkItem it;
          it.analysis = ai;
          it.model = mi;
          it.prompts = pi;
          it.params = cells[c];
          it.key = a.name + "/" + m.name + (pi >= 0 ? "/" + job.prompts[static_cast<size_t>(pi)].name : "") +
                   (labels[c].empty() ? "" : "/" + labels[c]);
          nlohmann::json dep = {{"kind", a.kind}, {"params", it.params}, {"model", m.path},
                                {"model_config", m.config.to_json()},
                                {"prompts", pi >= 0 ? job.prompts[static_cast<size_t>(pi)].path : ""}};
          char hex[17];
          std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fnv1a(dep.dump())));
          it.resume_key = it.key + "#" + hex;
          ItemShape s;
          s.config = &m.config;
          s.n_params = m.n_params;
          if (pi >= 0) {
            s.n_prompts = job.prompts[static_cast<size_t>(pi)].n_prompts;
            s.max_tokens = std::min(m.config.n_ctx, job.prompts[static_cast<size_t>(pi)].max_tokens_bound);
          }
          Estimate e = an->estimate ? an->estimate(it.params, s) : Estimate{};
          // + the runtime itself; in double, saturated: a job's sizes must not overflow the estimate
          const double mem = 4.0 * static_cast<double>(m.n_params) + e.activation_bytes + static_cast<double>(int64_t{256} << 20);
          it.mem_bytes = mem < 9e18 ? static_cast<int64_t>(mem) : INT64_MAX;
          it.flops = e.flops;
          items.push_back(std::move(it));
        }
    }
  }
  std::sort(items.begin(), items.end(), [](const WorkItem& x, const WorkItem& y) { return x.key < y.key; });
  return items;
}

std::vector<WorkItem> shard_items(const std::vector<WorkItem>& items, int index, int count) {
  std::vector<WorkItem> out;
  for (size_t i = 0; i < items.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(count)) == index) out.push_back(items[i]);
  return out;
}

int64_t machine_memory_bytes() {
  int64_t mem = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(::sysconf(_SC_PAGE_SIZE));
  std::ifstream cg("/sys/fs/cgroup/memory.max");
  std::string s;
  if (cg >> s && s != "max") {
    try {
      int64_t lim = std::stoll(s);
      if (lim > 0) mem = std::min(mem, lim);
    } catch (const std::exception&) {
    }
  }
  return mem;
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (b >= 1024 && u < 5) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

}  // namespace ms::app::batch

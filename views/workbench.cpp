// Workbench: background model loads and forward passes, adopted by poll() on the UI thread.
#include "views/workbench.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "core/features/sae_load.h"
#include "report/report.h"

namespace ms::views {

Workbench::Workbench(TaskManager& tasks, Settings& settings) : m_tasks(tasks), m_settings(settings) {}
Workbench::~Workbench() = default;

std::string Workbench::default_prompt(const Model& model) {
  // A list said twice: in its second copy the induction heads show (each token attends to the one
  // after its earlier occurrence; the default model's 2.3) and the repeat is predicted well by any
  // model that has them. Words and frame are the default model's own corpus (core/zoo/zoo_text.cpp,
  // repeated_span), so its tokenizer keeps each word whole.
  if (model.tokenizer())
    return "The list was: red cat old book garden bell stone. Again, the list was: red cat old book garden bell stone.";
  // Constructed zoo models have no tokenizer: ids, <bos> first and two <delim> (id 1).
  return "0 5 9 13 1 17 21 25 29 1 33 37 41 45";
}

void Workbench::open_model(const std::string& path) {
  if (path.empty()) {
    show_error("Open model", "no model folder given");
    return;
  }
  m_model_loading = true;
  auto mutex = m_mutex;
  auto inbox = m_inbox;
  m_tasks.start("load " + path, [mutex, inbox, path](TaskContext& ctx) {
    ctx.set_status("loading");
    Result<std::unique_ptr<Model>> m = Model::load(path);
    std::lock_guard<std::mutex> lock(*mutex);
    inbox->model_done = true;
    inbox->model_path = path;
    if (m) inbox->model = std::shared_ptr<const Model>(std::move(m.value()));
    else inbox->model_error = m.error().message;
    ctx.set_status(m ? "loaded" : "failed");
    ctx.set_progress(1.0);
  });
}

void Workbench::run_prompt() {
  if (!m_model) return;
  if (m_forward_running) {
    m_rerun = true;  // one pass at a time; the newest prompt runs when this one ends
    return;
  }
  start_forward();
}

void Workbench::start_forward() {
  m_rerun = false;
  ForwardRequest req;
  try {
    req.ids = prompt_ids(*m_model, prompt);
  } catch (const std::exception& e) {
    m_prompt_error = e.what();
    return;
  }
  if (req.ids.empty()) {
    m_prompt_error = "the prompt has no tokens";
    return;
  }
  m_prompt_error.clear();
  req.contributions = want_contributions;
  if (want_contributions && !corrupted_prompt.empty()) {
    try {
      req.corrupted_ids = prompt_ids(*m_model, corrupted_prompt);
    } catch (const std::exception& e) {
      m_prompt_error = std::string("corrupted prompt: ") + e.what();
      return;
    }
  }
  req.answer = answer;
  req.wrong = wrong;
  req.contrib_pos = contrib_pos;
  req.cache_hook = act_hook;
  req.lens = want_lens;
  req.head_means = want_head_means;
  req.ablate = ablated;
  req.calibrate = calibrated;
  req.sae = sae;
  req.steer_feature = sae ? steer_feature : -1;
  req.steer_value = steer_value;
  req.keep_layer = layer;
  req.keep_head = head;
  m_forward_running = true;
  auto mutex = m_mutex;
  auto inbox = m_inbox;
  std::shared_ptr<const Model> model = m_model;
  m_tasks.start("forward pass (" + std::to_string(req.ids.size()) + " tokens)",
                [mutex, inbox, model, req](TaskContext& ctx) {
                  std::shared_ptr<const ForwardResult> res;
                  std::string err;
                  Result<ForwardResult> r = guard([&] { return compute_forward(*model, req); });
                  if (r) res = std::make_shared<const ForwardResult>(std::move(r.value()));
                  else err = r.error().message;
                  std::lock_guard<std::mutex> lock(*mutex);
                  inbox->forward_done = true;
                  inbox->forward = res;
                  inbox->forward_error = err;
                  ctx.set_progress(1.0);
                });
}

bool Workbench::load_sae(const std::string& path) {
  if (!m_model) {
    show_error("Load SAE", "open a model first");
    return false;
  }
  Result<std::shared_ptr<Sae>> r = ms::load_sae(path);
  if (!r) {
    show_error("Load SAE", r.error().message);
    return false;
  }
  Status fits = check_sae_fits(**r, *m_model);
  if (!fits) {
    show_error("Load SAE", fits.error().message);
    return false;
  }
  sae = std::move(r.value());
  sae_path = path;
  steer_feature = -1;
  steer_value = 0;
  run_prompt();
  return true;
}

bool Workbench::is_open_model(const std::string& path) const {
  if (!m_model || path.empty() || m_model_path.empty()) return false;
  std::error_code e1, e2;
  auto a = std::filesystem::weakly_canonical(path, e1), b = std::filesystem::weakly_canonical(m_model_path, e2);
  return !e1 && !e2 ? a == b : path == m_model_path;
}

void Workbench::select_head(int l, int h) {
  layer = l;
  head = h;
  if (m_forward && (!m_forward->pattern(l, h) || (want_head_means && !m_forward->layer_mean(l)))) run_prompt();
}

void Workbench::open_activation(const std::string& hook) {
  act_hook = hook;
  focus_window = "Activations";
  if (!m_forward || m_forward->act_name != hook) run_prompt();
}

int64_t Workbench::export_activations(const std::string& folder, bool all) {
  if (!m_model) {
    show_error("Export activations", "open a model first");
    return 0;
  }
  if (folder.empty()) {
    show_error("Export activations", "no folder given");
    return 0;
  }
  if (!all && act_hook.empty()) {
    show_error("Export activations", "no hook point chosen: click one in the Model window's hook tree");
    return 0;
  }
  if (m_export_running) {
    show_error("Export activations", "an export is already running: wait for it or cancel it");
    return 0;
  }
  std::vector<int32_t> ids;
  try {
    // The prompt shown (its last pass), else the prompt as typed.
    ids = m_forward ? m_forward->ids : prompt_ids(*m_model, prompt);
  } catch (const std::exception& e) {
    show_error("Export activations", e.what());
    return 0;
  }
  const std::string pattern = all ? std::string("*") : act_hook;
  m_export_running = true;
  m_export_note.clear();
  auto mutex = m_mutex;
  auto inbox = m_inbox;
  std::shared_ptr<const Model> model = m_model;
  m_export_task = m_tasks.start(
      "export " + (all ? std::string("every hook point") : pattern) + " to " + folder,
      [mutex, inbox, model, ids, pattern, folder](TaskContext& ctx) {
        ctx.set_status("forward pass");
        ctx.control().set_listener([&ctx](int64_t done, int64_t total) {
          ctx.set_progress(static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)));
          ctx.set_status(std::to_string(done) + " / " + std::to_string(total) + " hook points written");
        });
        NpyExport out;
        std::string err;
        try {
          out = export_cache_npy(*model, ids, pattern, folder, &ctx.control());
        } catch (const std::exception& e) {
          err = e.what();
        }
        {
          std::lock_guard<std::mutex> lock(*mutex);
          inbox->export_done = true;
          inbox->exported = out;
          inbox->export_folder = folder;
          inbox->export_error = err;
        }
        if (!err.empty()) throw std::runtime_error(err);  // the task row shows the failure too
        if (out.cancelled)
          ctx.set_status("cancelled: " + std::to_string(out.paths.size()) + " of " + std::to_string(out.total) + " written");
      });
  return m_export_task;
}

Database* Workbench::db() {
  if (m_db && m_db_opened == db_path) return m_db.get();
  m_db.reset();
  m_db_opened = db_path;
  Result<std::unique_ptr<Database>> d = Database::open(resolve_db_path(db_path));
  if (!d) {
    show_error("Database", d.error().message);
    return nullptr;
  }
  m_db = std::move(d.value());
  ++m_db_gen;
  return m_db.get();
}

std::string Workbench::export_run(int64_t run_id) {
  Database* d = db();
  if (!d) return "";
  if (run_id <= 0) {
    show_error("Export report", "select a run in the Runs window first");
    return "";
  }
  ReportOptions o;
  o.format = ReportFormat::kHtml;
  o.out = (std::filesystem::path(d->path()).parent_path() / ("run" + std::to_string(run_id) + ".html")).string();
  o.force = true;
  Result<std::vector<std::string>> r = write_report(*d, {run_id}, o);
  if (!r) {
    show_error("Export report", r.error().message);
    return "";
  }
  show_error("Report written", o.out);
  return o.out;
}

void Workbench::show_error(std::string title, std::string message) {
  m_error_title = std::move(title);
  m_error_message = std::move(message);
  m_has_error = true;
}

bool Workbench::take_error(std::string* title, std::string* message) {
  if (!m_has_error) return false;
  *title = m_error_title;
  *message = m_error_message;
  m_has_error = false;
  return true;
}

void Workbench::poll() {
  if (int n = m_runs_stored->load(); n != m_runs_seen) {
    m_runs_seen = n;
    db_changed();
  }
  Inbox in;
  {
    std::lock_guard<std::mutex> lock(*m_mutex);
    in = *m_inbox;
    m_inbox->model_done = m_inbox->forward_done = m_inbox->export_done = false;
    m_inbox->model.reset();
    m_inbox->forward.reset();
    m_inbox->exported = NpyExport();
  }
  if (in.export_done) {
    m_export_running = false;
    m_export = in.exported;
    const size_t n = m_export.paths.size();
    const std::string files = std::to_string(n) + " file" + (n == 1 ? "" : "s");
    if (!in.export_error.empty()) {
      m_export_note = "export failed: " + in.export_error;
      show_error("Export activations", in.export_error);
    } else if (m_export.cancelled && m_export.total == 0) {
      m_export_note = "cancelled before any file was written";
    } else if (m_export.cancelled) {
      m_export_note = "cancelled: " + files + " of " + std::to_string(m_export.total) + " written to " + in.export_folder +
                      " (each whole)";
    } else {
      m_export_note = files + " written to " + in.export_folder + (n == 1 ? ": " + m_export.paths[0] : "");
    }
  }
  if (in.model_done) {
    m_model_loading = false;
    m_model_error = in.model_error;
    if (in.model) {
      // Everything that belonged to the previous model goes with it: its interventions (heads of
      // another model), its forward pass and the selected run. The user's own prompt stays; the
      // previous model's default prompt is replaced by this one's. The first model keeps what the
      // command line set before it opened (gui --ablate, --calibrate, --run).
      const bool switching = m_model != nullptr;
      const bool own_prompt = m_model && !prompt.empty() && prompt != default_prompt(*m_model);
      m_model = in.model;
      m_model_path = in.model_path;
      m_forward.reset();
      m_model_note.clear();
      if (switching) {
        if (!ablated.empty() || !calibrated.empty())
          m_model_note = "another model was opened: the ablated and calibrated heads of the previous one were cleared";
        if (sae) m_model_note += std::string(m_model_note.empty() ? "" : "; ") + "the SAE " + sae_path + " was unloaded (it was for the previous model)";
        ablated.clear();
        calibrated.clear();
        sae.reset();
        sae_path.clear();
        steer_feature = -1;
        steer_value = 0;
        selected_run = 0;
        answer = wrong = -1;  // token ids of the previous vocabulary
        contrib_pos = -1;
      }
      if (layer >= m_model->config().n_layers || head >= m_model->config().n_heads) layer = head = 0;
      m_settings.add_recent(in.model_path);
      m_settings.save();
      if (!next_prompt.empty()) prompt = next_prompt;
      else if (!own_prompt) prompt = default_prompt(*m_model);
      next_prompt.clear();
      run_prompt();
    } else {
      show_error("Could not open the model", in.model_error);
    }
  }
  if (in.forward_done) {
    m_forward_running = false;
    if (in.forward) {
      m_forward = in.forward;
      ++m_forward_gen;
    } else {
      m_prompt_error = in.forward_error;
    }
    if (m_rerun) start_forward();
  }
}

}  // namespace ms::views

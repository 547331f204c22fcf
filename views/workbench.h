// Workbench: the state the windows share (the model, the prompt and its forward pass, the selected
// head, the database) and the background work that updates it. Lives on the UI thread; tasks hand
// their results over under a short lock and poll() adopts them once per frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/model/model.h"
#include "storage/database.h"
#include "views/forward_result.h"
#include "views/heatmap_data.h"
#include "views/settings.h"
#include "views/task_manager.h"

namespace ms::views {

class Workbench {
 public:
  Workbench(TaskManager& tasks, Settings& settings);
  ~Workbench();

  TaskManager& tasks() { return m_tasks; }
  Settings& settings() { return m_settings; }

  // --- model ---
  void open_model(const std::string& path);  // loads in the background; errors go to the popup
  const std::shared_ptr<const Model>& model() const { return m_model; }
  const std::string& model_path() const { return m_model_path; }
  bool model_loading() const { return m_model_loading; }
  const std::string& model_error() const { return m_model_error; }  // the last failed load's message
  // What opening the last model changed that the user had set ("" when nothing).
  const std::string& model_note() const { return m_model_note; }
  // Whether a stored run's model path is the open model's (same file after resolving links).
  bool is_open_model(const std::string& path) const;

  // --- prompt and its forward pass ---
  std::string prompt;
  std::string next_prompt;  // used instead of the default prompt when the next model arrives
  void run_prompt();  // (re)computes the forward pass of `prompt` in the background
  const std::shared_ptr<const ForwardResult>& forward() const { return m_forward; }
  bool forward_pending() const { return m_forward_running || m_rerun; }
  const std::string& prompt_error() const { return m_prompt_error; }
  int64_t forward_generation() const { return m_forward_gen; }
  static std::string default_prompt(const Model& model);
  // The Logit lens window sets this while it is shown; passes then compute the lens too.
  bool want_lens = false;
  // The Text window sets this while it shows an average over heads; passes then keep the layer and
  // all-heads averages too (ForwardResult::layer_means, all_heads_mean).
  bool want_head_means = false;
  // Heads (layer, head) whose output is zeroed in a second pass; the Prompt window shows the
  // predictions with and without them (Head grid: right-click).
  std::vector<std::pair<int, int>> ablated;
  std::vector<std::pair<int, int>> calibrated;  // ACT calibration (beta 0.4) in the same second pass

  // --- interventions (the Contributions window sets want_contributions while shown) ---
  bool want_contributions = false;
  std::string corrupted_prompt;  // "" none; compared with the prompt position by position
  int32_t answer = -1, wrong = -1;  // -1: the top prediction at the position / no wrong token
  int64_t contrib_pos = -1;         // -1: the last position

  // --- activations (the Activations window) ---
  std::string act_hook;  // the hook point the passes cache ("" none)
  void open_activation(const std::string& hook);  // caches it (re-runs the pass) and shows the window
  // Writes the current prompt's activation at act_hook (all = every hook point instead) as .npy
  // into folder, as a background task: its progress is hook points written / total, and its cancel
  // stops between files (each file is written whole or not at all). Returns the task's id; 0 when it
  // could not start (the popup says why: no model, no folder, no hook point, an export running).
  int64_t export_activations(const std::string& folder, bool all);
  int64_t export_task() const { return m_export_task; }  // the running or last export's task (0: none)
  bool export_running() const { return m_export_running; }
  // The last finished export (adopted by poll()): the files written, whether it was cancelled, and
  // the line the Activations window shows ("" before the first).
  const NpyExport& last_export() const { return m_export; }
  const std::string& export_note() const { return m_export_note; }

  // --- features (the Features window) ---
  // Loads an SAE (SAELens folder or params.npz) and checks it fits the open model; errors go to the
  // popup. Passes then report each position's top features; with steer_feature >= 0 the second
  // pass adds steer_value to that feature's activation (the Prompt window shows the predictions).
  bool load_sae(const std::string& path);
  std::shared_ptr<const Sae> sae;
  std::string sae_path;
  int64_t steer_feature = -1;
  double steer_value = 0;

  // --- selection ---
  int layer = 0, head = 0;
  HeatScale scale = HeatScale::kLinear;
  void select_head(int layer, int head);  // re-runs the pass when the pattern was not kept
  // The Text window: the token whose attention is shown when none is hovered (-1: none), and whose
  // pattern: the selected head's, the mean over the layer's heads or over every head.
  enum class TextHeads { kHead, kLayerMean, kAllMean };
  int pinned_token = -1;
  TextHeads text_heads = TextHeads::kHead;
  bool text_received = false;  // shade by attention received from the token (column) instead of paid (row)
  bool text_absolute = false;  // full shade at weight 1 instead of at the row's maximum
  std::string focus_window;               // a window to bring to front next frame
  bool focus_model_path = false;          // Ctrl+O: the Model window's path field takes the keyboard

  // --- database (one connection for the UI thread; tasks open their own) ---
  std::string db_path;
  Database* db();                  // opened lazily; nullptr (and the popup) when it cannot be
  void db_changed() { ++m_db_gen; }  // runs were added: lists refresh
  // Tasks that store runs count them here (any thread); poll() then refreshes the lists.
  std::shared_ptr<std::atomic<int>> runs_stored_counter() { return m_runs_stored; }
  int64_t db_generation() const { return m_db_gen; }
  int64_t selected_run = 0;
  // `gui --compare N`: the Runs window compares the selected run with run N once (then clears it).
  int64_t compare_run = 0;
  // The run's HTML report beside the database (runN.html, replaced); its path, "" on failure
  // (the popup says why).
  std::string export_run(int64_t run_id);

  // --- errors shown in a popup by the shell ---
  void show_error(std::string title, std::string message);
  bool take_error(std::string* title, std::string* message);

  // Once per frame on the UI thread: adopts finished model loads and forward passes.
  void poll();
  // True while a model load or forward pass is under way (headless screenshots wait for it).
  bool busy() const { return m_model_loading || forward_pending() || m_export_running; }

 private:
  void start_forward();

  TaskManager& m_tasks;
  Settings& m_settings;
  std::shared_ptr<const Model> m_model;
  std::string m_model_path;
  bool m_model_loading = false;
  std::string m_model_error, m_model_note;
  std::shared_ptr<const ForwardResult> m_forward;
  bool m_forward_running = false, m_rerun = false;
  int64_t m_forward_gen = 0;
  std::string m_prompt_error;
  int64_t m_export_task = 0;
  bool m_export_running = false;
  NpyExport m_export;
  std::string m_export_note;
  std::unique_ptr<Database> m_db;
  std::string m_db_opened;
  int64_t m_db_gen = 1;
  std::shared_ptr<std::atomic<int>> m_runs_stored = std::make_shared<std::atomic<int>>(0);
  int m_runs_seen = 0;
  std::string m_error_title, m_error_message;
  bool m_has_error = false;

  // Handed over by tasks under m_mutex.
  struct Inbox {
    bool model_done = false;
    std::shared_ptr<const Model> model;
    std::string model_path, model_error;
    bool forward_done = false;
    std::shared_ptr<const ForwardResult> forward;
    std::string forward_error;
    bool export_done = false;
    NpyExport exported;
    std::string export_folder, export_error;
  };
  std::shared_ptr<std::mutex> m_mutex = std::make_shared<std::mutex>();
  std::shared_ptr<Inbox> m_inbox = std::make_shared<Inbox>();
};

}  // namespace ms::views

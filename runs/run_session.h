// RunSession: one stored run's life cycle (begin, progress, cancel, finish, fail) with its
// RunControl, the same for every front end. A live session shows the run as 'running' with its
// progress while it works (the CLI and the workbench); a one-transaction session writes nothing
// until commit() stores the run, its results and every run linked to it (store_linked, child
// sessions) at once (batch items: a killed batch leaves no half item, and --resume finds only
// finished ones). A session dropped before it ends (an exception) marks its live run failed.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "runs/run_control.h"
#include "storage/database.h"

namespace ms {

// Who started the run and how to find it again: stored with it, never part of its results.
struct RunProvenance {
  RunProvenance() = default;
  RunProvenance(std::string command_) : command(std::move(command_)) {}  // NOLINT: {command} reads well

  std::string command;      // the command that reproduces the run
  std::string label, resume_key;  // batch: the item key and its resume key
  nlohmann::json params = nlohmann::json::object();  // merged into the stored parameters (batch: "batch")
};

class RunSession {
 public:
  enum class Mode { kLive, kOneTransaction };
  enum class State { kNew, kRunning, kDone, kCancelled, kFailed };

  RunSession(Database& db, RunControl& control, RunProvenance prov = {}, Mode mode = Mode::kLive);
  // A session for a run that follows from parent's (a masked re-run): the same database, control
  // and mode, the parent's command; one-transaction children are committed with the parent.
  explicit RunSession(RunSession& parent);
  ~RunSession();
  RunSession(const RunSession&) = delete;
  RunSession& operator=(const RunSession&) = delete;
  RunSession(RunSession&&) = delete;

  // Registers the model and begins a run of this kind with these parameters (the provenance's
  // parameters merged in). Throws InputError when the database refuses.
  void begin(const Model& model, const std::string& kind, const nlohmann::json& params);
  // Progress of the work: the control's listeners, and the live run's progress column.
  void progress(int64_t done, int64_t total);
  std::function<void(int64_t, int64_t)> progress_fn() {
    return [this](int64_t d, int64_t t) { progress(d, t); };
  }
  bool cancelled() const { return m_control.interrupted(); }
  const std::atomic<bool>* cancel_flag() const { return m_control.cancel_flag(); }
  // Ends the run: cancelled (stored as such when live; nothing when one-transaction), done with
  // its results, or failed with the message.
  void cancel(const std::string& reason);
  int64_t finish(const RunResults& results);
  void fail(const std::string& message);
  // The work between begin() and the end, run to one of the ends: work returns the results (the
  // run is finished with them), or nullopt when it stopped for a cancel (the run is cancelled with
  // the reason work wrote, "cancelled" unless it wrote one). An exception marks the run failed and
  // goes on. True when the run finished.
  bool conclude(const std::function<std::optional<RunResults>(std::string& cancel_reason)>& work);
  // A finished run linked to this one's model and command (e.g. ACT's calibration run); its id
  // (0 in a one-transaction session until commit).
  int64_t store_linked(const std::string& kind, const nlohmann::json& params, RunResults results,
                       const std::string& relation);
  // What a RunLink's source_run_id names this finished run by: its id (live), or its place in the
  // pending write (one-transaction).
  int64_t link_id() const;
  // One-transaction: writes the finished run and the runs linked to it in one transaction and
  // returns its id (0 when it did not finish: nothing is written). Live: the run's id.
  int64_t commit();

  int64_t run_id() const { return m_run; }
  Mode mode() const { return m_mode; }
  // The provenance of a run this one starts (a masked re-run): the command, without the batch
  // item's key and resume key.
  RunProvenance linked_provenance() const { return RunProvenance(m_prov.command); }
  int64_t model_id() const { return m_model; }
  State state() const { return m_state; }
  const RunSpec& spec() const { return m_spec; }
  RunControl& control() { return m_control; }
  Database& db() { return m_db; }

 private:
  Database& m_db;
  RunControl& m_control;
  RunProvenance m_prov;
  Mode m_mode;
  State m_state = State::kNew;
  RunSpec m_spec;
  int64_t m_run = 0, m_model = 0;
  RunSession* m_root = this;       // who holds the pending write (a child's parent's root)
  std::vector<RunWrite> m_pending;  // one-transaction: the runs commit() writes (root only)
  int64_t m_pending_index = -1;     // this run's place in it
};

}  // namespace ms

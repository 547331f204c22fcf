// TaskManager: background work for the workbench (model loads, forward passes, analyses). Each task
// runs on its own thread with a progress value and a cancel flag; the UI reads a snapshot of all
// tasks under a short lock once per frame and never waits on a task.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runs/run_control.h"

namespace ms::views {

// What a task sees of itself: report progress, read the cancel request. Its RunControl is the
// cancel request (the window's cancel button interrupts it) that a run session works with.
class TaskContext {
 public:
  void set_progress(double p) { m_progress.store(p); }
  void set_status(const std::string& s);
  bool cancelled() const { return m_control.interrupted(); }
  const std::atomic<bool>* cancel_flag() const { return m_control.cancel_flag(); }
  RunControl& control() { return m_control; }

 private:
  friend class TaskManager;
  std::atomic<double> m_progress{0.0};
  RunControl m_control;
  std::atomic<bool> m_done{false};
  std::mutex m_mutex;
  std::string m_status, m_error;
  bool m_failed = false;
};

struct TaskSnapshot {
  int64_t id = 0;
  std::string name, status, error;
  double progress = 0;
  bool running = true, failed = false, cancel_requested = false;
};

class TaskManager {
 public:
  TaskManager() = default;
  ~TaskManager();  // cancels every task and joins its thread
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Starts fn on a new thread. A throw inside fn marks the task failed with the message.
  int64_t start(std::string name, std::function<void(TaskContext&)> fn);
  void cancel(int64_t id);
  void cancel_all();
  // Every task that is running or finished since the last clear_finished(), oldest first.
  std::vector<TaskSnapshot> snapshot();
  bool busy();             // any task still running
  void clear_finished();   // forget finished tasks (joins their threads)
  // Blocks until no task runs or timeout_s passes (headless screenshots, tests); true when idle.
  bool wait_idle(double timeout_s);

 private:
  struct Entry {
    int64_t id;
    std::string name;
    std::shared_ptr<TaskContext> ctx;
    std::thread thread;
  };
  std::mutex m_mutex;
  std::vector<Entry> m_tasks;
  int64_t m_next_id = 1;
};

}  // namespace ms::views

// RunControl: the progress and the cancel request of one piece of long work, as one object that
// travels with it (ImHex's Task: update(progress), interrupt()). Front ends listen to it (the CLI's
// progress bar, batch progress events, the workbench's task row); SIGINT/SIGTERM interrupt it
// through the one process-wide handler (SignalInterrupt).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace ms {

class RunControl {
 public:
  // Called on every update (from the thread doing the work).
  using Listener = std::function<void(int64_t done, int64_t total)>;
  explicit RunControl(Listener listener = {}) : m_listener(std::move(listener)) {}
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  void set_listener(Listener listener) { m_listener = std::move(listener); }
  void update(int64_t done, int64_t total);
  double fraction() const { return m_fraction.load(); }

  void interrupt() { m_cancel.store(true); }
  bool interrupted() const { return m_cancel.load() || (m_follow && m_follow->load()); }
  // Also interrupted when *flag becomes true (read on every update and by interrupted()), for entry
  // points that take an outside cancel flag.
  void follow(const std::atomic<bool>* flag) { m_follow = flag; }
  void reset() { m_cancel.store(false), m_fraction.store(0); }

  // Adapters for core functions that take (progress, const std::atomic<bool>* cancel).
  std::function<void(int64_t, int64_t)> progress_fn() {
    return [this](int64_t done, int64_t total) { update(done, total); };
  }
  const std::atomic<bool>* cancel_flag() const { return &m_cancel; }
  std::atomic<bool>* cancel_flag_mut() { return &m_cancel; }

 private:
  Listener m_listener;
  std::atomic<bool> m_cancel{false};
  const std::atomic<bool>* m_follow = nullptr;
  std::atomic<double> m_fraction{0.0};
};

// While alive, SIGINT and SIGTERM interrupt `control` (the one handler of the process; an inner
// scope takes over from an outer one and gives it back). With second_signal_kills, a second
// signal ends the process at once (for work that stores nothing when interrupted).
class SignalInterrupt {
 public:
  explicit SignalInterrupt(RunControl& control, bool second_signal_kills = false);
  ~SignalInterrupt();
  SignalInterrupt(const SignalInterrupt&) = delete;
  SignalInterrupt& operator=(const SignalInterrupt&) = delete;
  // A signal arrived while this scope was active.
  bool signalled() const;

 private:
  std::atomic<bool>* m_previous = nullptr;
  bool m_previous_kills = false;
  bool m_outermost = false;
};

}  // namespace ms

// RunControl's progress and the process' one SIGINT/SIGTERM handler.
#include "runs/run_control.h"

#include <csignal>

namespace ms {

void RunControl::update(int64_t done, int64_t total) {
  m_fraction.store(total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0);
  if (m_listener) m_listener(done, total);
  if (m_follow && m_follow->load()) interrupt();
}

namespace {

// The control the handler interrupts. Only lock-free atomics are touched in the handler.
std::atomic<std::atomic<bool>*> g_target{nullptr};
std::atomic<bool> g_kill_on_second{false};
std::atomic<bool> g_signalled{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_signal(int sig) {
  if (g_kill_on_second.load() && g_signalled.load()) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signalled.store(true);
  if (std::atomic<bool>* t = g_target.load()) t->store(true);
}

void (*g_old_int)(int) = SIG_DFL;
void (*g_old_term)(int) = SIG_DFL;

}  // namespace

SignalInterrupt::SignalInterrupt(RunControl& control, bool second_signal_kills) {
  m_previous = g_target.exchange(control.cancel_flag_mut());
  m_previous_kills = g_kill_on_second.exchange(second_signal_kills);
  m_outermost = m_previous == nullptr;
  if (m_outermost) {
    g_signalled.store(false);
    g_old_int = std::signal(SIGINT, on_signal);
    g_old_term = std::signal(SIGTERM, on_signal);
  }
}

SignalInterrupt::~SignalInterrupt() {
  g_target.store(m_previous);
  g_kill_on_second.store(m_previous_kills);
  if (m_outermost) {
    std::signal(SIGINT, g_old_int);
    std::signal(SIGTERM, g_old_term);
  }
}

bool SignalInterrupt::signalled() const { return g_signalled.load(); }

}  // namespace ms

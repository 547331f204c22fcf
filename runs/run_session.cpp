// RunSession: begin / progress / cancel / finish / fail of one stored run.
#include "runs/run_session.h"

namespace ms {
namespace {
template <typename T>
T value_or_throw(Result<T> r) {
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}
}  // namespace

RunSession::RunSession(Database& db, RunControl& control, RunProvenance prov, Mode mode)
    : m_db(db), m_control(control), m_prov(std::move(prov)), m_mode(mode) {}

RunSession::RunSession(RunSession& parent)
    : m_db(parent.m_db), m_control(parent.m_control), m_prov(parent.linked_provenance()), m_mode(parent.m_mode),
      m_root(parent.m_root) {}

RunSession::~RunSession() {
  if (m_state == State::kRunning && m_mode == Mode::kLive) (void)m_db.fail_run(m_run, "ended without a result");
}

void RunSession::begin(const Model& model, const std::string& kind, const nlohmann::json& params) {
  m_model = value_or_throw(m_db.register_model(model));
  nlohmann::json p = params;
  if (m_prov.params.is_object()) p.update(m_prov.params);
  m_spec = RunSpec(kind, m_model, p.dump());
  m_spec.command = m_prov.command;
  m_spec.label = m_prov.label;
  m_spec.resume_key = m_prov.resume_key;
  if (m_mode == Mode::kLive) m_run = value_or_throw(m_db.begin_run(m_spec));
  m_state = State::kRunning;
}

void RunSession::progress(int64_t done, int64_t total) {
  m_control.update(done, total);
  if (m_mode == Mode::kLive && m_state == State::kRunning && total > 0)
    (void)m_db.set_progress(m_run, static_cast<double>(done) / static_cast<double>(total));
}

void RunSession::cancel(const std::string& reason) {
  if (m_state != State::kRunning) return;
  if (m_mode == Mode::kLive) (void)m_db.cancel_run(m_run, reason);
  m_state = State::kCancelled;
}

int64_t RunSession::finish(const RunResults& results) {
  if (m_mode == Mode::kLive) {
    Status st = m_db.finish_run(m_run, results);
    if (!st) {
      fail(st.error().message);
      throw InputError(st.error().message, st.error().code);
    }
  } else {
    m_pending_index = static_cast<int64_t>(m_root->m_pending.size());
    m_root->m_pending.push_back({m_spec, results});
  }
  m_state = State::kDone;
  return m_run;
}

int64_t RunSession::link_id() const {
  if (m_state != State::kDone) throw std::logic_error("link_id: the run has not finished");
  return m_mode == Mode::kLive ? m_run : -(m_pending_index + 1);
}

int64_t RunSession::commit() {
  if (m_mode == Mode::kLive || m_root != this) return m_run;
  if (m_state == State::kDone && !m_pending.empty()) {
    std::vector<int64_t> ids = value_or_throw(m_db.store_runs(m_pending));
    m_run = ids[static_cast<size_t>(m_pending_index)];
  }
  m_pending.clear();
  return m_run;
}

void RunSession::fail(const std::string& message) {
  if (m_state != State::kRunning) return;
  if (m_mode == Mode::kLive) (void)m_db.fail_run(m_run, message);
  m_state = State::kFailed;
}

bool RunSession::conclude(const std::function<std::optional<RunResults>(std::string& cancel_reason)>& work) {
  try {
    std::string reason = "cancelled";
    std::optional<RunResults> results = work(reason);
    if (!results || cancelled()) {
      cancel(reason);
      return false;
    }
    finish(*results);
    return true;
  } catch (const std::exception& ex) {
    fail(ex.what());
    throw;
  }
}

int64_t RunSession::store_linked(const std::string& kind, const nlohmann::json& params, RunResults results,
                                 const std::string& relation) {
  RunSpec s(kind, m_model, params.dump());
  s.command = m_prov.command;
  results.links.push_back({0, relation, link_id()});
  if (m_mode == Mode::kLive) return value_or_throw(m_db.store_run(s, results));
  m_root->m_pending.push_back({s, std::move(results)});
  return 0;
}

}  // namespace ms

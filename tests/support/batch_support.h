// Helpers for the batch tests: constructed models and a job over them, the stored rows of a
// database in a comparable form, and running mechscope to be killed at a chosen moment.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ms::test {

// Builds the constructed `sink` and `copy` models under dir (once per dir) and writes a job file
// dir/job.toml over them: sinks on 24 prompts of 200 token ids (2 epsilons x 2 max_tokens)
// and retrieval (2 lengths, mask_top 1) on both models: 12 items. Returns the job path.
std::string write_test_job(const std::string& dir, const std::string& extra = "");

// Every finished run of the database, keyed by resume key (or "run<ID>" without one): kind,
// model hash, parameters, inputs, every head score and every tensor's dtype, shape and bytes; the
// runs linked to a run (retrieval's masked re-runs, a calibration) are part of its row.
// Fails the test (and counts in *duplicates) when a resume key occurs twice.
std::map<std::string, std::string> stored_rows(const std::string& db, int* duplicates = nullptr);

// Starts mechscope with args, SIGKILLs it after delay_ms; returns true when it was still running
// at that moment (false: it had already exited).
bool run_and_kill(const std::vector<std::string>& args, int delay_ms);
// Starts mechscope with args, waits until the database db holds at least min_rows finished runs,
// waits extra_ms more, then SIGKILLs it; returns true when it was still running at that moment.
bool run_and_kill_after_rows(const std::vector<std::string>& args, const std::string& db, size_t min_rows,
                             int extra_ms);
// Starts mechscope with args, sends sig once db holds min_rows finished runs, and returns the
// exit code (128 + signal when the signal ended it; -1 when it finished before min_rows).
int run_and_signal_after_rows(const std::vector<std::string>& args, const std::string& db, size_t min_rows, int sig);
// Finished batch items in db: runs with a resume key (0 when the file does not exist yet).
size_t count_done_runs(const std::string& db);
// Wall time of a run of mechscope in seconds (exit code in *rc).
double timed_run(const std::vector<std::string>& args, int* rc);

}  // namespace ms::test

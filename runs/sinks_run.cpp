// sinks_spec and run_sinks: the attention-sink analysis declared once and run the same way for the
// CLI, batch jobs and the workbench; ACT's calibration (core/analysis/sinks/act_calibration.h) as
// a linked run.
#include "runs/sinks_run.h"

#include <ATen/ATen.h>

#include "core/analysis/sinks/act_calibration.h"
#include "core/analysis/sinks/hidden_threshold.h"
#include "runs/run_inputs.h"

namespace ms {

const AnalysisSpec& sinks_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "sinks";
    s.summary = "attention sinks, hidden sinks and massive activations over a prompt set";
    s.uses_prompts = true;
    ParamDecl eps{"epsilon", ParamType::kFloat, 0.3, true, "a head has a sink at key k when alpha_k > epsilon"};
    eps.lo = 0, eps.hi = 1, eps.lo_open = eps.hi_open = true;
    ParamDecl hidden{"hidden_threshold", ParamType::kThreshold, "abs:0.1", true,
                     "hidden sinks: abs:X (alpha_k > X) or rel:X (X times uniform)"};
    ParamDecl max_tokens{"max_tokens", ParamType::kInt, 0, true, "truncate prompts to this many tokens (0: no limit)"};
    max_tokens.lo = 0;
    // ACT's calibration: a command-line option, stored with the linked calibration run.
    ParamDecl calibrate{"calibrate", ParamType::kBool, false, false,
                        "re-run with the chosen heads' hidden sinks scaled by --beta (ACT)", kOnCli};
    ParamDecl beta{"beta", ParamType::kFloat, 0.4, false, "calibration factor for attention to hidden sinks", kOnCli};
    beta.lo = 0, beta.hi = 1;
    ParamDecl heads{"heads", ParamType::kString, "", false,
                    "heads to calibrate: L.H,... or 'search' (ACT's one-head-at-a-time search)", kOnCli};
    s.params = {eps, hidden, max_tokens, calibrate, beta, heads};
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      const std::string heads = p.value("heads", "");
      if (p.value("calibrate", false) && heads.empty())
        return *param = "heads", "--calibrate needs --heads L.H,... or --heads search";
      if (!heads.empty() && heads != "search") {
        std::vector<HeadRef> hs;
        std::string e = HeadRef::parse_list(heads, &hs, c ? c->n_layers : 0, c ? c->n_heads : 0);
        if (!e.empty()) return *param = "heads", "--heads: " + e;
      }
      return "";
    };
    return s;
  }();
  return spec;
}

RunResults sink_run_results(const SinkReport& rep, const std::vector<std::string>& texts,
                            const std::vector<std::vector<int32_t>>& prompts, const Model& m) {
  RunResults res;
  for (size_t i = 0; i < prompts.size(); ++i) {
    InputRecord in{static_cast<int>(i), i < texts.size() ? texts[i] : std::string(), prompts[i], {}};
    for (int32_t id : prompts[i]) in.tokens.push_back(token_label(m, id));
    res.inputs.push_back(std::move(in));
  }
  res.scores.push_back(head_scores_from_tensor("sink_rate", rep.head_sink_rate));
  res.scores.push_back(head_scores_from_tensor("alpha0", rep.head_alpha0));
  res.scores.push_back(head_scores_from_tensor("sink_mass", rep.head_sink_mass));
  res.scores.push_back(head_scores_from_tensor("hidden_sinks", rep.head_hidden_count.to(at::kDouble)));
  res.tensors.push_back({"sink_rate_curve", rep.sink_rate_curve, R"({"kind":"curve","x":"key position","y":"sink rate %"})"});
  res.tensors.push_back({"first_alpha", rep.first_alpha, R"({"kind":"alpha","axes":["prompt","layer","head","key"]})"});
  return res;
}

namespace {

std::vector<CalibrationPrompt> calibration_prompts(const Model& m, const std::vector<PromptRecord>& records,
                                                   const std::vector<std::vector<int32_t>>& prompts) {
  std::vector<CalibrationPrompt> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    CalibrationPrompt cp;
    cp.ids = prompts[p];
    const PromptRecord& r = records[p];
    if (m.tokenizer()) {
      if (!r.continuation.empty()) cp.continuation = m.tokenizer()->encode(r.continuation, false);
      for (const auto& s : r.choices) cp.choices.push_back(m.tokenizer()->encode(s, false));
      cp.answer = r.answer;
    }
    out.push_back(std::move(cp));
  }
  return out;
}

// ACT's calibration of the run's hidden sinks, stored as a "sinks-calibration" run linked to it.
nlohmann::json calibrate(RunSession& session, const Model& m, const SinkReport& rep, const std::vector<PromptRecord>& records,
                         const std::vector<std::vector<int32_t>>& prompts, const nlohmann::json& p, const RunResults& res) {
  const double beta = p["beta"].get<double>();
  const std::string sel = p["heads"].get<std::string>();
  std::vector<CalibrationPrompt> cps = calibration_prompts(m, records, prompts);
  std::vector<PromptMetric> base = calibration_metrics(m, rep, cps, {}, 1.0);
  std::vector<HeadRef> heads;
  if (sel == "search") {
    RunControl& ctl = session.control();
    heads = search_calibration_heads(m, rep, cps, beta, base, ctl.progress_fn(), ctl.cancel_flag());
  } else {
    (void)HeadRef::parse_list(sel, &heads);
  }
  std::vector<PromptMetric> after = heads.empty() ? base : calibration_metrics(m, rep, cps, heads, beta);
  std::vector<double> lb, la;
  int acc_b = 0, acc_a = 0, n_mc = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    lb.push_back(base[i].loss);
    la.push_back(after[i].loss);
    if (base[i].correct >= 0) ++n_mc, acc_b += base[i].correct, acc_a += after[i].correct;
  }
  nlohmann::json hs = nlohmann::json::array();
  for (const auto& h : heads) hs.push_back(h.name());
  RunResults cr;
  cr.inputs = res.inputs;
  cr.tensors.push_back({"loss_before", at::tensor(lb, at::kDouble), R"({"kind":"per-input","metric":"loss"})"});
  cr.tensors.push_back({"loss_after", at::tensor(la, at::kDouble), R"({"kind":"per-input","metric":"loss"})"});
  nlohmann::json cparams = {{"beta", beta}, {"heads", hs}, {"selection", sel == "search" ? "search" : "list"}};
  int64_t id = session.store_linked("sinks-calibration", cparams, std::move(cr), "calibrated-from");
  nlohmann::json calib = {{"run_id", id}, {"heads", hs}, {"beta", beta}, {"loss_before", mean_loss(base)},
                          {"loss_after", mean_loss(after)}};
  if (n_mc > 0)
    calib["accuracy_before"] = static_cast<double>(acc_b) / n_mc, calib["accuracy_after"] = static_cast<double>(acc_a) / n_mc;
  return calib;
}

}  // namespace

SinksRunOutcome run_sinks(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                          nlohmann::json params) {
  std::string param;
  std::string e = complete_params(sinks_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  if (records.empty()) fail_usage("sinks: no prompts");
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> texts;
  for (const auto& r : records) prompts.push_back(prompt_tokens(m, r)), texts.push_back(r.text);

  SinkOptions so;
  so.epsilon = params["epsilon"].get<double>();
  so.max_tokens = params["max_tokens"].get<int64_t>();
  HiddenThreshold ht;
  (void)HiddenThreshold::parse(params["hidden_threshold"].get<std::string>(), &ht);
  ht.apply(so);

  SinksRunOutcome out;
  out.params = params;
  nlohmann::json stored = stored_params(sinks_spec(), params);
  stored["n_prompts"] = prompts.size();
  session.begin(m, "sinks", stored);
  out.run_id = session.run_id();
  RunResults res;
  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    out.report = analyze_sinks(m, prompts, so, session.progress_fn(), session.cancel_flag());
    if (session.cancelled()) {
      reason = "cancelled after " + std::to_string(out.report.n_prompts) + " of " + std::to_string(prompts.size()) + " prompts";
      return std::nullopt;
    }
    res = sink_run_results(out.report, texts, prompts, m);
    return res;
  });
  out.run_id = session.run_id();
  if (!out.cancelled && params["calibrate"].get<bool>())
    out.calibration = calibrate(session, m, out.report, records, prompts, params, res);
  return out;
}

}  // namespace ms

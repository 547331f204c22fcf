// Discrete-SAE circuit identification (core/analysis/circuits/dsae_circuit.h) as a stored run of
// kind "sae-circuit": its parameters declared once (dsae_circuit_spec: the task's, then the SAE's
// and the selection's) and the one function `mechscope sae circuit`, batch jobs and the workbench call.
#pragma once

#include <nlohmann/json.hpp>

#include "core/analysis/circuits/dsae_circuit.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"
#include "storage/records.h"

namespace ms {

const AnalysisSpec& dsae_circuit_spec();

struct DsaeCircuitOutcome {
  int64_t run_id = 0;
  bool cancelled = false;
  nlohmann::json params;  // completed and canonical
  nlohmann::json counts;  // n_pairs, survived, generated
  DsaeResult result;
  std::vector<int64_t> heads;  // selected, ranking order (layer * n_heads + head)
  Circuit circuit;             // the selected heads with an edge each to the logits
};

// The circuit record of selected heads (each head -> logits, scored by its unique count).
Circuit dsae_circuit_record(const ModelConfig& c, const DsaeResult& r, const std::vector<int64_t>& heads,
                            const std::string& name, const nlohmann::json& meta);

// Completes and checks params (usage error naming the parameter), makes the task, scores the heads
// and stores a "sae-circuit" run: the parameters and pair counts, the task's inputs, the circuit,
// head scores dsae_unique and dsae_fraction, and the codes (tensor dsae_codes).
DsaeCircuitOutcome run_dsae_circuit(RunSession& session, const Model& m, nlohmann::json params);

}  // namespace ms

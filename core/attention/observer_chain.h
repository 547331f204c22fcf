// Several attention observers on one forward pass (ForwardOptions::attention takes one).
#pragma once

#include <cstdint>
#include <vector>

#include "core/attention/attention_observer.h"

namespace ms {

// Calls the observers in the order given, each for the layers it wants: an observer that edits
// the pattern (HeadMask, SinkCalibration) goes first so that the later ones read the pattern the
// model uses. Null entries are skipped.
class ObserverChain : public AttentionObserver {
 public:
  explicit ObserverChain(std::vector<AttentionObserver*> observers) : m_obs(std::move(observers)) {}
  bool wants_layer(int64_t layer) const override {
    for (const AttentionObserver* o : m_obs)
      if (o && o->wants_layer(layer)) return true;
    return false;
  }
  void on_block(AttentionBlock& block) override {
    for (AttentionObserver* o : m_obs)
      if (o && o->wants_layer(block.layer)) o->on_block(block);
  }
  // The fused kernel serves a layer only one observer wants (one set of statistics buffers).
  bool fused_stats(int64_t layer, int64_t q_begin, int64_t n_queries, int64_t sliding_window,
                   FusedAttentionStats& out) override {
    AttentionObserver* only = nullptr;
    for (AttentionObserver* o : m_obs)
      if (o && o->wants_layer(layer)) {
        if (only) return false;
        only = o;
      }
    return only && only->fused_stats(layer, q_begin, n_queries, sliding_window, out);
  }

 private:
  std::vector<AttentionObserver*> m_obs;
};

}  // namespace ms

// The training loop: cross-entropy through Model::forward with autograd, a hand-written AdamW
// over ATen ops (so every update is plain tensor arithmetic we control), clipping, the schedule.
#include "core/zoo/zoo_train.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <chrono>
#include <cmath>

namespace ms {
namespace {

using Clock = std::chrono::steady_clock;

struct Param {
  at::Tensor* slot;  // the weight in the model (a tied weight appears once)
  at::Tensor m, v;
  bool decay;
};

// Every distinct weight tensor of the model, by address; tied w_u shares w_e's slot.
std::vector<at::Tensor*> weight_slots(ModelWeights& w) {
  std::vector<at::Tensor*> out;
  auto add = [&](at::Tensor& t) {
    if (t.defined()) out.push_back(&t);
  };
  add(w.w_e);
  add(w.w_pos);
  for (LayerWeights& lw : w.layers) {
    for (at::Tensor* t : {&lw.ln1_w, &lw.ln1_b, &lw.w_qkv, &lw.b_qkv, &lw.w_o, &lw.b_o, &lw.ln2_w,
                          &lw.ln2_b, &lw.w_in, &lw.b_in, &lw.w_out, &lw.b_out})
      add(*t);
  }
  add(w.ln_f_w);
  add(w.ln_f_b);
  if (w.w_u.defined() && !w.w_u.is_same(w.w_e)) add(w.w_u);
  add(w.b_u);
  return out;
}

// Makes each weight a fresh contiguous float32 leaf (tied w_u follows w_e).
void make_leaves(ModelWeights& w, bool requires_grad) {
  const bool tied = w.w_u.defined() && w.w_u.is_same(w.w_e);
  for (at::Tensor* t : weight_slots(w)) {
    at::Tensor leaf = t->detach().to(at::kFloat).contiguous().clone();
    *t = requires_grad ? leaf.requires_grad_(true) : leaf;
  }
  if (tied) w.w_u = w.w_e;
}

}  // namespace

ModelWeights init_weights(const ModelConfig& c, uint64_t seed, double std, bool sinusoidal) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto rnd = [&](std::vector<int64_t> shape, double s) { return at::normal(0.0, s, shape, gen, opts); };
  const double proj_std = std / std::sqrt(2.0 * static_cast<double>(c.n_layers));
  const bool ln = c.norm == NormKind::kLayerNorm;
  const int64_t d = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim();
  ModelWeights w;
  w.w_e = rnd({c.d_vocab, d}, std);
  if (c.pos == PosKind::kLearned && !sinusoidal) w.w_pos = rnd({c.n_ctx, d}, std / 2);
  if (c.pos == PosKind::kLearned && sinusoidal) {
    // PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...): each row has norm sqrt(d / 2).
    at::Tensor pos = at::arange(c.n_ctx, at::kDouble).unsqueeze(1);
    at::Tensor freq = at::exp(at::arange(0, d, 2, at::kDouble) * (-std::log(10000.0) / static_cast<double>(d)));
    at::Tensor ang = pos * freq.unsqueeze(0);  // (n_ctx, d / 2)
    at::Tensor pe = at::stack({ang.sin(), ang.cos()}, 2).reshape({c.n_ctx, -1}).narrow(1, 0, d);
    w.w_pos = (pe * (std * std::sqrt(2.0))).to(at::kFloat).contiguous();
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights lw;
    lw.ln1_w = at::ones({d}, opts);
    if (ln) lw.ln1_b = at::zeros({d}, opts);
    lw.w_qkv = rnd({qkv, d}, std);
    if (c.qkv_bias) lw.b_qkv = at::zeros({qkv}, opts);
    lw.w_o = rnd({d, c.q_dim()}, proj_std);
    if (c.o_bias) lw.b_o = at::zeros({d}, opts);
    if (!c.attn_only()) {
      const int64_t rows = c.gated_mlp ? 2 * c.d_mlp : c.d_mlp;
      lw.ln2_w = at::ones({d}, opts);
      if (ln) lw.ln2_b = at::zeros({d}, opts);
      lw.w_in = rnd({rows, d}, std);
      if (c.mlp_bias) lw.b_in = at::zeros({rows}, opts);
      lw.w_out = rnd({d, c.d_mlp}, proj_std);
      if (c.mlp_bias) lw.b_out = at::zeros({d}, opts);
    }
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = at::ones({d}, opts);
  if (ln) w.ln_f_b = at::zeros({d}, opts);
  w.w_u = c.tie_embeddings ? w.w_e : rnd({c.d_vocab, d}, std);
  return w;
}

double lr_at(const TrainConfig& c, int64_t step) {
  if (step < c.warmup) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, c.steps - c.warmup));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return c.lr * (c.min_lr_ratio + (1.0 - c.min_lr_ratio) * cosine);
}

Result<TrainOutcome> train_model(Model& model, const TrainConfig& cfg, const BatchFn& next_batch,
                                 const TrainCallbacks& cb) {
  return guard([&] {
    if (cfg.steps < 0 || cfg.batch <= 0 || cfg.threads <= 0 || cfg.lr <= 0)
      fail_usage("training needs steps >= 0, batch > 0, threads > 0 and lr > 0");
    if (model.device() != c10::Device(c10::kCPU)) fail_usage("training runs on the CPU");
    at::set_num_threads(cfg.threads);
    c10::AutoGradMode grad_mode(true);
    ModelWeights& w = model.weights();
    make_leaves(w, true);
    std::vector<Param> params;
    for (at::Tensor* t : weight_slots(w))
      params.push_back({t, at::zeros_like(*t), at::zeros_like(*t), t->dim() >= 2});
    const int64_t V = model.config().d_vocab;

    TrainOutcome out;
    const auto t0 = Clock::now();
    const int64_t tail = std::max<int64_t>(1, cfg.steps / 20);
    const int64_t curve_every = std::max<int64_t>(1, cfg.steps / 100);
    double tail_sum = 0, window_sum = 0, ema = 0, ema_weight = 0;
    int64_t window_n = 0;
    for (int64_t step = 0; step < cfg.steps; ++step) {
      if (cb.cancel && cb.cancel->load()) {
        out.cancelled = true;
        break;
      }
      TaskBatch batch = next_batch(step);
      at::Tensor logits = model.forward(batch.tokens);  // (B, T, V)
      at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, V}), batch.targets.reshape({-1}),
                                               {}, at::Reduction::Mean, kIgnoreTarget);
      loss.backward();
      const double loss_v = loss.item<double>();
      {
        at::NoGradGuard no_grad;
        if (cfg.clip > 0) {
          at::Tensor sq = at::zeros({}, at::kDouble);
          for (Param& p : params)
            if (p.slot->grad().defined()) sq = sq + p.slot->grad().to(at::kDouble).pow(2).sum();
          const double norm = std::sqrt(sq.item<double>());
          if (norm > cfg.clip)
            for (Param& p : params)
              if (p.slot->grad().defined()) p.slot->mutable_grad().mul_(cfg.clip / (norm + 1e-6));
        }
        const double lr = lr_at(cfg, step);
        const double bc1 = 1.0 - std::pow(cfg.beta1, static_cast<double>(step + 1));
        const double bc2 = 1.0 - std::pow(cfg.beta2, static_cast<double>(step + 1));
        for (Param& p : params) {
          at::Tensor& t = *p.slot;
          if (!t.grad().defined()) continue;
          const at::Tensor& g = t.grad();
          p.m.mul_(cfg.beta1).add_(g, 1.0 - cfg.beta1);
          p.v.mul_(cfg.beta2).addcmul_(g, g, 1.0 - cfg.beta2);
          if (p.decay && cfg.weight_decay > 0) t.mul_(1.0 - lr * cfg.weight_decay);
          at::Tensor denom = (p.v / bc2).sqrt_().add_(cfg.eps);
          t.addcdiv_(p.m, denom, -lr / bc1);
          t.mutable_grad() = at::Tensor();
        }
      }
      out.steps_done = step + 1;
      out.tokens += batch.tokens.numel();
      if (step == 0) out.first_loss = loss_v;
      if (step >= cfg.steps - tail) tail_sum += loss_v;
      window_sum += loss_v;
      ++window_n;
      ema = ema * 0.95 + loss_v * 0.05;
      ema_weight = ema_weight * 0.95 + 0.05;
      if (out.steps_done % curve_every == 0 || out.steps_done == cfg.steps) {
        out.loss_curve.emplace_back(out.steps_done, window_sum / static_cast<double>(window_n));
        window_sum = 0;
        window_n = 0;
      }
      if (cb.on_progress && (out.steps_done % std::max<int64_t>(1, cb.report_every) == 0 || out.steps_done == cfg.steps)) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
        cb.on_progress({out.steps_done, cfg.steps, ema / ema_weight, lr_at(cfg, step),
                        static_cast<double>(out.tokens) / std::max(elapsed, 1e-9), elapsed});
      }
    }
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    out.tokens_per_s = static_cast<double>(out.tokens) / std::max(out.seconds, 1e-9);
    out.final_loss = out.steps_done == cfg.steps ? tail_sum / static_cast<double>(tail) : 0.0;
    make_leaves(w, false);
    return out;
  });
}

}  // namespace ms

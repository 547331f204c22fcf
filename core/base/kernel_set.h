// Which instruction-set version of mechscope's hand-vectorised kernels runs (fused attention
// tiles, GEMV, GELU): one rule for all of them. The widest the CPU has (AVX-512F, else AVX2 with
// FMA, else the portable loops), capped by the environment's MECHSCOPE_ATTENTION_KERNELS=avx2 or
// =portable (read once), or a narrower set asked for by name (tests of every set in one process).
#pragma once

namespace ms {

enum class KernelSet { kPortable, kAvx2, kAvx512 };

// request: "" (the widest allowed), "avx2" or "portable"; never wider than the CPU and the cap.
KernelSet kernel_set(const char* request = "");

// "portable", "avx2" or "avx512".
const char* kernel_set_name(KernelSet s);

}  // namespace ms

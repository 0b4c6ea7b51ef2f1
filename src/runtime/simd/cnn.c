// wasm: shared-memory
// wasm: relaxed-simd
// The conv-net training kernels (scripts/build-simd.sh embeds the binary in
// cnn-wasm.gen.ts): one module, one shared memory, so the engine's worker
// threads run the same kernels on the same buffers, each on its share of a
// batch. The parts live in cnn/; see cnn/common.h for the conventions.
#include "cnn/common.h"
// The dense kernels of the MLP engine, for the heads of conv nets (and its
// adam/sgd, which the fused optimiser in cnn/optim.c must equal); first, so
// the parts can use its helpers (dot, mlp_hsum).
#include "mlp.c"
#include "cnn/conv.c"
#include "cnn/layers.c"
#include "cnn/optim.c"
#include "cnn/sparse.c"
#include "cnn/csr.c"

/* The emulated ring build's CUDA runtime: this folder comes first on test_ring_emu's include
 * path, so `#include <cuda_runtime.h>` in the ring's real source (src/cp/ring_gpu.cu and the
 * GPU headers it includes) takes the CPU stand-in (../cuda_emu_rt.h) instead of CUDA's. */
#ifndef LONGCTX_EMU_RING_CUDA_RUNTIME_H
#define LONGCTX_EMU_RING_CUDA_RUNTIME_H
#include "../cuda_emu_rt.h"
#endif

// liblongctx_cuda_emu.so: the trainer's GPU plugin (src/train/cuda/plugin.cu) and the model's
// GPU device (src/model/cuda), their own source built for the CPU emulation of CUDA
// (cuda_emu.h), with the host's attention in place of the ring. `longctx train --device cuda`
// with LONGCTX_CUDA_PLUGIN naming this file runs the trainer's whole GPU wiring where there is
// no GPU (tests/train: train_cuda_emu).
#define LCG_EMU 1
#include "cuda_emu.h"

#include "model/cuda/device_gpu.cu"
#include "model/cuda/gemm_gpu.cu"
#include "model/cuda/layers_gpu.cu"
#include "train/cuda/plugin.cu"

# The layers of longctx, lowest first, and what each may use: the one table that both the
# library targets (CMakeLists.txt: lc_<layer> links the layers it names here) and the include
# checker (cmake/check_includes.cmake, run in ALL) read. Linking alone cannot stop an
# #include: every public header sits in include/longctx/ and src/ is on the include path.
#
# A layer may use the layers it names and, through them, everything they may use. src/<layer>/
# holds its sources (src/attn/cuda is attn); the public headers are assigned below.
set(LONGCTX_LAYERS common symm attn cp model optim ckpt train jax bench planner cli)

set(LONGCTX_LAYER_USES_common "")
set(LONGCTX_LAYER_USES_symm common)
set(LONGCTX_LAYER_USES_attn common) # the kernels do not depend on the runtime
set(LONGCTX_LAYER_USES_cp attn symm)
set(LONGCTX_LAYER_USES_model cp)
set(LONGCTX_LAYER_USES_optim common) # AdamW works on flat arrays, not on the model
set(LONGCTX_LAYER_USES_ckpt model optim)
set(LONGCTX_LAYER_USES_train ckpt)
set(LONGCTX_LAYER_USES_jax train) # the CP core, and the trainer's loader for JAX programs
set(LONGCTX_LAYER_USES_bench train)
set(LONGCTX_LAYER_USES_planner bench) # calibrates with the benchmarks' tools, checks against bench train
set(LONGCTX_LAYER_USES_cli planner)

# A layer's headers in src/<layer>/ are its own: the layers above include its public header.
# These layers have none, so the layers above include their src/ headers: common (the
# plumbing every layer shares: err.h), bench (used by the planner and the CLI) and planner
# (used by the CLI alone).
set(LONGCTX_LAYERS_OPEN_SRC common bench planner)

# include/longctx/<header> -> the layer it belongs to. A public header missing here fails
# the check. gpu.h declares the CUDA kernels (attn), the NVSHMEM/NCCL backends (symm) and
# the GPU ring (cp); it sits with the kernels until it is split (see the allow-list).
set(LONGCTX_PUBLIC_HEADERS
  status.h=common
  settings.h=common
  symm.h=symm
  attn.h=attn
  gpu_attn.h=attn
  gpu_symm.h=symm
  gpu.h=cp
  cp.h=cp
  model.h=model
  model_gpu.h=model
  optim.h=optim
  ckpt.h=ckpt
  train.h=train
  trainer.h=train
  train_cuda.h=train)

# The private headers a layer shares with the layers above it (which must still be allowed
# to use that layer): the one core that the CPU and the GPU sides both compile. attn/core.h
# (mask rule, tile classes, the lse merge, the dK/dV add) is read by cp's core and the GPU
# ring; the architecture header (one per build, chosen by include path: the real one here,
# the emulator's in tests/gpu/emu) is the GPU ring's as much as the kernels'; and the NVSHMEM
# backend's stream wait (symm/gpu_err.h) is the GPU ring's transport. The kernels' own
# internals (gpu_internal.h, cudnn_engine.h) are not here: the ring reaches them through
# gpu_attn.h.
set(LONGCTX_SHARED_HEADERS
  src/attn/core.h
  src/attn/cuda/arch/gpu_arch.h
  src/symm/gpu_err.h)

# TEMPORARY exceptions, "including file>included file" (paths from the source root): an
# include the table does not allow, tolerated until it is fixed. The checker notes any entry
# that no longer matches an include.
# None today; an entry reads "src/x/a.c>src/y/b.h", with a comment saying why.
set(LONGCTX_LAYER_ALLOW)

# The transitive closure: LONGCTX_LAYER_BELOW_<layer> = every layer <layer> may use.
foreach(_l ${LONGCTX_LAYERS})
  set(_todo ${LONGCTX_LAYER_USES_${_l}})
  set(_seen "")
  while(_todo)
    list(POP_FRONT _todo _d)
    if(NOT _d IN_LIST _seen)
      list(APPEND _seen ${_d})
      list(APPEND _todo ${LONGCTX_LAYER_USES_${_d}})
    endif()
  endwhile()
  set(LONGCTX_LAYER_BELOW_${_l} ${_seen})
endforeach()
unset(_todo)
unset(_seen)
unset(_d)
unset(_l)

# longctx plan: the cost model, the profiles (built-in GPUs, this host's measured one) and the
# command with its --calibrate and --check. A layer above the benchmarks: it calibrates with
# them and checks itself against `longctx bench train`.
longctx_layer(planner
  src/planner/planner.c
  src/planner/profile.c
  src/planner/calibrate.c
  src/planner/plan_cmd.c)

# The optimizer (src/optim): AdamW, clipping, the learning-rate schedule; under both the
# checkpoints (which save its moments) and the trainer.
longctx_layer(optim
  src/optim/adamw.c)

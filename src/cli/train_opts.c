/* The options of `longctx train` as one table: the parser, the usage text and the resume
 * rules all read it, so what --help says is what the command does. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/train_opts.h"

enum kind {
    K_SWITCH,  /* int = 1 */
    K_I64,     /* int64_t >= lo; K and M suffixes */
    K_INT,     /* int >= lo */
    K_U64,     /* uint64_t */
    K_F32,     /* float */
    K_F64POS,  /* double > 0 */
    K_STR,     /* const char *, the argv string */
    K_PATH,    /* char[LC_TRAIN_PATH_MAX], copied */
    K_SIZE,    /* size_t > 0: 512M, 2G */
    K_MODEL,   /* the preset: applied before every other flag (lc_train_args_parse) */
    K_SHAPE,   /* an int of the model config; the model becomes "custom" */
    K_THETA,   /* the model's rope_theta, which a checkpoint's config.json does not fix */
    K_DTYPE, K_ALGO, K_LAYOUT, K_LOWERING, K_ORDER, K_BF16DOT, K_BALANCE,
    K_RESUME   /* an optional value */
};

/* R_KEEP: recorded in a checkpoint; a resume takes it from there unless given, and one given
 * must agree (lc_trainer_resume_check says which). R_MESH: recorded; taken from there unless
 * given, and may change, as the mesh may (any CP algorithm, layout and lowering computes the
 * same step). R_FREE: this run's alone (steps, lr, the mesh, threads, eval, output). */
enum resume { R_FREE, R_KEEP, R_MESH };

typedef struct {
    const char *flag, *arg; /* arg NULL: a switch */
    enum kind kind;
    size_t off;             /* into lc_train_args */
    long long lo;
    enum resume resume;
    const char *help;
    const char *dflt;       /* the default in words where it is derived; NULL: shown from the defaults */
} opt;

#define O(f) offsetof(lc_train_args, f)
#define M(f) offsetof(lc_train_args, o.model.f)
#define P(f) offsetof(lc_train_args, o.plan.f)
#define T(f) offsetof(lc_train_args, o.f)

static const opt MODEL_OPTS[] = {
    {"--model", "NAME", K_MODEL, O(model), 0, R_FREE, "tiny, small or llama3-8b; with --resume or --init-from and no "
     "shape flag, the checkpoint's config.json", NULL},
    {"--layers", "N", K_SHAPE, M(n_layers), 1, R_FREE, "layers (this and the next six override the preset)", "preset"},
    {"--dim", "N", K_SHAPE, M(dim), 1, R_FREE, "hidden size", "preset"},
    {"--heads", "N", K_SHAPE, M(n_heads), 1, R_FREE, "attention heads", "preset"},
    {"--kv-heads", "N", K_SHAPE, M(n_kv_heads), 1, R_FREE, "key/value heads (GQA)", "preset"},
    {"--ffn", "N", K_SHAPE, M(ffn_dim), 1, R_FREE, "MLP width", "preset"},
    {"--vocab", "N", K_SHAPE, M(vocab), 1, R_FREE, "vocabulary size", "preset"},
    {"--rope-theta", "X", K_THETA, M(rope_theta), 0, R_FREE, "RoPE base; overrides a checkpoint's", "preset"},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt DATA_OPTS[] = {
    {"--data", "DIR", K_STR, O(data), 0, R_FREE, "DIR/train.bin and DIR/val.bin (llm.c token files; `longctx "
     "prepare-data DIR`); a resume without it takes the recorded --train and --val", NULL},
    {"--train", "FILE", K_PATH, O(train), 0, R_KEEP, "the training tokens (instead of --data)", NULL},
    {"--val", "FILE", K_PATH, O(val), 0, R_MESH, "the validation tokens", NULL},
    {"--seq", "N", K_I64, P(seq_len), 1, R_KEEP, "tokens per sequence", NULL},
    {"--doc-mask", NULL, K_SWITCH, T(doc_mask), 0, R_KEEP, "packed documents: no attention or prediction across "
     "--doc-sep", NULL},
    {"--doc-sep", "TOKEN", K_INT, T(doc_sep), 0, R_KEEP, "the token that ends a document", NULL},
    {"--window", "N", K_I64, T(window), 0, R_KEEP, "sliding-window attention: each token sees itself and the N - 1 "
     "before it (0: the whole causal past)", NULL},
    {"--seed", "N", K_U64, T(seed), 0, R_KEEP, "initialisation and data order", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt MESH_OPTS[] = {
    {"--cp", "C", K_INT, P(cp), 1, R_FREE, "context-parallel PEs", NULL},
    {"--dp", "D", K_INT, P(dp), 1, R_FREE, "data-parallel replicas", NULL},
    {"--tp", "T", K_INT, P(tp), 1, R_FREE, "tensor-parallel PEs (Megatron style)", NULL},
    {"--pes", "P", K_INT, O(pes), 1, R_FREE, "must equal D x C x T; PEs are spawned here on the shm backend unless "
     "run under `longctx launch -n P` or mpirun", "D x C x T"},
    {"--plan", "auto", K_STR, O(plan_mode), 0, R_FREE, "auto: the layout `longctx plan` ranks best on this host "
     "(D, C, T, sp, --cp-algo, --layout, --permute, --recompute; calibrates first when it has no profile)", NULL},
    {"--sp", NULL, K_SWITCH, P(sp), 0, R_FREE, "sequence parallelism in the TP team", NULL},
    {"--mesh-order", "A,B,C", K_ORDER, P(order), 0, R_FREE, "which PEs are neighbours, innermost first", "tp,cp,dp"},
    {"--backend", "NAME", K_STR, O(backend), 0, R_FREE, "shm, mpi or auto (mpi: under `mpirun -n P longctx train`, "
     "picked there by default)", "auto"},
    {"--heap", "SIZE", K_SIZE, O(heap), 0, R_FREE, "symmetric heap per PE", "sized for the model"},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt CP_OPTS[] = {
    {"--cp-algo", "NAME", K_ALGO, P(algo), 0, R_MESH, "ring, allgather, ulysses (all-to-all to head shards; the "
     "heads must split over --cp) or hybrid (Ulysses over --ulysses neighbours x the ring)", NULL},
    {"--ulysses", "U", K_INT, P(ulysses), 1, R_MESH, "hybrid: the Ulysses degree (divides --cp and the query heads "
     "per TP rank)", "none"},
    {"--layout", "NAME", K_LAYOUT, P(layout), 0, R_MESH, "zigzag, contiguous or striped", NULL},
    {"--balance", "NAME", K_BALANCE, P(balance), 0, R_FREE, "tokens (the layout's) or mask: 64-token chunks dealt to "
     "the PEs per sequence by the real mask's work (packed documents, window); ring or allgather, --seq a multiple "
     "of 64 x --cp", NULL},
    {"--permute", "NAME", K_LOWERING, P(lowering), 0, R_MESH, "how KV blocks travel: one_sided, two_sided, "
     "zero_copy or auto", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt COMPUTE_OPTS[] = {
    {"--dtype", "NAME", K_DTYPE, T(compute), 0, R_KEEP, "f32 or bf16", NULL},
    {"--bf16-dot", "NAME", K_BF16DOT, T(bf16_dot), 0, R_MESH, "bf16: the kernels' inner product, fma or dpbf16 "
     "(vdpbf16ps); auto times both on PE 0 (cached per CPU model)", NULL},
    {"--recompute", NULL, K_SWITCH, T(recompute), 0, R_FREE, "recompute activations in backward (less memory)", NULL},
    {"--threads", "N", K_INT, T(threads), 1, R_FREE, "per PE (more than its cores: warned)", "the PE's cores"},
    {"--device", "NAME", K_STR, T(device), 0, R_FREE, "cpu, or cuda: the model on the GPU (CP over every PE, "
     "several PEs may share one GPU; needs the GPU build)", "cpu"},
    {"--gpu-engine", "NAME", K_STR, T(gpu_engine), 0, R_FREE, "cuda: the attention blocks' engine, own, cudnn or "
     "auto", "own"},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt OPTIM_OPTS[] = {
    {"--steps", "N", K_I64, T(steps), 1, R_FREE, "optimizer steps of the whole run", NULL},
    {"--accum", "N", K_INT, T(accum), 1, R_KEEP, "micro-batches per DP replica and step (a resume keeps D x N)", NULL},
    {"--lr", "X", K_F32, T(lr), 0, R_MESH, "peak learning rate (AdamW 0.9/0.95/1e-8)", NULL},
    {"--lr-min", "X", K_F32, T(lr_min), 0, R_MESH, "the cosine's end", "lr/10"},
    {"--warmup", "N", K_I64, T(warmup), 0, R_KEEP, "linear warmup steps", "steps/10"},
    {"--extend-schedule", NULL, K_SWITCH, T(extend_schedule), 0, R_FREE, "on resume, re-fit the cosine to --steps "
     "(else it goes on as saved, holding at --lr-min past its end)", NULL},
    {"--wd", "X", K_F32, T(weight_decay), 0, R_KEEP, "weight decay", NULL},
    {"--clip", "X", K_F32, T(clip), 0, R_KEEP, "gradient-norm clip (0: none)", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt LOG_OPTS[] = {
    {"--out", "DIR", K_STR, T(out_dir), 0, R_FREE, "metrics.jsonl (one object per step) and loss.png", NULL},
    {"--eval-every", "N", K_INT, T(eval_every), 0, R_FREE, "steps between validations (0: at the end)", "steps/5"},
    {"--eval-seqs", "N", K_INT, T(eval_seqs), 1, R_FREE, "validation sequences", NULL},
    {"--quiet", NULL, K_SWITCH, T(quiet), 0, R_FREE, "no progress lines", NULL},
    {"--peak", "GFLOPS", K_F64POS, T(peak_gflops_core), 0, R_FREE, "one core's FMA peak for MFU", "measured"},
    {"--time-budget", "SECONDS", K_F64POS, T(time_budget_s), 0, R_FREE, "after 2 steps, cut --steps to end in time "
     "(demos only: the step count then depends on the machine)", "none"},
    {"--dump-params", "FILE", K_STR, T(dump_params), 0, R_FREE, "raw fp32 weights after the last step", NULL},
    {"--dump-grads", "FILE", K_STR, T(dump_grads), 0, R_FREE, "raw fp32 all-reduced gradients of the first step", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};
static const opt CKPT_OPTS[] = {
    {"--save-dir", "DIR", K_STR, T(save_dir), 0, R_FREE, "checkpoints go to DIR/step-N", "none"},
    {"--save-every", "N", K_I64, T(save_every), 1, R_FREE, "save after every N steps (and after the last)",
     "after the last"},
    {"--keep", "K", K_INT, T(keep), 0, R_FREE, "keep the newest K (0: all)", NULL},
    {"--resume", "[CKPT|DIR|auto]", K_RESUME, T(resume), 0, R_FREE, "go on from a checkpoint (the newest complete "
     "one; default --save-dir's). auto: resume when --save-dir has one, else start a new run. The run's recorded "
     "settings come from it unless given", NULL},
    {"--init-from", "HF_DIR", K_STR, T(init_from), 0, R_FREE, "weights of a save_pretrained folder, step 0", NULL},
    {"--max-restarts", "N", K_INT, O(max_restarts), 0, R_FREE, "when a PE dies or stops answering, end the world and "
     "start it again from the newest checkpoint, up to N times (needs --save-dir; PEs this command starts itself)",
     NULL},
    {"--min-pes", "M", K_INT, O(min_pes), 1, R_FREE, "when a PE cannot be started again (lost at once twice), go on "
     "with the largest valid DP x CP x TP mesh of at least M PEs that keeps the global batch", "none"},
    {"--term-grace", "SECONDS", K_F64POS, O(term_grace), 0, R_FREE, "SIGTERM: the PEs save a checkpoint after the "
     "current step if it ends within this time, and exit with status 75 (stopped early, resumable)", NULL},
    {NULL, NULL, 0, 0, 0, 0, NULL, NULL}};

static const struct {
    const char *title;
    const opt *opts;
} GROUP_TABLE[] = {{"Model", MODEL_OPTS}, {"Data", DATA_OPTS},       {"Mesh", MESH_OPTS},
                   {"CP", CP_OPTS},       {"Compute", COMPUTE_OPTS}, {"Optimizer", OPTIM_OPTS},
                   {"Output", LOG_OPTS},  {"Checkpoints", CKPT_OPTS}, {NULL, NULL}};

static const opt *find(const char *flag)
{
    for (int g = 0; GROUP_TABLE[g].title; g++)
        for (const opt *p = GROUP_TABLE[g].opts; p->flag; p++)
            if (!strcmp(p->flag, flag)) return p;
    return NULL;
}

#define AT(a, p, type) ((type *)((char *)(a) + (p)->off))
#define CAT(a, p, type) ((const type *)((const char *)(a) + (p)->off))

static int int_arg(const char *flag, const char *v, long long lo, long long hi, long long *out, char *err, size_t len)
{
    char *e;
    long long x = strtoll(v, &e, 10);
    if (e != v && (*e == 'K' || *e == 'k')) x *= 1024, e++;
    else if (e != v && (*e == 'M' || *e == 'm')) x *= 1024 * 1024, e++;
    if (e == v || *e || x < lo) {
        snprintf(err, len, "%s '%s' must be an integer >= %lld", flag, v, lo);
        return -1;
    }
    if (x > hi) {
        snprintf(err, len, "%s %s is too large (at most %lld)", flag, v, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int float_arg(const char *flag, const char *v, double *out, char *err, size_t len)
{
    char *e;
    *out = strtod(v, &e);
    if (e == v || *e) {
        snprintf(err, len, "%s '%s' is not a number", flag, v);
        return -1;
    }
    return 0;
}

/* Parses value v of option p into a. The one place a flag's value is read. */
static int set(lc_train_args *a, const opt *p, const char *v, char *err, size_t len)
{
    long long x;
    double f;
    switch (p->kind) {
    case K_SWITCH:
        if (v && strcmp(v, "0") && strcmp(v, "1")) return snprintf(err, len, "%s is a switch, not '%s'", p->flag, v), -1;
        *AT(a, p, int) = !v || !strcmp(v, "1");
        return 0;
    case K_I64:
        if (int_arg(p->flag, v, p->lo, INT64_MAX / (1024 * 1024), &x, err, len)) return -1;
        *AT(a, p, int64_t) = x;
        return 0;
    case K_INT:
    case K_SHAPE:
        if (int_arg(p->flag, v, p->lo, 1 << 30, &x, err, len)) return -1;
        *AT(a, p, int) = (int)x;
        if (p->kind == K_SHAPE) a->o.model_name = "custom";
        return 0;
    case K_U64: {
        char *e;
        unsigned long long u = strtoull(v, &e, 10);
        if (e == v || *e || v[0] == '-') return snprintf(err, len, "%s '%s' must be an integer >= 0", p->flag, v), -1;
        *AT(a, p, uint64_t) = u;
        return 0;
    }
    case K_F32:
    case K_THETA:
        if (float_arg(p->flag, v, &f, err, len)) return -1;
        *AT(a, p, float) = (float)f;
        if (p->kind == K_THETA) a->o.rope_theta_set = 1;
        return 0;
    case K_F64POS:
        if (float_arg(p->flag, v, &f, err, len)) return -1;
        if (!(f > 0)) return snprintf(err, len, "%s '%s' must be > 0", p->flag, v), -1;
        *AT(a, p, double) = f;
        return 0;
    case K_STR:
    case K_MODEL:
    case K_RESUME:
        *AT(a, p, const char *) = v;
        return 0;
    case K_PATH:
        if (strlen(v) >= LC_TRAIN_PATH_MAX) return snprintf(err, len, "%s: the path is too long", p->flag), -1;
        snprintf(AT(a, p, char), LC_TRAIN_PATH_MAX, "%s", v);
        return 0;
    case K_SIZE:
        if (lc_parse_size(v, AT(a, p, size_t)) || !*AT(a, p, size_t))
            return snprintf(err, len, "%s '%s' is not a size (512M, 2G)", p->flag, v), -1;
        return 0;
    case K_DTYPE:
        if (!strcmp(v, "f32")) *AT(a, p, lc_dtype) = LC_DT_F32;
        else if (!strcmp(v, "bf16")) *AT(a, p, lc_dtype) = LC_DT_BF16;
        else return snprintf(err, len, "%s '%s': f32 or bf16", p->flag, v), -1;
        return 0;
    case K_ALGO:
        if (lc_cp_algo_parse(v, AT(a, p, lc_cp_algo))) return snprintf(err, len, "%s '%s': ring, allgather, ulysses or hybrid", p->flag, v), -1;
        return 0;
    case K_LAYOUT:
        if (lc_cp_layout_parse(v, AT(a, p, lc_cp_layout)))
            return snprintf(err, len, "%s '%s': zigzag, contiguous or striped", p->flag, v), -1;
        return 0;
    case K_BALANCE:
        if (lc_cp_balance_parse(v, AT(a, p, lc_cp_balance)))
            return snprintf(err, len, "%s '%s': tokens or mask", p->flag, v), -1;
        return 0;
    case K_LOWERING: {
        lc_lowering l;
        if (lc_lowering_parse(v, &l) || l == LC_LOWER_COMPUTE_ONLY)
            return snprintf(err, len, "%s '%s': one_sided, two_sided, zero_copy or auto", p->flag, v), -1;
        *AT(a, p, lc_lowering) = l;
        return 0;
    }
    case K_BF16DOT:
        if (lc_bf16_dot_parse(v, AT(a, p, lc_bf16_dot)))
            return snprintf(err, len, "%s '%s': auto, fma or dpbf16", p->flag, v), -1;
        return 0;
    case K_ORDER: {
        char e[256];
        if (lc_plan_parse_order(v, AT(a, p, int), e, sizeof e)) return snprintf(err, len, "%s", e), -1;
        return 0;
    }
    }
    return -1;
}

/* The value of option p in a as its flag would take it ("" when unset). */
static void show(const lc_train_args *a, const opt *p, char *buf, size_t len)
{
    buf[0] = 0;
    switch (p->kind) {
    case K_SWITCH: snprintf(buf, len, "%d", *CAT(a, p, int)); break;
    case K_I64: {
        long long x = (long long)*CAT(a, p, int64_t);
        if (x >= 1024 && x % 1024 == 0) snprintf(buf, len, "%lldK", x / 1024);
        else snprintf(buf, len, "%lld", x);
        break;
    }
    case K_INT:
    case K_SHAPE: snprintf(buf, len, "%d", *CAT(a, p, int)); break;
    case K_U64: snprintf(buf, len, "%llu", (unsigned long long)*CAT(a, p, uint64_t)); break;
    case K_F32:
    case K_THETA: snprintf(buf, len, "%g", (double)*CAT(a, p, float)); break;
    case K_F64POS: snprintf(buf, len, "%g", *CAT(a, p, double)); break;
    case K_STR:
    case K_MODEL:
    case K_RESUME: snprintf(buf, len, "%s", *CAT(a, p, const char *) ? *CAT(a, p, const char *) : ""); break;
    case K_PATH: snprintf(buf, len, "%s", CAT(a, p, char)); break;
    case K_SIZE: snprintf(buf, len, "%zu", *CAT(a, p, size_t)); break;
    case K_DTYPE: snprintf(buf, len, "%s", lc_dtype_name(*CAT(a, p, lc_dtype))); break;
    case K_ALGO: snprintf(buf, len, "%s", lc_cp_algo_name(*CAT(a, p, lc_cp_algo))); break;
    case K_LAYOUT: snprintf(buf, len, "%s", lc_cp_layout_name(*CAT(a, p, lc_cp_layout))); break;
    case K_BALANCE: snprintf(buf, len, "%s", lc_cp_balance_name(*CAT(a, p, lc_cp_balance))); break;
    case K_LOWERING: snprintf(buf, len, "%s", lc_lowering_name(*CAT(a, p, lc_lowering))); break;
    case K_BF16DOT: snprintf(buf, len, "%s", lc_bf16_dot_name(*CAT(a, p, lc_bf16_dot))); break;
    case K_ORDER: break;
    }
}

void lc_train_args_defaults(lc_train_args *a)
{
    memset(a, 0, sizeof *a);
    lc_trainer_defaults(&a->o);
    a->model = "small";
    a->o.out_dir = "train_out";
    a->term_grace = 60;
}

#define USAGE_INDENT "                         " /* 25 columns: "  * " and the flag */
/* Prints text from column 25 on, broken at spaces before column 100. */
static void wrap(FILE *f, const char *text)
{
    const int width = 100 - (int)strlen(USAGE_INDENT);
    while ((int)strlen(text) > width) {
        int cut = width;
        while (cut > 0 && text[cut] != ' ') cut--;
        if (cut == 0) break;
        fprintf(f, "%.*s\n" USAGE_INDENT, cut, text);
        text += cut + 1;
    }
    fprintf(f, "%s\n", text);
}

void lc_train_usage(FILE *f)
{
    lc_train_args d;
    lc_train_args_defaults(&d);
    fprintf(f, "usage: longctx train --data DIR [--model small] [--seq 16K] [--cp 1] [--steps 50] [options]\n"
               "Every option but the data has a default, in brackets. Resuming, a setting marked * comes from the\n"
               "checkpoint unless given, and one given must agree; one marked ~ comes from it unless given.\n");
    for (int g = 0; GROUP_TABLE[g].title; g++) {
        fprintf(f, "%s:\n", GROUP_TABLE[g].title);
        for (const opt *p = GROUP_TABLE[g].opts; p->flag; p++) {
            char head[64], val[128], tail[200] = "";
            snprintf(head, sizeof head, "%s%s%s", p->flag, p->arg ? " " : "", p->arg ? p->arg : "");
            if (p->dflt) snprintf(tail, sizeof tail, " [%s]", p->dflt);
            else if (p->kind != K_SWITCH && p->kind != K_RESUME) {
                show(&d, p, val, sizeof val);
                if (val[0]) snprintf(tail, sizeof tail, " [%s]", val);
            }
            char line[1024];
            snprintf(line, sizeof line, "%s%s", p->help, tail);
            fprintf(f, "  %c %-20s%s", p->resume == R_KEEP ? '*' : p->resume == R_MESH ? '~' : ' ', head,
                    strlen(head) > 20 ? "\n" USAGE_INDENT : " ");
            wrap(f, line);
        }
    }
}

int lc_train_args_parse(lc_train_args *a, int argc, char **argv, char *err, size_t len)
{
    /* the preset first: shape flags override it, whatever their order */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--model")) a->model = argv[i + 1];
    if (lc_model_preset(a->model, &a->o.model))
        return snprintf(err, len, "unknown --model '%s' (tiny, small, llama3-8b)", a->model), -1;
    a->o.model_name = a->model;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return 1;
        if (!strcmp(s, "--worker")) { a->worker = 1; continue; }
        const opt *p = find(s);
        if (!p) return snprintf(err, len, "%s %s", s, strncmp(s, "--", 2) ? "is not an option (see --help)" :
                                "is an unknown option (see --help)"), -1;
        if (a->n_given < LC_TRAIN_MAX_GIVEN) a->given[a->n_given++] = p->flag;
        if (p->kind == K_RESUME) { /* the folder is optional */
            a->o.resume = v && strncmp(v, "--", 2) ? argv[++i] : "";
            continue;
        }
        if (p->kind == K_SWITCH) v = NULL;
        else if (!v) return snprintf(err, len, "%s needs a value (%s)", s, p->arg), -1;
        else i++;
        if (set(a, p, v, err, len)) return -1;
    }
    return 0;
}

int lc_train_args_given(const lc_train_args *a, const char *flag)
{
    for (int i = 0; i < a->n_given; i++)
        if (!strcmp(a->given[i], flag)) return 1;
    return 0;
}

/* The shortest text that reads back as x: what the user typed, not 0.100000001. */
static void float_text(float x, char *buf, size_t len)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

/* What checkpoint state st recorded for option p, as its flag takes it; 0 when it did not. */
static int recorded(const lc_ckpt_state *st, const lc_train_args *a, const opt *p, char *buf, size_t len)
{
    const char *f = p->flag;
    int run = st->has_run;
#define IS(x) !strcmp(f, x)
    if (IS("--seq")) snprintf(buf, len, "%lld", (long long)st->seq_len);
    else if (IS("--seed")) snprintf(buf, len, "%llu", (unsigned long long)st->seed);
    else if (IS("--wd")) float_text(st->weight_decay, buf, len);
    else if (IS("--warmup") && st->total_steps > 0) snprintf(buf, len, "%lld", (long long)st->warmup);
    else if (IS("--lr")) float_text(st->lr, buf, len);
    /* lr_min follows a new --lr unless given itself */
    else if (IS("--lr-min") && !lc_train_args_given(a, "--lr")) float_text(st->lr_min, buf, len);
    else if (IS("--layout") && st->layout[0]) snprintf(buf, len, "%s", st->layout);
    else if (!run) return 0;
    else if (IS("--dtype")) snprintf(buf, len, "%s", st->dtype);
    else if (IS("--bf16-dot") && st->bf16_dot[0]) snprintf(buf, len, "%s", st->bf16_dot);
    else if (IS("--doc-mask")) snprintf(buf, len, "%d", st->doc_mask);
    else if (IS("--doc-sep")) snprintf(buf, len, "%d", st->doc_sep);
    else if (IS("--cp-algo")) snprintf(buf, len, "%s", st->cp_algo);
    /* a new --cp-algo brings its own degree */
    else if (IS("--ulysses") && st->ulysses > 0 && !lc_train_args_given(a, "--cp-algo")) snprintf(buf, len, "%d", st->ulysses);
    else if (IS("--window")) snprintf(buf, len, "%lld", (long long)st->window);
    else if (IS("--permute")) snprintf(buf, len, "%s", st->lowering);
    else if (IS("--clip")) float_text(st->clip, buf, len);
    /* the data: --data names both files */
    else if (IS("--train") && !lc_train_args_given(a, "--data")) snprintf(buf, len, "%s", st->train_path);
    else if (IS("--val") && !lc_train_args_given(a, "--data") && st->val_path[0]) snprintf(buf, len, "%s", st->val_path);
    /* the global batch is kept: the micro-batches per replica follow this run's --dp */
    else if (IS("--accum") && st->global_batch % a->o.plan.dp == 0)
        snprintf(buf, len, "%lld", (long long)(st->global_batch / a->o.plan.dp));
    else return 0;
#undef IS
    return 1;
}

int lc_train_args_resume(lc_train_args *a, const lc_ckpt_state *st, const char *ck, char *took, size_t took_len,
                         char *said, size_t said_len, char *err, size_t len)
{
    size_t n = 0, nt = 0;
    said[0] = took[0] = 0;
    for (int g = 0; GROUP_TABLE[g].title; g++)
        for (const opt *p = GROUP_TABLE[g].opts; p->flag; p++) {
            char v[LC_TRAIN_PATH_MAX], e[256];
            if (p->resume == R_FREE || !recorded(st, a, p, v, sizeof v)) continue;
            if (lc_train_args_given(a, p->flag)) {
                /* one that may change (lr, CP algorithm, layout, lowering, val) is said when it does */
                char mine[LC_TRAIN_PATH_MAX], theirs[LC_TRAIN_PATH_MAX];
                lc_train_args b = *a;
                show(a, p, mine, sizeof mine);
                if (p->resume == R_MESH && !set(&b, p, v, e, sizeof e)) {
                    show(&b, p, theirs, sizeof theirs);
                    if (strcmp(mine, theirs) && n < said_len)
                        n += (size_t)snprintf(said + n, said_len - n, "%s%s %s (written with %s)", n ? ", " : "",
                                              p->flag, mine, theirs);
                }
                continue;
            }
            if (set(a, p, v, e, sizeof e))
                return snprintf(err, len, "%s: its recorded %s: %s", ck, p->flag, e), -1;
            if (nt < took_len && !(p->kind == K_SWITCH && !strcmp(v, "0")))
                nt += (size_t)snprintf(took + nt, took_len - nt, "%s%s%s%s", nt ? " " : "", p->flag,
                                       p->kind == K_SWITCH ? "" : " ", p->kind == K_SWITCH ? "" : v);
        }
    if (st->has_run && !lc_train_args_given(a, "--accum") && st->global_batch % a->o.plan.dp)
        return snprintf(err, len, "%s was written with %lld sequences per step (--dp %d x --accum %d): --dp %d cannot "
                        "keep that batch (give a --dp that divides %lld)", ck, (long long)st->global_batch, st->dp,
                        st->accum, a->o.plan.dp, (long long)st->global_batch), -1;
    return 0;
}

"""Copies src/attn/driver.c with rdtsc timers around the parts of the forward's tile loop
(fwd_task) and the fused backward's (bwd_fused_task), for bench/attn-parts/run.sh. The timers
live only in the copy: the library is never built with them. Forward parts: the score matmul,
the mask and online softmax, the P.V matmul, the rest of the loop (prefetch, classification).
Backward parts: the Q K^T and dO V^T recomputation with the softmax and its gradient
(bwd_tile), the dQ matmul, the dV and dK matmuls, the Q-side copies.

usage: python3 instrument.py IN.c OUT.c"""
import sys

src = open(sys.argv[1]).read()
HDR = '''#include "attn/internal.h"
#include <stdio.h>
#include <x86intrin.h>
static unsigned long long parts_[8];
__attribute__((destructor)) static void parts_print(void)
{
    fprintf(stderr, "parts recompute %.0f dq %.0f dvdk %.0f copies %.0f\\n", (double)parts_[0],
            (double)parts_[1], (double)parts_[2], (double)parts_[3]);
    fprintf(stderr, "fparts pv %.0f qk %.0f softmax %.0f other %.0f\\n", (double)parts_[7],
            (double)parts_[5], (double)parts_[6], (double)parts_[4]);
}
#define PART_START unsigned long long part_t0_ = __rdtsc();
#define PART(i) { unsigned long long t1_ = __rdtsc(); parts_[i] += t1_ - part_t0_; part_t0_ = t1_; }
'''


def after_statement(s, anchor, text, fn='static void bwd_fused_task('):
    i = s.index(anchor, s.index(fn))
    j = s.index(';', i) + 1
    return s[:j] + text + s[j:]


def before(s, anchor, text, fn='static void bwd_fused_task('):
    i = s.index(anchor, s.index(fn))
    return s[:i] + text + s[i:]


s = src.replace('#include "attn/internal.h"\n', HDR, 1)
head = '            for (int h0 = kvh * c->g; h0 < (kvh + 1) * c->g; h0 += bg) {\n'
i = s.index(head, s.index('static void bwd_fused_task('))
s = s[:i + len(head)] + '                PART_START\n' + s[i + len(head):]
s = after_statement(s, 'rows_in(dQc', ' PART(3)')
s = after_statement(s, 'bwd_tile(c, cls, h0 + hh', ' PART(0)')
# the end of the per-head loop (dQ) and of the dV/dK loop, found by the comments and code
# that follow them
s = before(s, '                    }\n                    /* A partial Q tile', '                    PART(1)\n')
s = before(s, '                }\n                rows_out(c->dq', '                    PART(2)\n')
s = after_statement(s, 'rows_out(c->dq', ' PART(3)')
F = 'static void fwd_task('
s = before(s, '    for (int kt = 0; kt < c->nkt; kt++) {', '    PART_START\n', F)
s = before(s, 'if (c->ktb)\n                c->ops->qk_bf16(nq, d', 'PART(4) ', F)
s = before(s, 'mask_tile(c, cls, q0, nq, k0, nk, S);', 'PART(5) ', F)
s = after_statement(s, 'c->ops->softmax_fwd(', ' PART(6)', F)
# the P.V matmul: one helper call now, a loop of gemm calls before 2026-12-01's cleanup
pv = 'gemm_panels(c, nq, d, nk, S, BK'
if pv not in s[s.index(F):]:
    pv = 'c->ops->gemm(nq, c->vw, nk, S, BK'
s = after_statement(s, pv, ' PART(7)', F)
for k in ('PART(0)', 'PART(1)', 'PART(2)', 'PART(3)', 'PART(4)', 'PART(5)', 'PART(6)', 'PART(7)'):
    if k not in s:
        sys.exit('instrument.py: could not place ' + k)
open(sys.argv[2], 'w').write(s)

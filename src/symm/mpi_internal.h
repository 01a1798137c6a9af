/* Private state of the MPI backend (mpi.c, mpi_coll.c). */
#ifndef LONGCTX_SYMM_MPI_INTERNAL_H
#define LONGCTX_SYMM_MPI_INTERNAL_H

#include <mpi.h>
#include "symm/internal.h"

#define LC_MPI_ORIGINS 4096 /* signal values in flight before a flush */

typedef struct {
    MPI_Comm world;     /* a duplicate of MPI_COMM_WORLD, errors returned */
    MPI_Comm node;      /* the PEs of my host */
    MPI_Win swin;       /* the segments, shared on my host */
    MPI_Win win;        /* the same memory as one window over the world (remote peers only) */
    uint8_t *seg;       /* my segment: header | control region | heap */
    size_t seg_bytes, hdr_bytes;
    uint8_t **peer_seg; /* [n]: PE p's segment mapped here when it shares my host, else NULL */
    int all_local;      /* every PE shares my host: no MPI in the data path at all */
    int dirty;          /* remote operations issued since the last flush */
    int req_waits;      /* waits on MPI requests in progress: they need short naps */
    unsigned origin_i;
    uint64_t origin[LC_MPI_ORIGINS];
} lc_mpi_state;

typedef struct {
    MPI_Comm comm;
    int own;                             /* created for the team (not the world's) */
    MPI_Request perm[LC_PERM_CH][2];     /* two-sided permute: receive, send */
} lc_mpi_team;

/* Records an MPI failure as the world's error (status), naming what was done. */
int lc__mpi_status(lc_world *w, int mrc, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int lc__mpi_team_init(lc_team *t);
void lc__mpi_team_free(lc_team *t);
int lc__mpi_perm_start(struct lc__perm *r);
int lc__mpi_perm_done(struct lc__perm *r, const char *op);
extern const lc_coll_ops lc__mpi_coll;

#endif

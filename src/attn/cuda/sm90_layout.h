/* Shared-memory tiles of the Hopper (sm_90a) forward kernel and the wgmma matrix descriptors
 * that read them, as plain functions: the kernel builds its descriptors with these, and the
 * CPU test (tests/gpu/test_gpu_logic.c) checks them against a brute-force model of what
 * TMA writes and what wgmma reads, so a wrong offset or field shows up on every machine.
 *
 * Tiles hold 16-bit elements. TMA writes a [rows x D] tile with CU_TENSOR_MAP_SWIZZLE_128B as
 * D/64 chunks of 64 columns (128 bytes a row), chunk c at c * rows * 128; inside each chunk
 * the 16-byte unit u of row r lands at unit u ^ (r & 7) (the swizzle acts on address bits
 * 4-6 by bits 7-9, so every tile starts 1024-byte aligned). */
#ifndef LONGCTX_SM90_LAYOUT_H
#define LONGCTX_SM90_LAYOUT_H

#include <stdint.h>

#include "attn/core.h" /* LC_HD */

/* Byte offset of element (r, col) in a swizzled tile of `rows` rows. */
LC_HD uint32_t lc_sm90_tile_off(int rows, int r, int col) {
    const uint32_t chunk = (uint32_t)col >> 6, e = (uint32_t)col & 63u;
    const uint32_t unit = (e >> 3) ^ ((uint32_t)r & 7u);
    return chunk * (uint32_t)rows * 128u + (uint32_t)r * 128u + unit * 16u + (e & 7u) * 2u;
}

/* wgmma shared-memory matrix descriptor: start address, leading and stride byte offsets
 * (all >> 4, 14 bits each, at bits 0, 16, 32), base offset 0 (1024-aligned atoms), layout
 * type 1 = 128-byte swizzle at bits 62-63. */
LC_HD uint64_t lc_sm90_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
    return (uint64_t)((saddr >> 4) & 0x3FFFu) | ((uint64_t)((lbo >> 4) & 0x3FFFu) << 16) |
           ((uint64_t)((sbo >> 4) & 0x3FFFu) << 32) | (1ull << 62);
}

/* K-major operand (Q as A, K as B of S = Q K^T): rows [r0, r0 + 8n) of a tile of `rows`
 * rows, k-step kk (columns 16 kk .. 16 kk + 15). Within a 128-byte row the k-step is a plain
 * 32-byte advance (the hardware swizzles the final address); 8-row groups are 1024 apart;
 * the leading offset is unused in this mode (1 by convention). */
LC_HD uint64_t lc_sm90_desc_kmajor(uint32_t tile, int rows, int r0, int kk) {
    return lc_sm90_desc(tile + ((uint32_t)kk >> 2) * (uint32_t)rows * 128u + (uint32_t)r0 * 128u +
                            ((uint32_t)kk & 3u) * 32u,
                        16u, 1024u);
}

/* N-major operand (V as B of O += P V, read transposed): keys 16 kk .. 16 kk + 15 of a
 * tile of `rows` keys. Leading offset: from one 64-column chunk of D to the next; stride
 * offset: from 8 keys to the next 8. */
LC_HD uint64_t lc_sm90_desc_nmajor(uint32_t tile, int rows, int kk) {
    return lc_sm90_desc(tile + (uint32_t)kk * 2048u, (uint32_t)rows * 128u, 1024u);
}

/* The model: the shared-memory byte address wgmma reads for element (mn, k) of one k16
 * step of an operand described by desc (the canonical 128B-swizzle layouts, 16-bit types:
 * K-major ((8,m),(8,2)) : ((128 B, SBO), (2 B, 16 B)); MN-major ((8,8,m),(8,2)) :
 * ((2 B, 16 B, LBO), (128 B, SBO))), swizzle applied to the final address. */
LC_HD uint32_t lc_sm90_desc_read(uint64_t desc, int kmajor, int mn, int k) {
    const uint32_t start = (uint32_t)(desc & 0x3FFFu) << 4;
    const uint32_t lbo = (uint32_t)((desc >> 16) & 0x3FFFu) << 4;
    const uint32_t sbo = (uint32_t)((desc >> 32) & 0x3FFFu) << 4;
    const uint32_t i = (uint32_t)mn, kk = (uint32_t)k;
    const uint32_t off = kmajor ? (i & 7u) * 128u + (i >> 3) * sbo + (kk & 7u) * 2u + (kk >> 3) * 16u
                                : (i & 63u) * 2u + (i >> 6) * lbo + (kk & 7u) * 128u + (kk >> 3) * sbo;
    const uint32_t a = start + off;
    return a ^ (((a >> 7) & 7u) << 4);
}

#endif

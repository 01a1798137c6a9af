/* A minimal PNG writer: 8-bit RGB, no filtering, the zlib stream made of stored (uncompressed)
 * deflate blocks, with CRC-32 and Adler-32 computed here. A plot is a few hundred KiB; no
 * library is needed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/internal.h"

uint32_t lc_crc32(uint32_t crc, const void *data, size_t n)
{
    /* The reflected CRC-32 of PNG and zlib (polynomial 0xEDB88320), a nibble table at a time. */
    static const uint32_t tab[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ tab[crc & 15];
        crc = (crc >> 4) ^ tab[crc & 15];
    }
    return ~crc;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t hdr[8];
    be32(hdr, n);
    memcpy(hdr + 4, type, 4);
    uint32_t crc = lc_crc32(lc_crc32(0, type, 4), data, n);
    uint8_t tail[4];
    be32(tail, crc);
    return fwrite(hdr, 8, 1, f) == 1 && (n == 0 || fwrite(data, n, 1, f) == 1) &&
           fwrite(tail, 4, 1, f) == 1;
}

int lc_png_write(const char *path, int width, int height, const uint8_t *rgb)
{
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
        return lc_train__fail(LC_ERR_ARG, "png %s: bad size %d x %d", path, width, height);
    size_t row = (size_t)width * 3 + 1, raw = row * (size_t)height;
    size_t blocks = (raw + 65534) / 65535;
    size_t zn = 2 + raw + 5 * blocks + 4;
    uint8_t *z = malloc(zn);
    if (!z) return lc_train__fail(LC_ERR_SYS, "png %s: out of memory", path);
    size_t k = 0;
    z[k++] = 0x78; /* deflate, 32K window */
    z[k++] = 0x01; /* no preset dictionary, fastest; (0x78 << 8 | 0x01) % 31 == 0 */
    uint32_t a = 1, b = 0; /* Adler-32 of the raw stream */
    size_t left = raw, y = 0, x = 0; /* x: byte within the current row, -1 is the filter byte */
    while (left > 0) {
        uint16_t len = (uint16_t)(left > 65535 ? 65535 : left);
        left -= len;
        z[k++] = left == 0 ? 1 : 0; /* BFINAL, BTYPE 00 (stored) */
        z[k++] = (uint8_t)len;
        z[k++] = (uint8_t)(len >> 8);
        z[k++] = (uint8_t)~len;
        z[k++] = (uint8_t)(~len >> 8);
        for (uint16_t i = 0; i < len; i++) {
            uint8_t v = x == 0 ? 0 : rgb[y * (size_t)width * 3 + x - 1];
            if (++x == row) {
                x = 0;
                y++;
            }
            z[k++] = v;
            a = (a + v) % 65521;
            b = (b + a) % 65521;
        }
    }
    be32(z + k, b << 16 | a);
    k += 4;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(z);
        return lc_train__fail(LC_ERR_SYS, "cannot create %s: %s", path, strerror(errno));
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    uint8_t ihdr[13];
    be32(ihdr, (uint32_t)width);
    be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* truecolour */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering (every row uses filter 0) */
    ihdr[12] = 0; /* no interlace */
    int ok = fwrite(sig, 8, 1, f) == 1 && chunk(f, "IHDR", ihdr, 13) &&
             chunk(f, "IDAT", z, (uint32_t)k) && chunk(f, "IEND", NULL, 0);
    ok = (fclose(f) == 0) && ok;
    free(z);
    if (!ok) return lc_train__fail(LC_ERR_SYS, "cannot write %s: %s", path, strerror(errno));
    return LC_OK;
}

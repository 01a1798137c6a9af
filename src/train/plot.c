/* Line plots into an RGB canvas with a 3x5 pixel font (drawn at 2x), written as PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/internal.h"

typedef struct {
    int w, h;
    uint8_t *px;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t *rgb)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3, rgb, 3);
}

static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t *rgb, int thick)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        for (int t = 0; t < thick; t++) {
            put(c, x0, y0 + t, rgb);
            put(c, x0 + t, y0, rgb);
        }
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* Rows of 3 bits, top first; letters are drawn as capitals whatever their case. */
static const struct { char ch; uint8_t rows[5]; } FONT[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 1, 1}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
    {'+', {0, 2, 7, 2, 0}}, {'=', {0, 7, 0, 7, 0}}, {':', {0, 2, 0, 2, 0}}, {'/', {1, 1, 2, 4, 4}},
    {',', {0, 0, 0, 2, 4}}, {'(', {2, 4, 4, 4, 2}}, {')', {2, 1, 1, 1, 2}}, {'_', {0, 0, 0, 0, 7}},
    {'%', {5, 1, 2, 4, 5}}, {'a', {2, 5, 7, 5, 5}}, {'b', {6, 5, 6, 5, 6}}, {'c', {3, 4, 4, 4, 3}},
    {'d', {6, 5, 5, 5, 6}}, {'e', {7, 4, 6, 4, 7}}, {'f', {7, 4, 6, 4, 4}}, {'g', {3, 4, 5, 5, 3}},
    {'h', {5, 5, 7, 5, 5}}, {'i', {7, 2, 2, 2, 7}}, {'j', {1, 1, 1, 5, 2}}, {'k', {5, 5, 6, 5, 5}},
    {'l', {4, 4, 4, 4, 7}}, {'m', {5, 7, 7, 5, 5}}, {'n', {6, 5, 5, 5, 5}}, {'o', {2, 5, 5, 5, 2}},
    {'p', {6, 5, 6, 4, 4}}, {'q', {2, 5, 5, 6, 3}}, {'r', {6, 5, 6, 5, 5}}, {'s', {3, 4, 2, 1, 6}},
    {'t', {7, 2, 2, 2, 2}}, {'u', {5, 5, 5, 5, 7}}, {'v', {5, 5, 5, 5, 2}}, {'w', {5, 5, 7, 7, 5}},
    {'x', {5, 5, 2, 5, 5}}, {'y', {5, 5, 2, 2, 2}}, {'z', {7, 1, 2, 4, 7}},
};
enum { SCALE = 2, CH_W = 4 * SCALE, CH_H = 5 * SCALE };

static void text(canvas *c, int x, int y, const char *s, const uint8_t *rgb)
{
    for (; *s; s++, x += CH_W) {
        char ch = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
        for (size_t g = 0; g < sizeof FONT / sizeof FONT[0]; g++) {
            if (FONT[g].ch != ch) continue;
            for (int r = 0; r < 5; r++)
                for (int b = 0; b < 3; b++)
                    if (FONT[g].rows[r] >> (2 - b) & 1)
                        for (int dy = 0; dy < SCALE; dy++)
                            for (int dx = 0; dx < SCALE; dx++)
                                put(c, x + b * SCALE + dx, y + r * SCALE + dy, rgb);
            break;
        }
    }
}

/* A 1, 2 or 5 times a power of ten near range / 5, so tick labels are round numbers. */
static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static int text_w(const char *s) { return (int)strlen(s) * CH_W; }

int lc_plot_png(const char *path, int width, int height, const char *title, const char *xlabel,
                const char *ylabel, const lc_plot_series *series, int n_series)
{
    if (width < 160 || height < 120 || width > 4096 || height > 4096)
        return lc_train__fail(LC_ERR_ARG, "plot %s: size %d x %d outside [160..4096] x [120..4096]", path,
                              width, height);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x);
            x1 = fmax(x1, x);
            y0 = fmin(y0, y);
            y1 = fmax(y1, y);
        }
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1; /* nothing to draw: an empty frame */
    if (x1 - x0 < 1e-12) x1 = x0 + 1;
    if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;

    canvas c = {width, height, malloc((size_t)width * (size_t)height * 3)};
    if (!c.px) return lc_train__fail(LC_ERR_SYS, "plot %s: out of memory", path);
    memset(c.px, 255, (size_t)width * (size_t)height * 3);
    static const uint8_t black[3] = {0, 0, 0}, grid[3] = {225, 225, 225};
    const int L = 80, R = 20, T = 36, B = 50;
    const int pw = width - L - R, ph = height - T - B;
#define PX(x) (L + (int)lround(((x) - x0) / (x1 - x0) * (pw - 1)))
#define PY(y) (T + ph - 1 - (int)lround(((y) - y0) / (y1 - y0) * (ph - 1)))
    char buf[64];
    double xs = nice_step(x1 - x0), ys = nice_step(y1 - y0);
    for (double xv = ceil(x0 / xs - 1e-9) * xs; xv <= x1 + 1e-9 * xs; xv += xs) {
        int px = PX(xv);
        line(&c, px, T, px, T + ph - 1, grid, 1);
        line(&c, px, T + ph, px, T + ph + 4, black, 1);
        snprintf(buf, sizeof buf, "%.6g", fabs(xv) < 1e-9 * xs ? 0.0 : xv);
        text(&c, px - text_w(buf) / 2, T + ph + 8, buf, black);
    }
    for (double yv = ceil(y0 / ys - 1e-9) * ys; yv <= y1 + 1e-9 * ys; yv += ys) {
        int py = PY(yv);
        line(&c, L, py, L + pw - 1, py, grid, 1);
        line(&c, L - 5, py, L - 1, py, black, 1);
        snprintf(buf, sizeof buf, "%.6g", fabs(yv) < 1e-9 * ys ? 0.0 : yv);
        text(&c, L - 8 - text_w(buf), py - CH_H / 2, buf, black);
    }
    line(&c, L, T, L, T + ph - 1, black, 1);
    line(&c, L, T + ph - 1, L + pw - 1, T + ph - 1, black, 1);
    line(&c, L + pw - 1, T, L + pw - 1, T + ph - 1, black, 1);
    line(&c, L, T, L + pw - 1, T, black, 1);
    if (title) text(&c, L + (pw - text_w(title)) / 2, 12, title, black);
    if (xlabel) text(&c, L + (pw - text_w(xlabel)) / 2, height - 18, xlabel, black);
    if (ylabel) text(&c, 6, 12, ylabel, black);

    for (int s = 0; s < n_series; s++) {
        const lc_plot_series *se = &series[s];
        int have = 0, lx = 0, ly = 0;
        for (int i = 0; i < se->n; i++) {
            if (!isfinite(se->x[i]) || !isfinite(se->y[i])) continue;
            int px = PX(se->x[i]), py = PY(se->y[i]);
            if (have) line(&c, lx, ly, px, py, se->rgb, 2);
            else line(&c, px, py, px, py, se->rgb, 2);
            if (se->n < 40) /* few points (validation): mark them */
                for (int d = -2; d <= 2; d++) line(&c, px - 2, py + d, px + 2, py + d, se->rgb, 1);
            have = 1;
            lx = px;
            ly = py;
        }
        if (se->label) { /* legend, top right */
            int ly2 = T + 10 + s * (CH_H + 8), lx2 = L + pw - 16 - text_w(se->label) - 28;
            line(&c, lx2, ly2 + CH_H / 2, lx2 + 20, ly2 + CH_H / 2, se->rgb, 3);
            text(&c, lx2 + 28, ly2, se->label, black);
        }
    }
#undef PX
#undef PY
    int rc = lc_png_write(path, width, height, c.px);
    free(c.px);
    return rc;
}

/* SVG heatmaps of the needle grid: x = context length, y = needle depth
 * (0% = right after BOS, at the top), cells coloured red (0%) - yellow
 * (50%) - green (100%) by accuracy, a dashed line at L_train.  pe-probe's
 * svg.c draws line charts only, hence this small writer. */
#include "needle.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Red - yellow - green (the end and middle colours of ColorBrewer RdYlGn). */
static void color(double a, char *buf, size_t n) {
  static const double stops[3][3] = {{215, 48, 39}, {254, 224, 139}, {26, 152, 80}};
  if (!isfinite(a)) {
    snprintf(buf, n, "#cccccc");
    return;
  }
  a = a < 0 ? 0 : a > 1 ? 1 : a;
  int i = a < 0.5 ? 0 : 1;
  double t = a < 0.5 ? a / 0.5 : (a - 0.5) / 0.5;
  int rgb[3];
  for (int k = 0; k < 3; k++) rgb[k] = (int)lround(stops[i][k] + t * (stops[i + 1][k] - stops[i][k]));
  snprintf(buf, n, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static double acc(const nd_cell *c) { return c->trials ? (double)c->correct / c->trials : NAN; }

/* Draw one grid with its top-left cell corner at (x0, y0). */
static void grid_body(FILE *fp, const nd_grid *g, double x0, double y0, double cw, double ch,
                      bool text, bool labels, double font) {
  char col[16];
  for (uint32_t d = 0; d < g->n_depths; d++)
    for (uint32_t l = 0; l < g->n_lengths; l++) {
      double a = acc(&g->cell[l][d]);
      color(a, col, sizeof col);
      double x = x0 + l * cw, y = y0 + d * ch;
      fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
              "stroke=\"#ffffff\" stroke-width=\"0.5\"><title>length %u, depth %g%%: %u/%u "
              "(%.1f%%)</title></rect>\n", x, y, cw, ch, col, g->lengths[l], g->depths[d],
              g->cell[l][d].correct, g->cell[l][d].trials, 100 * a);
      if (text && isfinite(a))
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"middle\" "
                "fill=\"#222\">%.0f</text>\n", x + cw / 2, y + ch / 2 + font * 0.35, font, 100 * a);
    }
  /* dashed line after the last column whose length is <= L_train */
  int last = -1;
  for (uint32_t l = 0; l < g->n_lengths; l++)
    if (g->lengths[l] <= g->L_train) last = (int)l;
  if (last >= 0) {
    double x = x0 + (last + 1) * cw;
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
            "stroke-width=\"2\" stroke-dasharray=\"6,4\"/>\n", x, y0 - 6, x, y0 + g->n_depths * ch + 6);
    if (labels)
      fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">"
              "L_train = %u</text>\n", x, y0 - 10, g->L_train);
  }
  if (!labels) return;
  for (uint32_t d = 0; d < g->n_depths; d++)
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g%%</text>\n",
            x0 - 6, y0 + d * ch + ch / 2 + 4, g->depths[d]);
  for (uint32_t l = 0; l < g->n_lengths; l++) {
    double a = nd_length_accuracy(g, l);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%u</text>\n",
            x0 + l * cw + cw / 2, y0 + g->n_depths * ch + 16, g->lengths[l]);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\" "
            "fill=\"#555\">%.0f%%</text>\n", x0 + l * cw + cw / 2, y0 + g->n_depths * ch + 30,
            100 * a);
  }
}

static void colorbar(FILE *fp, double x, double y, double h) {
  char col[16];
  for (int i = 0; i < 50; i++) {
    color(1.0 - (i + 0.5) / 50.0, col, sizeof col);
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.2f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n", x,
            y + i * h / 50, h / 50 + 0.3, col);
  }
  fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" fill=\"none\" stroke=\"#444\" stroke-width=\"0.5\"/>\n", x, y, h);
  for (int k = 0; k <= 4; k++)
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%d%%</text>\n", x + 18,
            y + h * (1 - k / 4.0) + 4, 25 * k);
}

static char *finish(FILE *fp, char **buf) {
  fputs("</svg>\n", fp);
  if (fclose(fp)) return free(*buf), NULL;
  return *buf;
}

static const char *grid_name(const nd_grid *g, char *buf, size_t n) {
  snprintf(buf, n, "%s%s", g->scheme, g->finetuned ? " + fine-tune" : "");
  return buf;
}

char *nd_svg_heatmap(const nd_grid *g, double threshold, size_t *len) {
  char *buf = NULL;
  FILE *fp = open_memstream(&buf, len);
  if (!fp) return NULL;
  const double cw = 62, ch = 24, x0 = 80, y0 = 104;
  const double W = fmax(x0 + g->n_lengths * cw + 90, 500), Hh = y0 + g->n_depths * ch + 80;
  char nm[128];
  fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n", W, Hh, W, Hh);
  uint32_t eff = nd_effective_length(g, threshold);
  uint32_t trials = g->cell[0][0].trials;
  fprintf(fp, "<text x=\"20\" y=\"22\" font-size=\"15\" font-weight=\"bold\">needle retrieval: "
          "%s</text>\n", grid_name(g, nm, sizeof nm));
  fprintf(fp, "<text x=\"20\" y=\"40\" font-size=\"11\" fill=\"#444\">backend %s; exact-match "
          "accuracy %%, %u trials per cell</text>\n", g->backend, trials);
  fprintf(fp, "<text x=\"20\" y=\"55\" font-size=\"11\" fill=\"#444\">tiny model trained here at "
          "L_train = %u; synthetic task, not an LLM score</text>\n", g->L_train);
  fprintf(fp, "<text x=\"20\" y=\"70\" font-size=\"11\" fill=\"#444\">effective length (accuracy "
          "over all depths &gt;= %.0f%% up to it): %u (%gx L_train)</text>\n", 100 * threshold,
          eff, (double)eff / g->L_train);
  grid_body(fp, g, x0, y0, cw, ch, true, true, 11);
  fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">context length "
          "(tokens); below: accuracy over all depths</text>\n", x0 + g->n_lengths * cw / 2,
          y0 + g->n_depths * ch + 50);
  fprintf(fp, "<text transform=\"translate(18,%.1f) rotate(-90)\" font-size=\"12\" "
          "text-anchor=\"middle\">needle depth</text>\n", y0 + g->n_depths * ch / 2);
  colorbar(fp, x0 + g->n_lengths * cw + 24, y0, g->n_depths * ch);
  return finish(fp, &buf);
}

char *nd_svg_compare(const nd_grid *const *g, size_t n, double threshold, const char *title,
                     size_t *len) {
  char *buf = NULL;
  FILE *fp = open_memstream(&buf, len);
  if (!fp || n == 0) {
    if (fp) fclose(fp), free(buf);
    return NULL;
  }
  /* Row 0: without fine-tune; row 1: fine-tuned (when there are any). */
  size_t cols = 0, n0 = 0, n1 = 0;
  for (size_t i = 0; i < n; i++) g[i]->finetuned ? n1++ : n0++;
  cols = n0 > n1 ? n0 : n1;
  const int rows = (n0 ? 1 : 0) + (n1 ? 1 : 0);
  const double cw = 24, ch = 12, pw = g[0]->n_lengths * cw, ph = g[0]->n_depths * ch;
  const double gapx = 34, gapy = 78, x0 = 60, y0 = 116;
  const double W = fmax(x0 + cols * (pw + gapx) + 60, 720), Hh = y0 + rows * ph + (rows - 1) * gapy + 40;
  fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
          "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n", W, Hh, W, Hh);
  fprintf(fp, "<text x=\"20\" y=\"22\" font-size=\"15\" font-weight=\"bold\">needle retrieval "
          "by scheme</text>\n");
  fprintf(fp, "<text x=\"20\" y=\"40\" font-size=\"11\" fill=\"#444\">%s</text>\n", title);
  fprintf(fp, "<text x=\"20\" y=\"55\" font-size=\"11\" fill=\"#444\">x: context length %u .. %u "
          "(dashed: L_train = %u); y: needle depth %g%% (top) .. %g%%</text>\n", g[0]->lengths[0],
          g[0]->lengths[g[0]->n_lengths - 1], g[0]->L_train, g[0]->depths[0],
          g[0]->depths[g[0]->n_depths - 1]);
  fprintf(fp, "<text x=\"20\" y=\"70\" font-size=\"11\" fill=\"#444\">colour: accuracy, 0%% red, "
          "50%% yellow, 100%% green; eff: effective length, the longest length whose</text>\n");
  fprintf(fp, "<text x=\"20\" y=\"85\" font-size=\"11\" fill=\"#444\">accuracy over all depths "
          "(and every shorter length's) is &gt;= %.0f%%</text>\n", 100 * threshold);
  size_t c0 = 0, c1 = 0;
  for (size_t i = 0; i < n; i++) {
    int row = n0 && !g[i]->finetuned ? 0 : (n0 ? 1 : 0);
    size_t col = g[i]->finetuned ? c1++ : c0++;
    double x = x0 + col * (pw + gapx), y = y0 + row * (ph + gapy);
    char nm[128];
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"bold\" "
            "text-anchor=\"middle\">%s</text>\n", x + pw / 2, y - 16, g[i]->scheme);
    (void)nm;
    uint32_t eff = nd_effective_length(g[i], threshold);
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">eff %u "
            "(%gx)</text>\n", x + pw / 2, y - 4, eff, (double)eff / g[i]->L_train);
    grid_body(fp, g[i], x, y + 4, cw, ch, false, false, 8);
    for (uint32_t l = 0; l < g[i]->n_lengths; l += (g[i]->n_lengths > 6 ? 2 : 1))
      fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" text-anchor=\"middle\">%u</text>\n",
              x + l * cw + cw / 2, y + 4 + ph + 11, g[i]->lengths[l]);
    if (col == 0) {
      fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" text-anchor=\"end\">%g%%</text>\n",
              x - 3, y + 4 + ch / 2 + 3, g[i]->depths[0]);
      fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8\" text-anchor=\"end\">%g%%</text>\n",
              x - 3, y + 4 + ph - ch / 2 + 3, g[i]->depths[g[i]->n_depths - 1]);
      fprintf(fp, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" font-size=\"10\" "
              "text-anchor=\"middle\">%s</text>\n", x - 34, y + 4 + ph / 2,
              g[i]->finetuned ? "fine-tuned" : "no fine-tune");
    }
  }
  colorbar(fp, W - 50, y0 + 4, rows * ph + (rows - 1) * gapy);
  return finish(fp, &buf);
}

typedef struct nd_bytes {
  const char *data;
  size_t len;
} nd_bytes;

static int put_bytes(void *user, FILE *fp) {
  const nd_bytes *b = user;
  return fwrite(b->data, 1, b->len, fp) != b->len;
}

int nd_write_file(pe_ctx *ctx, const char *path, const char *data, size_t len) {
  nd_bytes b = {data, len};
  return pe_write_atomic(ctx, path, put_bytes, &b);
}

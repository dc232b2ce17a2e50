/* The character classes of the glyph datasets. glyphs100 keeps one shape of
 * each group that looks the same once a glyph is scaled to fill its box:
 * o/O/0 -> O, l/I/1 -> 1, c/C, s/S, u/U, v/V, w/W, x/X, z/Z, p/P -> capitals,
 * Greek capitals equal to Latin ones (Alpha, Beta, ...) dropped, and so are
 * the Greek small letters that repeat a kept shape (gamma ~ y, eta ~ n,
 * theta ~ Theta, iota, kappa, nu, omicron, pi ~ Pi, rho ~ p, final sigma ~ C,
 * tau, upsilon, phi ~ Phi, chi ~ X, psi ~ Psi), Cyrillic capitals equal to
 * Latin or Greek ones, ze ~ 3, el ~ Lambda, soft sign ~ b, short i ~ I,
 * shcha ~ sha; and symbols that are small versions of kept shapes. */
#include "studygen.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

typedef struct named_cp {
    const char *name;
    uint32_t cp;
} named_cp;

static const named_cp glyphs100[] = {
    {"cyrillic_capital_be", 0x0411},   {"cyrillic_capital_che", 0x0427},  {"cyrillic_capital_de", 0x0414},
    {"cyrillic_capital_e", 0x042D},    {"cyrillic_capital_hard_sign", 0x042A}, {"cyrillic_capital_i", 0x0418},
    {"cyrillic_capital_sha", 0x0428},  {"cyrillic_capital_tse", 0x0426},  {"cyrillic_capital_ya", 0x042F},
    {"cyrillic_capital_yeru", 0x042B}, {"cyrillic_capital_yu", 0x042E},   {"cyrillic_capital_zhe", 0x0416},
    {"digit_1", '1'}, {"digit_2", '2'}, {"digit_3", '3'}, {"digit_4", '4'}, {"digit_5", '5'},
    {"digit_6", '6'}, {"digit_7", '7'}, {"digit_8", '8'}, {"digit_9", '9'},
    {"greek_capital_delta", 0x0394}, {"greek_capital_gamma", 0x0393}, {"greek_capital_lambda", 0x039B},
    {"greek_capital_omega", 0x03A9}, {"greek_capital_phi", 0x03A6},   {"greek_capital_pi", 0x03A0},
    {"greek_capital_psi", 0x03A8},   {"greek_capital_sigma", 0x03A3}, {"greek_capital_theta", 0x0398},
    {"greek_capital_xi", 0x039E},
    {"greek_small_alpha", 0x03B1},   {"greek_small_beta", 0x03B2},    {"greek_small_delta", 0x03B4},
    {"greek_small_epsilon", 0x03B5}, {"greek_small_lambda", 0x03BB},  {"greek_small_mu", 0x03BC},
    {"greek_small_omega", 0x03C9},   {"greek_small_sigma", 0x03C3},   {"greek_small_xi", 0x03BE},
    {"greek_small_zeta", 0x03B6},
    {"latin_capital_A", 'A'}, {"latin_capital_B", 'B'}, {"latin_capital_C", 'C'}, {"latin_capital_D", 'D'},
    {"latin_capital_E", 'E'}, {"latin_capital_F", 'F'}, {"latin_capital_G", 'G'}, {"latin_capital_H", 'H'},
    {"latin_capital_J", 'J'}, {"latin_capital_K", 'K'}, {"latin_capital_L", 'L'}, {"latin_capital_M", 'M'},
    {"latin_capital_N", 'N'}, {"latin_capital_O", 'O'}, {"latin_capital_P", 'P'}, {"latin_capital_Q", 'Q'},
    {"latin_capital_R", 'R'}, {"latin_capital_S", 'S'}, {"latin_capital_T", 'T'}, {"latin_capital_U", 'U'},
    {"latin_capital_V", 'V'}, {"latin_capital_W", 'W'}, {"latin_capital_X", 'X'}, {"latin_capital_Y", 'Y'},
    {"latin_capital_Z", 'Z'},
    {"latin_capital_ae", 0x00C6}, {"latin_capital_o_stroke", 0x00D8}, {"latin_capital_oe", 0x0152},
    {"latin_capital_thorn", 0x00DE},
    {"latin_small_a", 'a'}, {"latin_small_b", 'b'}, {"latin_small_d", 'd'}, {"latin_small_e", 'e'},
    {"latin_small_f", 'f'}, {"latin_small_g", 'g'}, {"latin_small_h", 'h'}, {"latin_small_i", 'i'},
    {"latin_small_j", 'j'}, {"latin_small_k", 'k'}, {"latin_small_m", 'm'}, {"latin_small_n", 'n'},
    {"latin_small_q", 'q'}, {"latin_small_r", 'r'}, {"latin_small_t", 't'}, {"latin_small_y", 'y'},
    {"symbol_ampersand", '&'}, {"symbol_asterisk", '*'}, {"symbol_at", '@'}, {"symbol_division", 0x00F7},
    {"symbol_dollar", '$'}, {"symbol_euro", 0x20AC}, {"symbol_inverted_question", 0x00BF},
    {"symbol_number_sign", '#'}, {"symbol_percent", '%'}, {"symbol_pilcrow", 0x00B6}, {"symbol_plus", '+'},
    {"symbol_pound", 0x00A3}, {"symbol_question", '?'}, {"symbol_section", 0x00A7},
};

static const char *const cyrillic_names[32] = {
    "a",  "be", "ve",  "ghe", "de",  "ie",    "zhe",       "ze",   "i",         "short_i", "ka",
    "el", "em", "en",  "o",   "pe",  "er",    "es",        "te",   "u",         "ef",      "ha",
    "tse", "che", "sha", "shcha", "hard_sign", "yeru", "soft_sign", "e",       "yu",      "ya"};

static int cmp_name(const void *a, const void *b) { return strcmp(((const sg_class *)a)->name, ((const sg_class *)b)->name); }

static int alloc_classes(sg_classes *out, int n, sg_err *err)
{
    out->n = n;
    out->v = calloc((size_t)n, sizeof *out->v);
    return out->v ? 0 : sg_errf(err, "out of memory");
}

int sg_classes_glyphs100(sg_classes *out, sg_err *err)
{
    const int n = (int)(sizeof glyphs100 / sizeof glyphs100[0]);
    if (n != 100)
        return sg_errf(err, "internal: glyphs100 lists %d classes", n);
    if (alloc_classes(out, n, err))
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(out->v[i].name, sizeof out->v[i].name, "%s", glyphs100[i].name);
        out->v[i].cp = glyphs100[i].cp;
    }
    qsort(out->v, (size_t)n, sizeof *out->v, cmp_name); /* the image-folder reader's label order */
    return 0;
}

int sg_classes_latin(sg_classes *out, sg_err *err)
{
    if (alloc_classes(out, 26, err))
        return -1;
    for (int i = 0; i < 26; i++) {
        snprintf(out->v[i].name, sizeof out->v[i].name, "latin_small_%c", 'a' + i);
        out->v[i].cp = (uint32_t)('a' + i);
    }
    return 0;
}

int sg_classes_cyrillic(sg_classes *out, sg_err *err)
{
    if (alloc_classes(out, 32, err))
        return -1;
    for (int i = 0; i < 32; i++) {
        snprintf(out->v[i].name, sizeof out->v[i].name, "cyrillic_capital_%s", cyrillic_names[i]);
        out->v[i].cp = 0x0410u + (uint32_t)i;
    }
    return 0;
}

int sg_classes_gb2312_level1(sg_classes *out, sg_err *err)
{
    iconv_t cd = iconv_open("UTF-32LE", "GB2312");
    if (cd == (iconv_t)-1)
        return sg_errf(err, "iconv cannot convert from GB2312 (glibc's gconv modules missing?)");
    if (alloc_classes(out, 94 * 40, err)) {
        iconv_close(cd);
        return -1;
    }
    int n = 0;
    for (int row = 16; row <= 55; row++) /* level 1: rows 16-55, ordered by pinyin */
        for (int col = 1; col <= 94; col++) {
            char in[2] = {(char)(0xA0 + row), (char)(0xA0 + col)};
            unsigned char u[4];
            char *ip = in, *op = (char *)u;
            size_t il = 2, ol = 4;
            iconv(cd, NULL, NULL, NULL, NULL);
            if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || ol != 0)
                continue; /* an unassigned position (row 55 ends at 89) */
            uint32_t cp = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
            sg_class *c = &out->v[n++];
            snprintf(c->name, sizeof c->name, "cjk_%04X", (unsigned)cp);
            c->cp = cp;
            snprintf(c->extra, sizeof c->extra, "GB2312 %02d-%02d", row, col);
        }
    iconv_close(cd);
    out->n = n;
    if (n != 3755)
        return sg_errf(err, "GB2312 level 1 gave %d characters through iconv, expected 3755", n);
    return 0;
}

void sg_classes_free(sg_classes *c)
{
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

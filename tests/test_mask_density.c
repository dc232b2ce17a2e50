/* Mask density: the 0 bits of a task file's packed masks, each with its
 * exact bit count; the reader refuses a mask without it. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/mask_density.h"
#include "clvit/safetensors.h"
#include "tmp_tree.h"

/* ---- the reader on files made here ---- */

static void write_masks(const char *path, const char *count_a, const char *count_b)
{
    /* 20 bits: ones except bits 3, 7, 19 (3 zeros); padding bits 20..23 left 0 */
    static uint8_t a[3] = {0x77, 0xff, 0x07};
    static uint8_t b[1] = {0x0f}; /* 6 bits: bits 4, 5 zero */
    clv_err err = {{0}};
    clv_st_writer *w = clv_st_writer_new();
    int64_t sa[1] = {3}, sb[1] = {1};
    cr_assert_eq(clv_st_writer_add(w, "mask.blocks.0.attn.qkv.lm", CLV_DT_U8, 1, sa, a, &err), 0);
    cr_assert_eq(clv_st_writer_add(w, "mask.patch_embed.proj.f", CLV_DT_U8, 1, sb, b, &err), 0);
    if (count_a)
        cr_assert_eq(clv_st_writer_meta(w, "mask_bits.blocks.0.attn.qkv.lm", count_a, &err), 0);
    cr_assert_eq(clv_st_writer_meta(w, "mask_bits.patch_embed.proj.f", count_b, &err), 0);
    cr_assert_eq(clv_st_writer_write(w, path, &err), 0, "%s", err.msg);
    clv_st_writer_free(w);
}

Test(mask_density, counts_the_zero_bits_of_each_mask_in_model_order)
{
    char dir[64] = "/tmp/clvit-density-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/task-02.safetensors", dir);
    write_masks(path, "20", "6");
    clv_safetensors st;
    clv_err err = {{0}};
    cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
    const char *order[] = {"patch_embed.proj", "blocks.0.attn.qkv"};
    clv_mask_density d;
    cr_assert_eq(clv_mask_density_read(&st, order, 2, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n_layers, 2);
    cr_assert_str_eq(d.layers[0].name, "patch_embed.proj.f", "the model's order, not the file's");
    cr_assert_eq(d.layers[0].bits, 6);
    cr_assert_eq(d.layers[0].zero_bits, 2, "bits 6, 7 of the byte are padding, not zeros");
    cr_assert_str_eq(d.layers[1].name, "blocks.0.attn.qkv.lm");
    cr_assert_eq(d.layers[1].bits, 20);
    cr_assert_eq(d.layers[1].zero_bits, 3);
    cr_assert_eq(d.bits, 26);
    cr_assert_eq(d.zero_bits, 5);
    clv_mask_density_free(&d);
    cr_assert_eq(clv_mask_density_read(&st, NULL, 0, &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(d.layers[0].name, "blocks.0.attn.qkv.lm", "without an order: the file's");
    clv_mask_density_free(&d);
    clv_st_close(&st);

    const char *bad[] = {NULL, "16", "25", "0", "2x"}; /* missing, too few or many bits for 3 bytes, junk */
    for (int i = 0; i < 5; i++) {
        write_masks(path, bad[i], "6");
        cr_assert_eq(clv_st_open(&st, path, &err), 0, "%s", err.msg);
        cr_assert_eq(clv_mask_density_read(&st, order, 2, &d, &err), -1, "bit count '%s'", bad[i] ? bad[i] : "none");
        cr_assert(strstr(err.msg, "task-02.safetensors") && strstr(err.msg, "mask.blocks.0.attn.qkv.lm"), "%s",
                  err.msg);
        cr_assert_eq(d.n_layers, 0);
        clv_st_close(&st);
    }
    tmp_tree_remove(dir);
}

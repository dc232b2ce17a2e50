/* The manifest of a generated dataset (tools/studygen): when a run's data
 * root holds manifest.json in the study suite's format, run.json records
 * which data the run saw as "data_manifest": {path, name, seed,
 * generator_version, checksum}. */
#ifndef CLVIT_IO_DATA_MANIFEST_H
#define CLVIT_IO_DATA_MANIFEST_H

#include <cjson/cJSON.h>

#include "clvit/core.h"

/* Adds "data_manifest" to obj when data_root/manifest.json is a study
 * manifest ("format": "clvit-study-manifest-1"). No root, no file, or a
 * manifest.json that is not JSON or of another format (another tool's):
 * nothing is added. A study manifest that lacks a field, or a file that
 * cannot be read, is an error naming the file. */
int clv_data_manifest_add(cJSON *obj, const char *data_root, clv_err *err);

#endif

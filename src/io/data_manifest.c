/* run.json's "data_manifest": which generated dataset a run saw (see data_manifest.h). */
#include "io/data_manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clvit/config.h"
#include "clvit/input_file.h"

#define STUDY_FORMAT "clvit-study-manifest-1"
#define MAX_MANIFEST_BYTES (256L << 20)

int clv_data_manifest_add(cJSON *obj, const char *data_root, clv_err *err)
{
    if (!data_root || !data_root[0])
        return 0;
    char path[CLV_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/manifest.json", data_root);
    if (access(path, F_OK))
        return 0; /* no manifest: data from elsewhere */
    FILE *f = clv_input_fopen(path, err);
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = n >= 0 && n <= MAX_MANIFEST_BYTES ? malloc((size_t)n + 1) : NULL;
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        fclose(f);
        return clv_errf(err, "%s: cannot read the data manifest", path);
    }
    fclose(f);
    text[n] = 0;
    cJSON *m = cJSON_Parse(text);
    free(text);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(m, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, STUDY_FORMAT)) {
        cJSON_Delete(m); /* not a study manifest: another tool's file */
        return 0;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(m, "seed");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(m, "generator_version");
    const cJSON *checksum = cJSON_GetObjectItemCaseSensitive(m, "checksum");
    if (!cJSON_IsString(name) || !cJSON_IsNumber(seed) || !cJSON_IsString(version) || !cJSON_IsString(checksum)) {
        cJSON_Delete(m);
        return clv_errf(err, "%s: a study data manifest without a string name, generator_version and checksum and a "
                             "numeric seed (an interrupted generation? run make study-data again)",
                        path);
    }
    cJSON *d = cJSON_AddObjectToObject(obj, "data_manifest");
    cJSON_AddStringToObject(d, "path", path);
    cJSON_AddStringToObject(d, "name", name->valuestring);
    cJSON_AddNumberToObject(d, "seed", seed->valuedouble);
    cJSON_AddStringToObject(d, "generator_version", version->valuestring);
    cJSON_AddStringToObject(d, "checksum", checksum->valuestring);
    cJSON_Delete(m);
    return 0;
}

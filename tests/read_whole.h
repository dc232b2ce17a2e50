/* Whole files into memory, for the tests that compare files byte for byte. */
#ifndef CLVIT_TESTS_READ_WHOLE_H
#define CLVIT_TESTS_READ_WHOLE_H

#include <stddef.h>

/* The bytes of path, NUL-terminated (malloc'd; free it), their count in *len
 * (len may be NULL); NULL when the file cannot be opened or read. */
char *read_whole(const char *path, size_t *len);
/* The same for dir/name. */
char *read_whole_in(const char *dir, const char *name, size_t *len);

#endif

/* Temporary run directories of the end-to-end tests. */
#ifndef CLVIT_TESTS_TMP_TREE_H
#define CLVIT_TESTS_TMP_TREE_H

/* Removes dir and everything under it (ignores errors). */
void tmp_tree_remove(const char *dir);

#endif

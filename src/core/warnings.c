/* Lists of "code: sentence" warnings (see clvit/warnings.h). */
#include "clvit/warnings.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int clv_warnings_add_text(clv_warnings *w, const char *text)
{
    char *copy = strdup(text);
    if (!copy || clv_grow(&w->items, &w->cap, (size_t)w->n + 1)) {
        free(copy);
        return -1;
    }
    w->items[w->n++] = copy;
    return 0;
}

int clv_warnings_add(clv_warnings *w, const char *code, const char *fmt, ...)
{
    char text[1024];
    int off = snprintf(text, sizeof text, "%s: ", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + off, sizeof text - (size_t)off, fmt, ap);
    va_end(ap);
    return clv_warnings_add_text(w, text);
}

int clv_warnings_has(const clv_warnings *w, const char *code)
{
    size_t n = strlen(code);
    for (int i = 0; i < w->n; i++)
        if (!strncmp(w->items[i], code, n) && w->items[i][n] == ':')
            return 1;
    return 0;
}

void clv_warnings_clear(clv_warnings *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->items[i]);
    free(w->items);
    w->items = NULL;
    w->n = 0;
    w->cap = 0;
}

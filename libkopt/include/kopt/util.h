/* Small helpers every module uses: container_of, array size, monotonic time,
 * growing an array. */
#ifndef KOPT_UTIL_H
#define KOPT_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The struct that holds `ptr` as its `member` (intrusive handles, gRPC tags). */
#define kopt_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define KOPT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic nanoseconds, for rate limits and latencies (not wall time). */
static inline uint64_t kopt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A NUL-terminated copy of n bytes that need not be NUL-terminated (a
 * RowBinary string), or NULL. Not strndup: it may read past n looking for a
 * NUL, which ASan's strict_string_checks reports. */
static inline char *kopt_bytes_dup(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Makes room for `need` elements of `size` bytes in the array *p of
 * capacity *cap, doubling (from 64); 0 or -ENOMEM, *p untouched on failure. */
static inline int kopt_grow_array(void **p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 64;
    void *np;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if (size && c > SIZE_MAX / size)
        return -ENOMEM;
    np = realloc(*p, c * size);
    if (!np)
        return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

#endif

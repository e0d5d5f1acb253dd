/* Small helpers every module uses: container_of, array size, monotonic time. */
#ifndef KOPT_UTIL_H
#define KOPT_UTIL_H

#include <stddef.h>
#include <stdint.h>
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

#endif

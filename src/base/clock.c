/* SPDX-License-Identifier: MIT */
/* clock.c - the two clocks: the wall clock in seconds (bk_now, shifted by bk_wall_offset for the
 * tests) and the monotonic clock in milliseconds (precise and coarse). It calls nothing, so that
 * alloc.c (the memory trim's timer) and everything above can read the time. */
#include "internal.h"

#include <stdatomic.h>
#include <time.h>

_Atomic int64_t bk_wall_offset;

int64_t bk_now(void)
{
    /* whole seconds are all the expiry rules need: the coarse clock is several times cheaper */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec + atomic_load_explicit(&bk_wall_offset, memory_order_relaxed);
}

int64_t bk_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bk_monotonic_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

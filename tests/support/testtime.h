/* SPDX-License-Identifier: MIT */
/* testtime.h - the clock and the sleep that the tests and benchmarks share. */
#ifndef BKOAUTH_TESTTIME_H
#define BKOAUTH_TESTTIME_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC: for measuring intervals (a step of the wall clock changes nothing). */
static inline double test_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps ms milliseconds (a signal may end it sooner). */
static inline void test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif

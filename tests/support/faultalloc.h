/* SPDX-License-Identifier: MIT */
/* faultalloc.h - a test allocator for bkoauth_set_allocators(): SQLite's fault simulator for
 * libbkoauth. Once installed it passes every allocation to the C library's malloc() and counts
 * it; armed with n, it fails the n-th allocation from then on (returns NULL with errno ENOMEM),
 * and with persistent set every later one too, until disarmed. It also keeps the set of blocks
 * it handed out, so that a test can check that memory given by it comes back to it (and nothing
 * else does), and can search every block freed through it for a secret (was it wiped?).
 *
 * Only allocations made through bkoauth_set_allocators() reach it: the library's own, Jansson's
 * and libcurl's (libcurl's when the library initialised libcurl). All functions are
 * thread-safe. */
#ifndef BKOAUTH_TEST_FAULTALLOC_H
#define BKOAUTH_TEST_FAULTALLOC_H

#include <stddef.h>

/* Installs the allocator with bkoauth_set_allocators(); call it first in main(), before any
 * other bkoauth call. Aborts the program when the library refuses. */
void faultalloc_install(void);

/* From now on the n-th allocation (n >= 1; 1 is the next one) fails, and with persistent != 0
 * every allocation after it too. */
void faultalloc_arm(long n, int persistent);

/* Stops failing. Returns how many allocations failed since faultalloc_arm(): 0 means the code
 * under test never reached the n-th allocation. */
long faultalloc_disarm(void);

/* Allocations made through the allocator so far, failed ones included (all threads). */
long faultalloc_count(void);

/* Blocks handed out and not yet freed through the allocator (a block freed some other way
 * stays counted until its address is handed out again). */
long faultalloc_live(void);

/* A mark for faultalloc_outstanding(): where the allocator is now. */
long faultalloc_mark(void);

/* Blocks handed out since mark that did not come back through the allocator: still live, or
 * freed some other way (free() by code that does not use the library's allocators; seen when
 * malloc() hands out the address again, or still counted as live). */
long faultalloc_outstanding(long mark);

/* Pointers freed (or reallocated) through the allocator that it never handed out: memory the
 * library allocated some other way and freed with the allocator of bkoauth_set_allocators().
 * (A pointer whose address was handed out before and freed some other way can pass for one of
 * its own: the count may be too low, never too high.) */
long faultalloc_foreign(void);

/* While secret is set (not NULL, not empty), every block freed through the allocator, and the
 * old block of every realloc, is searched for it; faultalloc_watch_hits() counts the blocks
 * that still held it. The string is copied. faultalloc_watch(NULL) stops and resets the count. */
void faultalloc_watch(const char *secret);
long faultalloc_watch_hits(void);

#endif

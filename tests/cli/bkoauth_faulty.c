/* SPDX-License-Identifier: MIT */
/* bkoauth_faulty.c - the bkoauth command line as a test build, with the fault-injecting
 * allocator of tests/support/faultalloc.h in place of the C library's. Built from the very same
 * code (tools/cli/main.c compiled with BKOAUTH_CLI_TEST_ALLOCATORS, which then calls
 * cli_test_allocators() below, linked with the command line's bkoauth_cli_commands), by
 * tests/CMakeLists.txt only; never installed. The installed bkoauth reads none of the variables
 * below.
 *
 *   BKOAUTH_TEST_FAIL_ALLOC=N         the N-th allocation through the library fails (N >= 1)
 *   BKOAUTH_TEST_FAIL_PERSISTENT=1    and every allocation after it too
 *   BKOAUTH_TEST_FAIL_REPORT=FILE     at exit, "F A" is written there: F failures injected (0:
 *                                     the run never reached allocation N), A allocations in all
 *
 * tests/scripts/test_cli_oom.sh runs the commands with N = 1, 2, ... */
#include "faultalloc.h"

#include <stdio.h>
#include <stdlib.h>

int cli_test_allocators(void); /* tools/cli/main.c calls it first thing */

static const char *report_path;

static void cli_test_report(void)
{
    long failed = faultalloc_disarm();
    FILE *f = fopen(report_path, "w");
    if (f == NULL) return;
    fprintf(f, "%ld %ld\n", failed, faultalloc_count());
    fclose(f);
}

int cli_test_allocators(void)
{
    faultalloc_install();
    const char *n = getenv("BKOAUTH_TEST_FAIL_ALLOC");
    const char *persistent = getenv("BKOAUTH_TEST_FAIL_PERSISTENT");
    report_path = getenv("BKOAUTH_TEST_FAIL_REPORT");
    if (n != NULL && atol(n) > 0) faultalloc_arm(atol(n), persistent != NULL && persistent[0] == '1');
    if (report_path != NULL) atexit(cli_test_report);
    return 0;
}

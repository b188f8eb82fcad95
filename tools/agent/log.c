/* SPDX-License-Identifier: MIT */
/* log.c - the agent's log lines on stderr (the journal under systemd), at the bottom of its
 * files: every other file may call it, it calls none of them. */
#include "agent.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static int quiet;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void agent_log_set_quiet(int q)
{
    quiet = q;
}

void agent_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info"};
    if (quiet && level > AGENT_WARNING) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (unsigned char *p = (unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?'; /* one line, whatever a name held */
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "bkoauth-agent: %s: %s\n", names[level], line);
    pthread_mutex_unlock(&log_lock);
}

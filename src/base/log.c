/* SPDX-License-Identifier: MIT */
/* log.c - the client's logger: a sink function, a level, and the default stderr sink. */
#include "internal.h"

#include <stdio.h>

const char *log_level_name(int level)
{
    switch (level) {
    case BKOAUTH_LOG_ERROR:
        return "error";
    case BKOAUTH_LOG_WARNING:
        return "warning";
    case BKOAUTH_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void log_stderr(void *ctx, int level, const char *message)
{
    (void)ctx;
    /* one fprintf call: stdio locks the stream, so lines from threads do not interleave */
    fprintf(stderr, "bkoauth: %s: %s\n", log_level_name(level), message);
}

static void log_emit(const bk_logger *logger, int level, const char *fmt, va_list ap) BK_PRINTF(3, 0);

void log_write(const bk_logger *logger, int level, const char *fmt, ...)
{
    if (logger == NULL || logger->fn == NULL || level > logger->level) return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(logger, level, fmt, ap);
    va_end(ap);
}

void log_always(const bk_logger *logger, int level, const char *fmt, ...)
{
    if (logger == NULL || logger->fn == NULL || logger->level < BKOAUTH_LOG_ERROR) return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(logger, level, fmt, ap);
    va_end(ap);
}

static void log_emit(const bk_logger *logger, int level, const char *fmt, va_list ap)
{
    char text[4096], line[1024];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0) return;
    size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    /* one line a person or a log can take as it is: no secret, no line break, no escape */
    bk_scrub(line, sizeof line, text, len, (size_t)n >= sizeof text ? BK_SCRUB_CUT : 0);
    logger->fn(logger->ctx, level, line);
}

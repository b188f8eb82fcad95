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

#define LOG_TEXT 4096
#define LOG_LINE 1024

static void log_format(const bk_logger *logger, int level, const char *fmt, va_list ap, char *text,
                       char *line)
{
    int n = vsnprintf(text, LOG_TEXT, fmt, ap);
    if (n < 0) return;
    size_t len = (size_t)n < LOG_TEXT ? (size_t)n : LOG_TEXT - 1;
    /* one line a person or a log can take as it is: no secret, no line break, no escape */
    bk_scrub(line, LOG_LINE, text, len, (size_t)n >= LOG_TEXT ? BK_SCRUB_CUT : 0);
    logger->fn(logger->ctx, level, line);
}

/* The buffers are per thread rather than on the stack (as error.c's): a warning logged deep in a
 * call would otherwise touch stack pages of each thread that nothing else reaches. A logger that
 * logs through the library again gets buffers on the stack. */
static _Thread_local char log_text[LOG_TEXT], log_line[LOG_LINE];
static _Thread_local int log_busy;

static void log_emit(const bk_logger *logger, int level, const char *fmt, va_list ap)
{
    if (log_busy) {
        char text[LOG_TEXT], line[LOG_LINE];
        log_format(logger, level, fmt, ap, text, line);
        return;
    }
    log_busy = 1;
    log_format(logger, level, fmt, ap, log_text, log_line);
    log_busy = 0;
}

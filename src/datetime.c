/* datetime.c - datetimes as Django keeps them in SQLite: text "YYYY-MM-DD HH:MM:SS[.ffffff]",
 * UTC (USE_TZ = True) or local time (USE_TZ = False). */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Django's datetimes span years 1..9999; a moment outside (a token "valid for ever", junk from
 * a caller) is written as the nearest one inside, a day off the ends so that local time stays
 * in range too. */
#define DT_MIN (-62135596800LL + 86400) /* 0001-01-02 00:00:00 UTC */
#define DT_MAX (253402300799LL - 86400) /* 9999-12-30 23:59:59 UTC */

char *dt_format(int64_t t, int local, char *buf, size_t size)
{
    if (t < DT_MIN) t = DT_MIN;
    if (t > DT_MAX) t = DT_MAX;
    time_t tt = (time_t)t;
    struct tm tm;
    if ((local ? localtime_r(&tt, &tm) : gmtime_r(&tt, &tm)) == NULL) {
        snprintf(buf, size, "1970-01-01 00:00:00");
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* Reads exactly n digits at *p. Returns the number or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int dt_parse(const char *text, int local, int64_t *out)
{
    if (text == NULL) return -1;
    const char *p = text;
    int year = digits(&p, 4);
    if (year < 1 || *p++ != '-') return -1;
    int mon = digits(&p, 2);
    if (mon < 1 || mon > 12 || *p++ != '-') return -1;
    int day = digits(&p, 2);
    if (day < 1 || day > days_in_month(year, mon)) return -1;
    int hour = 0, min = 0, sec = 0;
    if (*p == ' ' || *p == 'T') {
        p++;
        hour = digits(&p, 2);
        if (hour < 0 || hour > 23 || *p++ != ':') return -1;
        min = digits(&p, 2);
        if (min < 0 || min > 59) return -1;
        if (*p == ':') {
            p++;
            sec = digits(&p, 2);
            if (sec < 0 || sec > 60) return -1;
        }
        if (*p == '.') { /* any number of fractional digits, dropped */
            p++;
            if (*p < '0' || *p > '9') return -1;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    int has_offset = 0, offset = 0;
    if (*p == 'Z') {
        has_offset = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2);
        if (oh < 0 || oh > 23) return -1;
        if (*p == ':') p++;
        int om = 0;
        if (*p >= '0' && *p <= '9') {
            om = digits(&p, 2);
            if (om < 0 || om > 59) return -1;
        }
        has_offset = 1;
        offset = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0') return -1;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    if (has_offset || !local) {
        *out = (int64_t)timegm(&tm) - offset;
    } else {
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1 && !(year == 1969 && mon == 12 && day == 31)) return -1;
        *out = (int64_t)t;
    }
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* datetime.c - datetimes as Django keeps them where the column has no zone (SQLite text
 * "YYYY-MM-DD HH:MM:SS[.ffffff]", MySQL datetime(6)): UTC (USE_TZ = True), or the wall time of a
 * zone (USE_TZ = False: TIME_ZONE, or the process's local zone), converted with tzfile.c. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Django's datetimes span years 1..9999; a moment outside (a token "valid for ever", junk from
 * a caller) is written as the nearest one inside, a day off the ends so that local time stays
 * in range too. */
#define DT_MIN (-62135596800LL + 86400) /* 0001-01-02 00:00:00 UTC */
#define DT_MAX (253402300799LL - 86400) /* 9999-12-30 23:59:59 UTC */

void dt_to_civil(int64_t t, const bk_zone *zone, bk_civil *out)
{
    if (t < DT_MIN) t = DT_MIN;
    if (t > DT_MAX) t = DT_MAX;
    int64_t wall = t + zone_offset(zone, t);
    int64_t days = wall / 86400, secs = wall % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    dt_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
}

int64_t dt_from_civil(const bk_civil *c, const bk_zone *zone)
{
    int64_t wall =
        dt_days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->minute * 60 + c->second;
    return zone_to_utc(zone, wall);
}

char *dt_format_zone(int64_t t, const bk_zone *zone, char *buf, size_t size)
{
    bk_civil c;
    dt_to_civil(t, zone, &c);
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d", (int)c.year, c.month, c.day, c.hour, c.minute,
             c.second);
    return buf;
}

char *dt_format(int64_t t, int local, char *buf, size_t size)
{
    return dt_format_zone(t, local ? zone_local() : NULL, buf, size);
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

int dt_parse_zone(const char *text, const bk_zone *zone, int64_t *out)
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
    bk_civil c = {year, mon, day, hour, min, sec};
    if (has_offset)
        *out = dt_from_civil(&c, NULL) - offset;
    else
        *out = dt_from_civil(&c, zone);
    return 0;
}

int dt_parse(const char *text, int local, int64_t *out)
{
    return dt_parse_zone(text, local ? zone_local() : NULL, out);
}

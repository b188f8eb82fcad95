/* SPDX-License-Identifier: MIT */
/* tzfile.c - named time zones (BKOAUTH_DB_TIME_ZONE = Asia/Shanghai) read from the system's
 * zone files, without touching the process's TZ.
 *
 * Why a parser of its own: the C library converts times in one zone per process (TZ, tzset,
 * localtime), and setting TZ in a library would change the zone of every thread of the
 * program. So the zone file (/usr/share/zoneinfo/NAME, or $TZDIR/NAME; the TZif format of
 * RFC 8536, versions 1 to 4) is read once when the settings are made, into a table of
 * transitions plus the POSIX TZ rule of its footer for the times after the last transition.
 * The file is outside input: every count and index is checked, sizes are capped, and a file
 * that does not hold together is refused (fuzz/fuzz_tzif.c runs this parser). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TZ_MAX_FILE (1024 * 1024)
/* the furthest a zone's time may be from UTC: under a day, as Python's tzinfo requires (real zones
 * stay within 15 hours); written datetimes are kept a day inside years 1..9999, so any zone's
 * wall time of them stays in Django's range */
#define TZ_MAX_OFFSET 86400

/* A rule date of a POSIX TZ string: Jn (1..365, no Feb 29), n (0..365), Mm.w.d. */
typedef struct tz_date {
    char kind;    /* 'J', 'N' or 'M' */
    int a, b, c;  /* J/N: day; M: month, week, weekday */
    int32_t time; /* seconds after local midnight; may be negative or past 24 h (TZif v3) */
} tz_date;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    tz_date start, end;
} tz_rule;

struct bk_zone {
    int local; /* the process's own zone (localtime_r / mktime) */
    size_t ntrans;
    int64_t *trans; /* ascending transition moments, Unix seconds */
    int32_t *offs;  /* the offset in force from trans[i] on */
    int32_t first;  /* the offset before the first transition (time type 0) */
    int has_rule;   /* the footer's rule governs after the last transition */
    tz_rule rule;
    char name[64];
};

static bk_zone LOCAL_ZONE = {.local = 1, .name = "local"};

const bk_zone *zone_local(void)
{
    return &LOCAL_ZONE;
}

void zone_free(bk_zone *z)
{
    if (z == NULL || z == &LOCAL_ZONE) return;
    bkoauth__free(z->trans);
    bkoauth__free(z->offs);
    bkoauth__free(z);
}

const char *zone_name(const bk_zone *z)
{
    return z == NULL ? "UTC" : z->name;
}

/* ---- calendar (proleptic Gregorian, no C library) ------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (H. Hinnant's days_from_civil). */
int64_t dt_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void dt_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* ---- the POSIX TZ rule of the footer -------------------------------------------------------- */

/* The day (days since the epoch) a rule date falls on in year y. */
static int64_t rule_day(int64_t y, const tz_date *r)
{
    int64_t jan1 = dt_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60);
    if (r->kind == 'N') return jan1 + r->a;
    int64_t first = dt_days_from_civil(y, r->a, 1);
    int wday = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->c - wday + 7) % 7 + (r->b - 1) * 7;
    while (day > month_days(y, r->a))
        day -= 7;
    return first + day - 1;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst) return r->std_off;
    int64_t y;
    int m, d;
    dt_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* the change to DST happens at a standard-time moment, the change back at a DST one */
    int64_t start = rule_day(y, &r->start) * 86400 + r->start.time - r->std_off;
    int64_t end = rule_day(y, &r->end) * 86400 + r->end.time - r->dst_off;
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* A zone abbreviation: 3+ letters, or <...> of letters, digits, '+' and '-'. */
static int skip_name(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        p++;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++, n++;
        if (*p != '>' || n < 3) return -1;
        *pp = p + 1;
        return 0;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++, n++;
    if (n < 3) return -1;
    *pp = p;
    return 0;
}

static int read_num(const char **pp, int max, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > max) return -1;
        p++;
        n++;
    }
    if (n == 0) return -1;
    *out = v;
    *pp = p;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hours up to max_h; seconds. */
static int read_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, h = 0, m = 0, s = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (read_num(&p, max_h, &h) != 0) return -1;
    if (*p == ':') {
        p++;
        if (read_num(&p, 59, &m) != 0) return -1;
        if (*p == ':') {
            p++;
            if (read_num(&p, 59, &s) != 0) return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return 0;
}

static int read_date(const char **pp, tz_date *d)
{
    const char *p = *pp;
    if (*p == 'J') {
        p++;
        d->kind = 'J';
        if (read_num(&p, 365, &d->a) != 0 || d->a < 1) return -1;
    } else if (*p == 'M') {
        p++;
        d->kind = 'M';
        if (read_num(&p, 12, &d->a) != 0 || d->a < 1 || *p++ != '.' || read_num(&p, 5, &d->b) != 0 ||
            d->b < 1 || *p++ != '.' || read_num(&p, 6, &d->c) != 0)
            return -1;
    } else {
        d->kind = 'N';
        if (read_num(&p, 365, &d->a) != 0) return -1;
    }
    d->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (read_hms(&p, 167, &d->time) != 0) return -1;
    }
    *pp = p;
    return 0;
}

/* Parses a POSIX TZ string ("CST-8", "EST5EDT,M3.2.0,M11.1.0"). 0, or -1 when malformed. */
static int parse_rule(const char *s, tz_rule *r)
{
    memset(r, 0, sizeof *r);
    const char *p = s;
    int32_t off;
    if (skip_name(&p) != 0 || read_hms(&p, 24, &off) != 0) return -1;
    r->std_off = -off; /* POSIX counts west of UTC */
    r->dst_off = r->std_off;
    if (r->std_off <= -TZ_MAX_OFFSET || r->std_off >= TZ_MAX_OFFSET) return -1;
    if (*p == '\0') return 0;
    if (skip_name(&p) != 0) return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (read_hms(&p, 24, &off) != 0) return -1;
        r->dst_off = -off;
    }
    if (*p == '\0') { /* no rule given: the US rule, as the C library assumes */
        r->start = (tz_date){'M', 3, 2, 0, 7200};
        r->end = (tz_date){'M', 11, 1, 0, 7200};
        return r->dst_off <= -TZ_MAX_OFFSET || r->dst_off >= TZ_MAX_OFFSET ? -1 : 0;
    }
    if (*p++ != ',' || read_date(&p, &r->start) != 0 || *p++ != ',' || read_date(&p, &r->end) != 0) return -1;
    if (*p != '\0' || r->dst_off <= -TZ_MAX_OFFSET || r->dst_off >= TZ_MAX_OFFSET) return -1;
    return 0;
}

/* ---- the TZif file ---------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tz_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tz_counts;

/* The header at p (44 bytes); -1 when it is not one. */
static int read_header(const unsigned char *p, size_t len, tz_counts *c, char *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return -1;
    *version = (char)p[4];
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    /* RFC 8536: at least one type; the indicator counts are 0 or typecnt */
    if (c->type == 0 || c->type > 256 || c->time > 100000 || c->leap > 10000 || c->chars > 10000 ||
        (c->isut != 0 && c->isut != c->type) || (c->isstd != 0 && c->isstd != c->type))
        return -1;
    return 0;
}

/* The size of a data block with times of tsize bytes. */
static size_t block_size(const tz_counts *c, size_t tsize)
{
    return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Finds the data block to read: the 64-bit one of version 2 and later (after the 32-bit block
 * and its own header), else the 32-bit one. Sets *c, *at (the block's offset) and *tsize (the
 * size of a time). 0, or -1 with *why. */
static int locate_block(const unsigned char *data, size_t len, tz_counts *c, size_t *at, size_t *tsize,
                        const char **why)
{
    char version;
    *why = "not a TZif zone file";
    if (read_header(data, len, c, &version) != 0) return -1;
    *tsize = 4;
    *at = 44;
    if (version >= '2') {
        size_t skip = block_size(c, 4);
        if (len - *at < skip) return -1;
        *at += skip;
        if (read_header(data + *at, len - *at, c, &version) != 0) return -1;
        *at += 44;
        *tsize = 8;
    }
    if (len - *at < block_size(c, *tsize)) {
        *why = "the zone file is truncated";
        return -1;
    }
    if (c->leap != 0) {
        *why = "the zone counts leap seconds (a right/ zone); use the zone without right/";
        return -1;
    }
    return 0;
}

/* The block's local time types and transitions into z, every index and offset checked. 0 or -1. */
static int read_transitions(bk_zone *z, const unsigned char *block, const tz_counts *c, size_t tsize)
{
    const unsigned char *times = block, *idx = times + (size_t)c->time * tsize, *types = idx + c->time;
    for (uint32_t i = 0; i < c->type; i++) {
        int32_t off = (int32_t)be32(types + i * 6);
        if (off <= -TZ_MAX_OFFSET || off >= TZ_MAX_OFFSET || types[i * 6 + 4] > 1) return -1;
    }
    z->first = (int32_t)be32(types);
    for (uint32_t i = 0; i < c->time; i++) {
        z->trans[i] = tsize == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
        if (idx[i] >= c->type || (i > 0 && z->trans[i] <= z->trans[i - 1])) return -1;
        z->offs[i] = (int32_t)be32(types + idx[i] * 6);
    }
    return 0;
}

/* The footer of version 2 and later at data[at..len): "\n" TZ-string "\n", the POSIX rule for
 * times after the last transition (none when empty or absent). 0, or -1 with *why. */
static int read_footer(bk_zone *z, const unsigned char *data, size_t len, size_t at, const char **why)
{
    if (at >= len || data[at] != '\n') return 0;
    const unsigned char *nl = memchr(data + at + 1, '\n', len - at - 1);
    char tz[128];
    size_t n = nl ? (size_t)(nl - (data + at + 1)) : 0;
    if (nl == NULL || n >= sizeof tz || memchr(data + at + 1, '\0', n) != NULL) return -1;
    memcpy(tz, data + at + 1, n);
    tz[n] = '\0';
    if (n == 0) return 0;
    if (parse_rule(tz, &z->rule) != 0) {
        *why = "the zone file's rule for future times cannot be read";
        return -1;
    }
    z->has_rule = 1;
    return 0;
}

bk_zone *zone_parse(const unsigned char *data, size_t len, const char *name, const char **why)
{
    tz_counts c;
    size_t at, tsize;
    if (locate_block(data, len, &c, &at, &tsize, why) != 0) return NULL;
    bk_zone *z = bkoauth__calloc(1, sizeof *z);
    if (z != NULL) {
        snprintf(z->name, sizeof z->name, "%s", name ? name : "");
        z->ntrans = c.time;
    }
    if (z != NULL && c.time > 0) {
        z->trans = bkoauth__malloc(c.time * sizeof *z->trans);
        z->offs = bkoauth__malloc(c.time * sizeof *z->offs);
    }
    if (z == NULL || (c.time > 0 && (z->trans == NULL || z->offs == NULL))) {
        zone_free(z);
        *why = "out of memory";
        return NULL;
    }
    *why = "the zone file does not hold together";
    if (read_transitions(z, data + at, &c, tsize) != 0 ||
        (tsize == 8 && read_footer(z, data, len, at + block_size(&c, tsize), why) != 0)) {
        zone_free(z);
        return NULL;
    }
    *why = NULL;
    return z;
}

/* 1 when name is a plain zone name: letters, digits, '_', '-', '+', '/' between parts, no
 * ".." and no leading '/'; so only files under the zone directory are read. */
static int good_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 60 || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//") != NULL) return 0;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-' || ch == '+' || ch == '/';
        if (!ok) return 0;
        if (ch == '/' && (p[1] == '.' || p[1] == '-')) return 0;
    }
    return name[0] != '-';
}

bkoauth_code zone_load(const char *name, bk_zone **out, bkoauth_error *err)
{
    *out = NULL;
    if (name == NULL || strcasecmp(name, "UTC") == 0) return BKOAUTH_OK;
    if (strcasecmp(name, "local") == 0) {
        *out = &LOCAL_ZONE;
        return BKOAUTH_OK;
    }
    if (!good_name(name))
        return err_set(err, BKOAUTH_E_CONFIG,
                       "BKOAUTH_DB_TIME_ZONE: '%.64s' is not UTC, local or a zone name such as Asia/Shanghai",
                       name);
    const char *dir = getenv("TZDIR");
    if (dir == NULL || dir[0] != '/') dir = "/usr/share/zoneinfo";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return err_set(err, BKOAUTH_E_CONFIG,
                       "BKOAUTH_DB_TIME_ZONE: no time zone '%.64s' (%s: %s); give a name such as "
                       "Asia/Shanghai (install the tzdata package when none is found)",
                       name, path, strerror(errno));
    unsigned char *data = bkoauth__malloc(TZ_MAX_FILE);
    if (data == NULL) {
        fclose(f);
        return err_nomem(err);
    }
    size_t len = fread(data, 1, TZ_MAX_FILE, f);
    int bad = ferror(f) || len == TZ_MAX_FILE;
    fclose(f);
    const char *why = "the file cannot be read, or is too big";
    bk_zone *z = bad ? NULL : zone_parse(data, len, name, &why);
    bkoauth__free(data);
    if (z == NULL) {
        if (why != NULL && strcmp(why, "out of memory") == 0) return err_nomem(err);
        return err_set(err, BKOAUTH_E_CONFIG, "BKOAUTH_DB_TIME_ZONE: time zone %.64s (%s): %s", name, path,
                       why);
    }
    *out = z;
    return BKOAUTH_OK;
}

int32_t zone_offset(const bk_zone *z, int64_t t)
{
    if (z == NULL) return 0;
    if (z->local) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (localtime_r(&tt, &tm) == NULL) return 0;
        return (int32_t)tm.tm_gmtoff;
    }
    if (z->ntrans == 0) return z->has_rule ? rule_offset(&z->rule, t) : z->first;
    if (t < z->trans[0]) return z->first;
    if (t >= z->trans[z->ntrans - 1] && z->has_rule) return rule_offset(&z->rule, t);
    size_t lo = 0, hi = z->ntrans; /* the last transition at or before t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->offs[lo];
}

int64_t zone_to_utc(const bk_zone *z, int64_t wall)
{
    if (z == NULL) return wall;
    /* the offsets in force around that wall time (zones change at most once in a day or so) */
    int32_t cand[3] = {zone_offset(z, wall - 86400), zone_offset(z, wall), zone_offset(z, wall + 86400)};
    int64_t best = 0, gap = INT64_MIN;
    int found = 0;
    for (int i = 0; i < 3; i++) {
        int64_t u = wall - cand[i];
        if (zone_offset(z, u) == cand[i]) {
            if (!found || u < best) best = u; /* twice in a fall-back hour: the first (Python fold=0) */
            found = 1;
        } else if (u > gap) {
            gap = u; /* in a spring-forward gap: read with the offset before it, as Python does */
        }
    }
    return found ? best : gap;
}

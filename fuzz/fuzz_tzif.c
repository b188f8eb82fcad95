/* SPDX-License-Identifier: MIT */
/* fuzz_tzif.c - libFuzzer target for the zone file reader (zone_parse: TZif headers, counts,
 * transitions, types, the POSIX TZ rule of the footer) and the conversions on what it read.
 * Invariants: a zone read answers every moment with an offset under a day, and every wall time
 * written in it (kept within years 1..9999) reads back. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    bk_zone *z = zone_parse(data, size, "fuzz", &why);
    if (z == NULL) {
        check(why != NULL);
        return 0;
    }
    static const int64_t moments[] = {INT64_MIN / 4, -62135596800LL, -1,           0, 1900000000,
                                      4102444800LL,  253402300799LL, INT64_MAX / 4};
    for (size_t i = 0; i < sizeof moments / sizeof moments[0]; i++) {
        int32_t off = zone_offset(z, moments[i]);
        check(off > -86400 && off < 86400);
        (void)zone_to_utc(z, moments[i]);
        char buf[32];
        int64_t back = 0;
        check(dt_parse_zone(dt_format_zone(moments[i], z, buf, sizeof buf), z, &back) == 0);
    }
    zone_free(z);
    return 0;
}

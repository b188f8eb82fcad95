/* SPDX-License-Identifier: MIT */
/* replay.c - runs a libFuzzer target without libFuzzer, for the test suite: every file of the
 * given corpus directories, then MUTATIONS deterministic mutations of each (bytes flipped,
 * replaced by ones parsers care about, inserted, removed, the input cut or repeated). A broken
 * invariant aborts inside the target, which fails the test; the sanitizer builds check memory.
 *
 *   replay [-n MUTATIONS] DIR...   (default 2000 mutations a file)
 *
 * It is no substitute for a real fuzzing run (fuzz/CMakeLists.txt); it keeps the seeds and the
 * target's invariants checked on every build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (64 * 1024)

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13; /* xorshift64: the same sequence on every run */
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* One mutation of buf (n bytes, room for REPLAY_MAX), in place; the new length. */
static size_t mutate(uint8_t *buf, size_t n)
{
    static const char interesting[] = "\0/.%\"\\{}[],:;= \r\n\t\x7f\xff\xc3\x80u0123456789";
    size_t at = n ? (size_t)(next() % n) : 0;
    uint8_t b = (uint8_t)interesting[next() % (sizeof interesting - 1)];
    switch (next() % 6) {
    case 0: /* flip a bit */
        if (n) buf[at] ^= (uint8_t)(1u << (next() % 8));
        return n;
    case 1: /* a byte parsers care about */
        if (n) buf[at] = b;
        return n;
    case 2: /* insert one */
        if (n >= REPLAY_MAX) return n;
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = b;
        return n + 1;
    case 3: /* remove one */
        if (n == 0) return n;
        memmove(buf + at, buf + at + 1, n - at - 1);
        return n - 1;
    case 4: /* cut */
        return at;
    default: /* repeat the tail */
        if (2 * n - at > REPLAY_MAX) return n;
        memcpy(buf + n, buf + at, n - at);
        return 2 * n - at;
    }
}

/* The file's bytes and their mutations. 0, or -1 when it cannot be read. */
static int run_file(const char *path, long mutations)
{
    static uint8_t seed[REPLAY_MAX], buf[REPLAY_MAX];
    FILE *f = fopen(path, "rb");
    if (f == NULL) return -1;
    size_t n = fread(seed, 1, REPLAY_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(seed, n);
    for (long i = 0; i < mutations; i++) {
        size_t m = n;
        memcpy(buf, seed, n);
        for (uint64_t k = 1 + next() % 4; k > 0; k--)
            m = mutate(buf, m);
        /* a copy of the exact length, so that the sanitizers see a read past its end */
        uint8_t *exact = malloc(m ? m : 1);
        if (exact == NULL) return -1;
        memcpy(exact, buf, m);
        LLVMFuzzerTestOneInput(exact, m);
        free(exact);
    }
    return 0;
}

int main(int argc, char **argv)
{
    long mutations = 2000;
    int i = 1, files = 0;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        mutations = strtol(argv[2], NULL, 10);
        i = 3;
    }
    for (; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (run_file(path, mutations) != 0) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            files++;
        }
        closedir(d);
    }
    if (files == 0) {
        fprintf(stderr, "replay: no input files\n");
        return 1;
    }
    printf("replay: %d files, %ld mutations each: every invariant held\n", files, mutations);
    return 0;
}

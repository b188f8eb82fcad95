/* SPDX-License-Identifier: MIT */
/* dl.h - the optional heavy libraries (libcurl, libpq, the MariaDB connector) loaded on first use
 * with dlopen(), so that a process pays for a library only when it calls it (docs/ARCHITECTURE.md,
 * "Libraries loaded on first use"). Each library has a table of function pointers (src/ssm/curl_dl.h,
 * src/store/pq_dl.h, src/store/mysql_dl.h) whose header maps the API's names onto the table, so the
 * code calling the library reads as before. */
#ifndef BKOAUTH_DL_H
#define BKOAUTH_DL_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* One library loaded on first use. */
typedef struct bk_dl_lib {
    const char *soname;  /* "libcurl.so.4" */
    const char *package; /* the Debian package that installs it: "libcurl4" */
    const char *feature; /* what needs it, for messages: "an SSM call" */
    bkoauth_code code;   /* the error code when it cannot be loaded */
    /* fills the library's table from handle; the name of a missing function in *missing */
    int (*resolve)(void *handle, const char **missing);
    atomic_int loaded; /* 1 once the table is filled: it stays so for the process's life */
} bk_dl_lib;

#define BK_DL_LIB(soname, package, feature, code, resolve)                                                   \
    {                                                                                                        \
        soname, package, feature, code, resolve, 0                                                           \
    }

/* Loads lib once per process (thread-safe: threads racing on the first call wait for one load;
 * after a fork the child keeps the parent's table, and a load another thread of the parent was in
 * the middle of is made again by the child's first use). BKOAUTH_OK, or lib->code with a message naming
 * the library, why it could not be loaded and the package to install. A failure is not
 * remembered: the next call tries again (the package may have been installed since). The library
 * is never unloaded. */
bkoauth_code bk_dl_load(bk_dl_lib *lib, bkoauth_error *err);

/* The lock every load holds, for a library's own once-per-process set-up after its load
 * (curl_dl.c: curl_global_init_mem). A child after fork() gets it unlocked, whichever thread of
 * the parent held it. */
void bk_dl_lock(void);
void bk_dl_unlock(void);

/* For a resolve function: dlsym(handle, name) into the function pointer at slot (size bytes).
 * 0, or -1 with *missing = name when the library lacks it. */
int bk_dl_sym(void *handle, const char *name, void *slot, size_t size, const char **missing);

/* An ELF note in section .note.dlopen declaring a library loaded with dlopen(), in the format
 * of systemd's "dlopen() Metadata for ELF Files" (owner "FDO", type 0x407c0c0a, a JSON array of
 * {"feature","description","priority","soname"}), so that packaging tools see the dependency;
 * text is a string literal. */
#define BK_DL_NOTE_TYPE UINT32_C(0x407c0c0a)
#define BK_DL_NOTE(variable, text)                                                                           \
    __attribute__((used, section(".note.dlopen"))) _Alignas(4) static const struct {                         \
        struct {                                                                                             \
            uint32_t n_namesz, n_descsz, n_type;                                                             \
        } nhdr;                                                                                              \
        char name[sizeof "FDO"];                                                                             \
        _Alignas(4) char json[(sizeof text + 3) / 4 * 4];                                                    \
    } variable = {{sizeof "FDO", sizeof text, BK_DL_NOTE_TYPE}, "FDO", text}

#endif

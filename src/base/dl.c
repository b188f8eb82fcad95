/* SPDX-License-Identifier: MIT */
/* dl.c - loading an optional library on first use (dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bk_dl_sym(void *handle, const char *name, void *slot, size_t size, const char **missing)
{
    void *p = dlsym(handle, name);
    if (p == NULL || size != sizeof p) {
        *missing = name;
        return -1;
    }
    memcpy(slot, &p, sizeof p); /* POSIX: a function's address fits in a void * */
    return 0;
}

/* The test hook: BKOAUTH_TEST_DLOPEN_FAIL names sonames (separated by commas) whose loading is
 * to fail as if the library were not installed (a name that cannot exist is asked instead). */
static const char *dl_name(const bk_dl_lib *lib, char *buf, size_t size)
{
    const char *fail = getenv("BKOAUTH_TEST_DLOPEN_FAIL");
    size_t n = strlen(lib->soname);
    for (const char *p = fail; p != NULL && *p != '\0'; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        if (strncmp(p, lib->soname, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
            snprintf(buf, size, "%s.not-installed", lib->soname);
            return buf;
        }
    }
    return lib->soname;
}

static bkoauth_code dl_open(bk_dl_lib *lib, bkoauth_error *err)
{
    char name[128];
    /* RTLD_NODELETE: never unmapped, whatever happens (libcurl and libpq start TLS libraries
     * that cannot be unloaded safely) */
    void *h = dlopen(dl_name(lib, name, sizeof name), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        const char *why = dlerror();
        return err_set(err, lib->code,
                       "%s cannot be loaded (%s); %s needs it: install the package %s (apt-get install %s)",
                       lib->soname, why != NULL ? why : "no reason given", lib->feature, lib->package,
                       lib->package);
    }
    const char *missing = "";
    if (lib->resolve(h, &missing) != 0) {
        dlclose(h);
        return err_set(err, lib->code, "%s lacks %s (too old); %s needs it: upgrade the package %s",
                       lib->soname, missing, lib->feature, lib->package);
    }
    return BKOAUTH_OK;
}

/* One lock for every load (loads are few: one per library and process). A thread of the parent
 * may hold it at fork(): the child gets it anew, and a load left half-way is made again there
 * (the library's table is filled only once its load is complete). */
static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t dl_atfork_once = PTHREAD_ONCE_INIT;

static void dl_fork_child(void)
{
    pthread_mutex_init(&dl_lock, NULL);
}

static void dl_register_atfork(void)
{
    pthread_atfork(NULL, NULL, dl_fork_child);
}

void bk_dl_lock(void)
{
    pthread_once(&dl_atfork_once, dl_register_atfork);
    pthread_mutex_lock(&dl_lock);
}

void bk_dl_unlock(void)
{
    pthread_mutex_unlock(&dl_lock);
}

bkoauth_code bk_dl_load(bk_dl_lib *lib, bkoauth_error *err)
{
    if (atomic_load_explicit(&lib->loaded, memory_order_acquire)) return BKOAUTH_OK;
    bk_dl_lock();
    bkoauth_code rc = BKOAUTH_OK;
    if (!atomic_load_explicit(&lib->loaded, memory_order_relaxed)) {
        rc = dl_open(lib, err);
        if (rc == BKOAUTH_OK) atomic_store_explicit(&lib->loaded, 1, memory_order_release);
    }
    bk_dl_unlock();
    return rc;
}

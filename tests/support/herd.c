/* SPDX-License-Identifier: MIT */
/* herd.c - many processes x threads released together on one token (see herd.h). */
#include "herd.h"
#include "testsettings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct caller {
    const herd_spec *spec;
    bkoauth_client *c;
    pthread_barrier_t *barrier;
    int ok;
    char token[256];
    char message[512];
} caller;

bkoauth_client *herd_client(const char *const *settings)
{
    bkoauth_error e;
    bkoauth_client *c = test_settings_client(settings, &e);
    if (c == NULL) fprintf(stderr, "herd: client: %s\n", e.message);
    return c;
}

int herd_prepare_expiring(devserver *dev, const char *const *settings, const char *user, const char *cookie)
{
    if (devserver_config(dev, 120, -1) != 0) return -1;
    bkoauth_client *c = herd_client(settings);
    if (c == NULL) return -1;
    bkoauth_request req = {.username = user, .cookie_header = cookie, .remote_addr = "::1"};
    bkoauth_token *t = NULL;
    bkoauth_error e;
    bkoauth_delete_token(c, NULL, NULL);
    bkoauth_delete_token(c, user, NULL);
    int rc = 0;
    if (bkoauth_get_access_token(c, &req, &t, &e) != BKOAUTH_OK ||
        (bkoauth_token_free(t), t = NULL, bkoauth_get_app_access_token(c, &t, &e)) != BKOAUTH_OK) {
        fprintf(stderr, "herd: saving the expiring tokens: %s\n", e.message);
        rc = -1;
    }
    bkoauth_token_free(t);
    bkoauth_client_free(c);
    return rc == 0 ? devserver_config(dev, 3600, -1) : rc;
}

static void *call(void *arg)
{
    caller *w = arg;
    const herd_spec *s = w->spec;
    pthread_barrier_wait(w->barrier);
    bkoauth_token *t = NULL;
    bkoauth_error e;
    bkoauth_code rc;
    bkoauth_request req = {.username = s->user, .cookie_header = s->cookie, .remote_addr = "127.0.0.1"};
    switch (s->op) {
    case HERD_BY_USER:
        rc = bkoauth_get_access_token_by_user(w->c, s->user, &t, &e);
        break;
    case HERD_APP:
        rc = bkoauth_get_app_access_token(w->c, &t, &e);
        break;
    case HERD_LOGIN:
        rc = bkoauth_get_access_token(w->c, &req, &t, &e);
        break;
    default:
        rc = bkoauth_refresh_token(w->c, s->old, &t, &e);
        break;
    }
    w->ok = rc == BKOAUTH_OK && !bkoauth_token_expires_soon(w->c, t);
    snprintf(w->token, sizeof w->token, "%s", t ? t->access_token : "-");
    snprintf(w->message, sizeof w->message, "%s: %.480s", bkoauth_code_name(rc),
             rc == BKOAUTH_OK ? "" : e.message);
    bkoauth_token_free(t);
    return NULL;
}

/* Runs spec->threads callers on client c, released together; writes one line per caller. */
static void run_threads(const herd_spec *spec, bkoauth_client *c, FILE *out)
{
    int n = spec->threads;
    pthread_t *th = calloc((size_t)n, sizeof *th);
    caller *w = calloc((size_t)n, sizeof *w);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        w[i] = (caller){.spec = spec, .c = c, .barrier = &barrier};
        pthread_create(&th[i], NULL, call, &w[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++)
        fprintf(out, "%d %s %s\n", w[i].ok, w[i].token, w[i].ok ? "" : w[i].message);
    fflush(out);
    pthread_barrier_destroy(&barrier);
    free(th);
    free(w);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int herd_run(const herd_spec *spec, herd_result *out)
{
    memset(out, 0, sizeof *out);
    out->same = 1;
    int go[2], results[2];
    if (pipe(go) != 0 || pipe(results) != 0) return -1;
    pid_t *pids = calloc((size_t)spec->procs, sizeof *pids);
    for (int p = 0; p < spec->procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0) return -1;
        if (pids[p] == 0) {
            close(go[1]);
            close(results[0]);
            bkoauth_client *c = herd_client(spec->settings);
            char b;
            if (c == NULL || read(go[0], &b, 1) != 0) _exit(3);
            FILE *f = fdopen(results[1], "w");
            run_threads(spec, c, f);
            fclose(f);
            bkoauth_client_free(c);
            _exit(0);
        }
    }
    close(go[0]);
    close(results[1]);
    usleep(300 * 1000); /* let every process build its client */
    double t0 = mono();
    close(go[1]); /* release */
    FILE *in = fdopen(results[0], "r");
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        int good = 0;
        char tok[256] = "";
        if (sscanf(line, "%d %255s", &good, tok) != 2) continue;
        out->callers++;
        out->ok += good;
        if (!good && out->failure[0] == '\0') snprintf(out->failure, sizeof out->failure, "%.500s", line);
        if (good && out->token[0] == '\0')
            snprintf(out->token, sizeof out->token, "%s", tok);
        else if (good && strcmp(out->token, tok) != 0)
            out->same = 0;
    }
    out->seconds = mono() - t0;
    fclose(in);
    int status = 0;
    for (int p = 0; p < spec->procs; p++) {
        int st = 0;
        waitpid(pids[p], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) status = -1;
    }
    free(pids);
    return status;
}

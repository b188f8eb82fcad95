/* SPDX-License-Identifier: MIT */
/* bench_startup.c - what a whole process costs, start to exit (a CGI program, a cron job,
 * T=$(bkoauth token alice) in a shell script): wall time from fork() to the end of waitpid(),
 * median of 20 runs after one warm-up, for
 *   a trivial C program (the floor), the same program with libjansson and libsqlite3 loaded but
 *   not used (what those two, which every bkoauth command maps, cost), bkoauth --version,
 *   bkoauth token alice on SQLite,
 *   PostgreSQL and MariaDB (a fresh saved token: no SSM call), and a C program linked with
 *   libbkoauth.so doing one bkoauth_get_access_token_by_user (SQLite);
 * each with the number of shared libraries the dynamic loader loaded (LD_DEBUG=files: the
 * program's NEEDED ones and those loaded with dlopen(); the loader itself and the vDSO not
 * counted). The token is saved first through bkoauth-devserver (started here on a free loopback
 * port) with `bkoauth user-token`.
 *   bench_startup [-v] [BUILD_DIR]   (default: this build; -v lists the libraries)
 * PostgreSQL and MariaDB when BKOAUTH_TEST_PG_URL / BKOAUTH_TEST_MYSQL_URL name servers
 * (scripts/pg.sh, scripts/mysql.sh). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 20
#define MAX_ENV 16
#define MAX_LIBS 128

static char dir[] = "/tmp/bench_startup.XXXXXX";
static const char *build = BKOAUTH_BINARY_DIR;
static pid_t devserver;
static char dev_url[64];
static int verbose;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs argv with envp (stdout and stderr to /dev/null unless show); its exit status, or -1. The
 * CPU time it used (user + system, ms) in *cpu_ms when not NULL. */
static int run_cpu(char *const argv[], char *const envp[], int show, double *cpu_ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!show) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
        }
        execve(argv[0], argv, envp);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) return -1;
    if (cpu_ms != NULL)
        *cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run(char *const argv[], char *const envp[], int show)
{
    return run_cpu(argv, envp, show, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The shared libraries the loader loaded for one run of argv (LD_DEBUG=files), listed in
 * names (up to MAX_LIBS); their count, or -1. */
static int libraries(char *const argv[], char *const envp[], char names[][128])
{
    char *env[MAX_ENV + 3], debug[] = "LD_DEBUG=files", output[300];
    int n = 0;
    for (; envp[n] != NULL && n < MAX_ENV; n++)
        env[n] = envp[n];
    snprintf(output, sizeof output, "LD_DEBUG_OUTPUT=%s/ld", dir);
    env[n++] = debug;
    env[n++] = output;
    env[n] = NULL;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -f %s/ld.*", dir);
    if (system(cmd) != 0 || run(argv, env, 0) != 0) return -1;
    snprintf(cmd, sizeof cmd, "cat %s/ld.* | grep -o 'file=[^ ]*' | sed 's|^file=||; s|.*/||' | sort -u",
             dir);
    FILE *p = popen(cmd, "r");
    int count = 0;
    char line[300];
    while (p != NULL && fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (count < MAX_LIBS) snprintf(names[count], 128, "%.120s", line);
        count++;
    }
    if (p != NULL) pclose(p);
    return count;
}

typedef struct bench_case {
    const char *name;
    char *argv[6];
    char *env[MAX_ENV];
} bench_case;

static double floor_ms = -1, floor_cpu;

static void measure(bench_case *c)
{
    double t[RUNS], cpu[RUNS];
    if (run(c->argv, c->env, 0) != 0) { /* the warm-up, and a check that it works */
        printf("%-46s failed (exit status not 0): run it by hand:\n", c->name);
        run(c->argv, c->env, 1);
        return;
    }
    for (int i = 0; i < RUNS; i++) {
        double start = now_ms();
        int rc = run_cpu(c->argv, c->env, 0, &cpu[i]);
        t[i] = now_ms() - start;
        if (rc != 0) {
            printf("%-46s failed at run %d\n", c->name, i + 1);
            return;
        }
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    qsort(cpu, RUNS, sizeof cpu[0], cmp_double);
    double median = (t[RUNS / 2 - 1] + t[RUNS / 2]) / 2, cpu_median = (cpu[RUNS / 2 - 1] + cpu[RUNS / 2]) / 2;
    if (floor_ms < 0) {
        floor_ms = median;
        floor_cpu = cpu_median;
    }
    static char names[MAX_LIBS][128];
    int libs = libraries(c->argv, c->env, names);
    printf("%-46s %7.2f %7.2f %+8.2f %7.2f %+8.2f %5d\n", c->name, median, t[0], median - floor_ms,
           cpu_median, cpu_median - floor_cpu, libs);
    for (int i = 0; verbose && i < libs && i < MAX_LIBS; i++)
        printf("    %s\n", names[i]);
    fflush(stdout);
}

static int start_devserver(void)
{
    char prog[400], port_file[300];
    snprintf(prog, sizeof prog, "%s/tools/bkoauth-devserver", build);
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    devserver = fork();
    if (devserver == 0) {
        execl(prog, prog, "--listen", "127.0.0.1:0", "--port-file", port_file, "--quiet", "--app-code",
              "bench-app", "--app-secret", "bench-secret-0123456789abcdef", "--user",
              "cred-alice-0123456789=alice", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(port_file, "r");
        unsigned port = 0;
        if (f != NULL && fscanf(f, "%u", &port) == 1 && port > 0) {
            fclose(f);
            snprintf(dev_url, sizeof dev_url, "OAUTH_API_URL=http://127.0.0.1:%u", port);
            return 0;
        }
        if (f != NULL) fclose(f);
        usleep(100000);
    }
    return -1;
}

/* The settings of every case, the store's URL last (index 5). */
static void settings(char *env[MAX_ENV], char *store)
{
    env[0] = "PATH=/usr/bin:/bin";
    env[1] = dev_url;
    env[2] = "APP_CODE=bench-app";
    env[3] = "SECRET_KEY=bench-secret-0123456789abcdef";
    env[4] = "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}";
    env[5] = store;
    env[6] = NULL;
}

/* A fresh token for alice saved in store (BKOAUTH_DATABASE_URL=...) through the devserver. */
static int save_token(const char *cli, char *store)
{
    char *env[MAX_ENV];
    settings(env, store);
    char *argv[] = {(char *)cli, "user-token", "alice", "--cookie", "bk_token=cred-alice-0123456789", NULL};
    int rc = run(argv, env, 0);
    if (rc != 0) run(argv, env, 1); /* again, to show why */
    return rc;
}

int main(int argc, char **argv)
{
    int a = 1;
    if (a < argc && strcmp(argv[a], "-v") == 0) verbose = a++;
    if (a < argc) build = argv[a];
    if (mkdtemp(dir) == NULL || start_devserver() != 0) {
        fprintf(stderr, "bench_startup: cannot start %s/tools/bkoauth-devserver\n", build);
        return 1;
    }
    static char cli[400], client[400], floor_prog[400], floor_libs[400], sqlite[400], pg[400], my[400];
    snprintf(cli, sizeof cli, "%s/tools/bkoauth", build);
    snprintf(client, sizeof client, "%s/bench/bench_startup_client", build);
    snprintf(floor_prog, sizeof floor_prog, "%s/bench/bench_startup_floor", build);
    snprintf(floor_libs, sizeof floor_libs, "%s/bench/bench_startup_floor_libs", build);
    snprintf(sqlite, sizeof sqlite, "BKOAUTH_DATABASE_URL=sqlite:%s/tokens.db", dir);
    const char *pg_url = getenv("BKOAUTH_TEST_PG_URL"), *my_url = getenv("BKOAUTH_TEST_MYSQL_URL");
    snprintf(pg, sizeof pg, "BKOAUTH_DATABASE_URL=%s", pg_url ? pg_url : "");
    snprintf(my, sizeof my, "BKOAUTH_DATABASE_URL=%s", my_url ? my_url : "");

    bench_case cases[] = {
        {"trivial C program (the floor)", {floor_prog, NULL}, {0}},
        {"the same + libjansson, libsqlite3 (unused)", {floor_libs, NULL}, {0}},
        {"bkoauth --version", {cli, "--version", NULL}, {0}},
        {"bkoauth token alice (SQLite)", {cli, "token", "alice", NULL}, {0}},
        {"bkoauth token alice (PostgreSQL)", {cli, "token", "alice", NULL}, {0}},
        {"bkoauth token alice (MariaDB)", {cli, "token", "alice", NULL}, {0}},
        {"C program: get_access_token_by_user (SQLite)", {client, "alice", NULL}, {0}},
    };
    char *stores[] = {sqlite, sqlite, sqlite, sqlite, pg_url ? pg : NULL, my_url ? my : NULL, sqlite};
    int status = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (stores[i] != NULL) settings(cases[i].env, stores[i]);
        if (stores[i] != NULL && i >= 3 && i <= 5 && save_token(cli, stores[i]) != 0) {
            fprintf(stderr, "bench_startup: could not save a token with %s\n", stores[i]);
            status = 1;
            stores[i] = NULL;
        }
    }
    printf(
        "bench_startup: whole processes, %d runs after a warm-up, ms: wall time fork() to exit (median,\n"
        "lowest, median over the floor's), CPU time user + system (median, over the floor's); libs: shared\n"
        "libraries loaded (LD_DEBUG=files: NEEDED and dlopen()ed)\n",
        RUNS);
    printf("%-46s %7s %7s %8s %7s %8s %5s\n", "", "wall", "lowest", "+floor", "cpu", "+floor", "libs");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (stores[i] == NULL)
            printf("%-46s not measured (%s not set)\n", cases[i].name,
                   i == 4 ? "BKOAUTH_TEST_PG_URL" : "BKOAUTH_TEST_MYSQL_URL");
        else
            measure(&cases[i]);
    }
    kill(devserver, SIGTERM);
    waitpid(devserver, NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) status = 1;
    return status;
}

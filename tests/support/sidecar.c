/* SPDX-License-Identifier: MIT */
/* sidecar.c - a throwaway CA, stunnel and tinyproxy for the tests (see sidecar.h). */
#include "sidecar.h"

#include "devserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static void sidecar_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double sidecar_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sidecar_make_pki(const char *dir)
{
    static const char *script =
        "set -e; cd \"$1\"; exec 2>pki.log\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; }\n"
        "key ca.key\n"
        "openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=bkoauth-test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign\n"
        "leaf() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$2;"
        " printf 'subjectAltName=%s\\n' \"$3\" > $1.ext;"
        " openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $4 -extfile $1.ext"
        " -out $1.pem; }\n"
        "leaf good 127.0.0.1 IP:127.0.0.1,DNS:localhost 2\n"
        "leaf other ssm.example.com DNS:ssm.example.com 2\n"
        "leaf expired 127.0.0.1 IP:127.0.0.1 -1\n"
        "key self.key\n"
        "openssl req -x509 -new -key self.key -out self.pem -days 2 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1\n"
        "mkdir -p capath; cp ca.pem capath/; openssl rehash capath\n";
    char cmd[600], path[256];
    snprintf(path, sizeof path, "%s/pki.sh", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", path, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "sidecar: making the test CA failed (see %s/pki.log)\n", dir);
        return -1;
    }
    return 0;
}

/* 1 when something accepts connections on 127.0.0.1:port. */
static int sidecar_listening(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

/* Runs argv in the background (no descriptors of ours, SIGTERM when this thread ends) and waits
 * until port listens. The child's pid, or -1 with a message on stderr. */
static pid_t sidecar_spawn(const char *const *argv, int port)
{
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
#ifdef __linux__
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
#else
        (void)parent;
#endif
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "sidecar: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    double deadline = sidecar_now() + 10.0;
    while (sidecar_now() < deadline) {
        if (sidecar_listening(port)) return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "sidecar: %s exited at start\n", argv[0]);
            return -1;
        }
        sidecar_sleep_ms(20);
    }
    fprintf(stderr, "sidecar: %s did not listen on %d within 10 s; killed\n", argv[0], port);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

sidecar *sidecar_stunnel(const char *dir, int backend_port)
{
    static const char *names[TLS_PORTS] = {"good", "other", "expired", "self"};
    sidecar *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    snprintf(s->conf, sizeof s->conf, "%s/stunnel.conf", dir);
    FILE *f = fopen(s->conf, "w");
    if (f == NULL) {
        free(s);
        return NULL;
    }
    fprintf(f, "foreground = quiet\npid =\nsyslog = no\noutput = %s/stunnel.log\ndebug = 4\n", dir);
    for (int i = 0; i < TLS_PORTS; i++) {
        s->ports[i] = devserver_free_port();
        fprintf(f, "[%s]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s/%s.pem\nkey = %s/%s.key\n",
                names[i], s->ports[i], backend_port, dir, names[i], dir, names[i]);
    }
    fclose(f);
    s->port = s->ports[0];
    const char *argv[] = {"stunnel4", s->conf, NULL};
    if ((s->pid = sidecar_spawn(argv, s->ports[TLS_PORTS - 1])) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

sidecar *sidecar_tinyproxy(const char *dir, const char *user, const char *password)
{
    sidecar *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->port = devserver_free_port();
    snprintf(s->conf, sizeof s->conf, "%s/tinyproxy-%d.conf", dir, s->port);
    snprintf(s->log, sizeof s->log, "%s/tinyproxy-%d.log", dir, s->port);
    FILE *f = fopen(s->conf, "w");
    if (f == NULL) {
        free(s);
        return NULL;
    }
    fprintf(f,
            "Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogFile \"%s\"\nLogLevel Info\n"
            "PidFile \"%s/tinyproxy-%d.pid\"\nAllow 127.0.0.1\n",
            s->port, s->log, dir, s->port);
    if (user != NULL) fprintf(f, "BasicAuth %s %s\n", user, password);
    fclose(f);
    const char *argv[] = {"tinyproxy", "-d", "-c", s->conf, NULL};
    if ((s->pid = sidecar_spawn(argv, s->port)) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void sidecar_stop(sidecar *s)
{
    if (s == NULL) return;
    kill(s->pid, SIGTERM);
    double deadline = sidecar_now() + 5.0;
    int reaped = 0;
    while (!reaped && sidecar_now() < deadline) {
        pid_t p = waitpid(s->pid, NULL, WNOHANG);
        reaped = p == s->pid || (p < 0 && errno == ECHILD);
        if (!reaped) sidecar_sleep_ms(20);
    }
    if (!reaped) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    free(s);
}

int sidecar_count_lines(const char *file, const char *needle)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, needle) != NULL) n++;
    fclose(f);
    return n;
}

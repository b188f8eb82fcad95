/* SPDX-License-Identifier: MIT */
/* sidecar.h - the real outside components a test starts on loopback beside bkoauth-devserver: a
 * throwaway CA and its certificates (the openssl command), a TLS terminator in front of the
 * devserver (stunnel4), an HTTP proxy (tinyproxy). Each server runs in the foreground as a child
 * that gets SIGTERM when the calling thread ends (so a failed test leaves none behind). */
#ifndef BKOAUTH_TEST_SIDECAR_H
#define BKOAUTH_TEST_SIDECAR_H

#include <sys/types.h>

/* Makes in dir (which exists): ca.pem (a throwaway CA), capath/ (ca.pem hashed for
 * BKOAUTH_CA_PATH), good.{pem,key} (for 127.0.0.1 and localhost, from the CA), other.{pem,key}
 * (for ssm.example.com only, from the CA), expired.{pem,key} (127.0.0.1, from the CA, expired
 * yesterday), self.{pem,key} (127.0.0.1, self-signed). 0, or -1 with a message on stderr. */
int sidecar_make_pki(const char *dir);

/* The TLS ports of sidecar_stunnel(), in this order. */
enum { TLS_GOOD, TLS_OTHER_HOST, TLS_EXPIRED, TLS_SELF_SIGNED, TLS_PORTS };

typedef struct sidecar {
    pid_t pid;
    int port; /* tinyproxy's port; stunnel's first (see ports) */
    int ports[TLS_PORTS];
    char log[160]; /* tinyproxy's log file */
    char conf[160];
} sidecar;

/* stunnel in front of 127.0.0.1:backend_port, one TLS port per certificate of dir (see the enum).
 * NULL with a message on stderr when it does not listen within 10 s. */
sidecar *sidecar_stunnel(const char *dir, int backend_port);

/* tinyproxy on a free loopback port, its log in dir/tinyproxy-<port>.log; with BasicAuth user and
 * password when user is not NULL. NULL with a message on stderr when it does not listen in 10 s. */
sidecar *sidecar_tinyproxy(const char *dir, const char *user, const char *password);

/* Stops it (SIGTERM, then SIGKILL after 5 s) and frees s. NULL is fine. */
void sidecar_stop(sidecar *s);

/* How many lines of file hold needle (0 when the file cannot be read). */
int sidecar_count_lines(const char *file, const char *needle);

#endif

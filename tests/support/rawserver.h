/* SPDX-License-Identifier: MIT */
/* rawserver.h - a hostile stand-in for the SSM service, for tests: a loopback TCP server that
 * answers every request with bytes the test gives, whatever they are (HTTP/0.9, an odd version
 * or status, megabytes of headers, a body that is no JSON), and remembers the last request.
 * One connection at a time, on its own thread. */
#ifndef BKOAUTH_TEST_RAWSERVER_H
#define BKOAUTH_TEST_RAWSERVER_H

#include <stddef.h>

typedef struct rawserver rawserver;

/* Starts one on 127.0.0.1 and a free port; NULL (a message on stderr) when it cannot. */
rawserver *rawserver_start(void);
/* Stops it and frees it. NULL is fine. */
void rawserver_stop(rawserver *r);
/* "http://127.0.0.1:PORT", no trailing slash; valid until rawserver_stop. */
const char *rawserver_url(const rawserver *r);
/* What every connection gets from now on: len bytes (copied), then the connection is closed. */
void rawserver_answer(rawserver *r, const char *bytes, size_t len);
/* The same, with an HTTP/1.1 status line, a Content-Length and the body given. */
void rawserver_answer_http(rawserver *r, int status, const char *body);
/* Requests answered so far. */
int rawserver_requests(rawserver *r);
/* The last request as received (head and body), NUL-terminated; the caller frees it. NULL when
 * none came. */
char *rawserver_last_request(rawserver *r);

#endif

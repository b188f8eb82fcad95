/* SPDX-License-Identifier: MIT */
/* port_file.h - what the programs of tools/ share: the file a program started with port 0
 * writes its bound port to (bkoauth-devserver --port-file, bkoauth-agent --port-file). */
#ifndef BKOAUTH_TOOLS_PORT_FILE_H
#define BKOAUTH_TOOLS_PORT_FILE_H

/* Writes "PORT\n" to path atomically: a temporary file beside it, renamed over it, so that a
 * reader never sees a partial number. 0 on success; -1 with errno set, and nothing left behind. */
int tool_write_port_file(const char *path, unsigned port);

#endif

/* SPDX-License-Identifier: MIT */
/* cli_agent.h - bkoauth --agent: the token commands asked of a running bkoauth-agent over its
 * Unix socket (HTTP/1.1, docs/AGENT.md) instead of opening the token store. */
#ifndef BKOAUTH_CLI_AGENT_H
#define BKOAUTH_CLI_AGENT_H

/* Where the agent listens when neither --agent SOCKET nor BKOAUTH_AGENT names a socket. */
#define CLI_AGENT_DEFAULT_SOCKET "/run/bkoauth/agent.sock"
/* The environment variable that turns the agent path on and names its socket. */
#define CLI_AGENT_ENV "BKOAUTH_AGENT"

/* One token command for the agent. Every pointer is borrowed. */
typedef struct cli_agent_call {
    const char *socket;    /* the agent's Unix socket (see cli_agent_socket()) */
    const char *command;   /* "app-token", "user-token", "token" or "refresh" */
    const char *user;      /* USER of user-token, token and refresh; NULL for app-token */
    const char *cookie;    /* user-token --cookie */
    const char *client_ip; /* user-token --client-ip; NULL: 127.0.0.1 */
    int json;              /* --json */
} cli_agent_call;

/* 1 when command is one the agent answers (app-token, user-token, token, refresh), else 0. */
int cli_agent_serves(const char *command);

/* The socket to ask: option (the value of --agent, NULL when --agent had none) when given,
 * else $BKOAUTH_AGENT when not empty, else CLI_AGENT_DEFAULT_SOCKET. enabled is whether --agent
 * was given; without it the agent is used only when $BKOAUTH_AGENT is set and not empty.
 * Returns NULL when the agent is not to be used. */
const char *cli_agent_socket(int enabled, const char *option);

/* Runs the command against the agent and prints what the direct path prints: the access_token
 * alone, or with --json the token's object; an error as "bkoauth: <CodeName>: <message>".
 * Returns the exit status of the direct path (0, 3 TokenAPIError, 4 TokenNotExist, ...; 1 when
 * the agent cannot be reached or refuses the caller). */
int cli_agent_run(const cli_agent_call *call);

#endif

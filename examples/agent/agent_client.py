#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""agent_client.py - tokens from bkoauth-agent in Python, standard library only.

http.client speaks HTTP/1.1 over any socket: UnixHTTPConnection only replaces connect() with
an AF_UNIX socket, so the requests, the keep-alive and the JSON answers are the usual ones.

    python3 agent_client.py app                          the APP access_token
    python3 agent_client.py token USER                   USER's saved access_token
    python3 agent_client.py login USER BK_TOKEN [IP]     log USER in with the bk_token cookie
    python3 agent_client.py refresh USER [REJECTED]      renew USER's token now
    python3 agent_client.py health                       the agent's /healthz

Prints the access_token alone (health: the JSON). An error is printed on stderr as the agent
names it, exit status 1; 3 when no agent answers. The socket: $BKOAUTH_AGENT, else
/run/bkoauth/agent.sock. In a service, keep one AgentClient and call its methods.
"""
import http.client
import json
import os
import socket
import sys
import urllib.parse

DEFAULT_SOCKET = "/run/bkoauth/agent.sock"


class AgentError(Exception):
    """An error answer: name is the library's code name (TokenNotExist, TokenAPIError, StoreError)
    or the agent's (Forbidden, BadRequest, ShuttingDown); status the HTTP status."""

    def __init__(self, name, message, status):
        super().__init__(f"{name}: {message}")
        self.name, self.message, self.status = name, message, status


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("agent", timeout=timeout)  # the host name is not looked at
        self.socket_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.socket_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class AgentClient:
    def __init__(self, path=None):
        self.path = path or os.environ.get("BKOAUTH_AGENT") or DEFAULT_SOCKET
        self.conn = UnixHTTPConnection(self.path)

    def _ask(self, method, target, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):  # a kept-alive connection the agent closed meanwhile: once more
            try:
                self.conn.request(method, target, body=data, headers=headers)
                answer = self.conn.getresponse()
                payload = json.loads(answer.read() or b"{}")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt == 2:
                    raise
        if answer.status != 200:
            raise AgentError(payload.get("error", f"HTTP {answer.status}"), payload.get("message", ""), answer.status)
        return payload

    @staticmethod
    def _user(user):
        return urllib.parse.quote(user, safe="")

    def app_token(self):
        return self._ask("GET", "/v1/app/token")

    def user_token(self, user):
        return self._ask("GET", f"/v1/users/{self._user(user)}/token")

    def login(self, user, bk_token, client_ip="127.0.0.1"):
        return self._ask("POST", f"/v1/users/{self._user(user)}/login",
                         {"cookies": {"bk_token": bk_token}, "client_ip": client_ip})

    def refresh(self, user, rejected=None):
        body = None if rejected is None else {"access_token": rejected}
        return self._ask("POST", f"/v1/users/{self._user(user)}/refresh", body)

    def health(self):
        return self._ask("GET", "/healthz")


def main(argv):
    usage = "usage: agent_client.py app | token USER | login USER BK_TOKEN [IP] | refresh USER [REJECTED] | health"
    calls = {"app": (0, 0), "token": (1, 1), "login": (2, 3), "refresh": (1, 2), "health": (0, 0)}
    if len(argv) < 1 or argv[0] not in calls or not calls[argv[0]][0] <= len(argv) - 1 <= calls[argv[0]][1]:
        print(usage, file=sys.stderr)
        return 2
    agent = AgentClient()
    command, args = argv[0], argv[1:]
    try:
        if command == "health":
            print(json.dumps(agent.health()))
            return 0
        method = {"app": agent.app_token, "token": agent.user_token, "login": agent.login,
                  "refresh": agent.refresh}[command]
        print(method(*args)["access_token"])
        return 0
    except AgentError as e:
        print(f"agent_client.py: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"agent_client.py: no agent at {agent.path}: start bkoauth-agent ({e})", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

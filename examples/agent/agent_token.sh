#!/bin/sh
# SPDX-License-Identifier: MIT
# agent_token.sh - a token from bkoauth-agent in a shell job, with curl --unix-socket only.
#
#   agent_token.sh app                        the APP access_token
#   agent_token.sh token USER                 USER's saved access_token
#   agent_token.sh login USER BK_TOKEN [IP]   log USER in with the bk_token cookie's value
#   agent_token.sh refresh USER [REJECTED]    renew USER's token now (REJECTED: the token an API
#                                             refused; one another caller renewed is then reused)
#
# Prints the access_token alone, so that  T=$(agent_token.sh token alice)  works. An error is
# printed on stderr as the agent names it (TokenNotExist, TokenAPIError, Forbidden...) and the
# exit status is 1 (3 when the agent cannot be reached). The socket: $BKOAUTH_AGENT, else
# /run/bkoauth/agent.sock. USER must be a plain name here (letters, digits, - . _ @); the
# Python and Go examples encode any name.
set -u
sock=${BKOAUTH_AGENT:-/run/bkoauth/agent.sock}

usage() { echo "usage: $0 app | token USER | login USER BK_TOKEN [IP] | refresh USER [REJECTED]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "${2:-}" in *[!A-Za-z0-9._@-]*) echo "$0: use a plain user name here" >&2; exit 2 ;; esac

# ask METHOD PATH [BODY]: the answer's body on stdout, its HTTP status in $status.
# The host name of the URL is not looked at (curl needs one); '@' in a user is sent as %40.
ask() {
  path=$(printf '%s' "$2" | sed 's/@/%40/g')
  if [ $# -ge 3 ]; then
    out=$(curl -sS --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' --data-binary "$3" \
          -w '\n%{http_code}' "http://agent$path") || { echo "$0: no agent at $sock: start bkoauth-agent" >&2; exit 3; }
  else
    out=$(curl -sS --unix-socket "$sock" -X "$1" -w '\n%{http_code}' "http://agent$path") \
      || { echo "$0: no agent at $sock: start bkoauth-agent" >&2; exit 3; }
  fi
  status=$(printf '%s\n' "$out" | tail -n 1)
  body=$(printf '%s\n' "$out" | sed '$d')
}

case "$1" in
  app) [ $# -eq 1 ] || usage; ask GET /v1/app/token ;;
  token) [ $# -eq 2 ] || usage; ask GET "/v1/users/$2/token" ;;
  login)
    [ $# -ge 3 ] && [ $# -le 4 ] || usage
    # a cookie value holds no quote or backslash (the agent refuses them), so it goes into JSON as is
    ask POST "/v1/users/$2/login" "{\"cookies\": {\"bk_token\": \"$3\"}, \"client_ip\": \"${4:-127.0.0.1}\"}" ;;
  refresh)
    [ $# -ge 2 ] && [ $# -le 3 ] || usage
    if [ $# -eq 3 ]; then ask POST "/v1/users/$2/refresh" "{\"access_token\": \"$3\"}"; else ask POST "/v1/users/$2/refresh"; fi ;;
  *) usage ;;
esac

if [ "$status" = 200 ]; then
  # the token alphabet has no quote: the member's value is the text between its quotes
  printf '%s\n' "$body" | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p'
else
  # {"error": NAME, "message": ..., "status": N}
  name=$(printf '%s\n' "$body" | sed -n 's/.*"error": *"\([^"]*\)".*/\1/p')
  message=$(printf '%s\n' "$body" | sed -n 's/.*"message": *"\(\([^"\\]\|\\.\)*\)".*/\1/p')
  echo "$0: ${name:-HTTP $status}: $message" >&2
  exit 1
fi

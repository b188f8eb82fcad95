// SPDX-License-Identifier: MIT

// agent_client.go - tokens from bkoauth-agent in Go, standard library only: what
// `curl --unix-socket /run/bkoauth/agent.sock http://agent/v1/users/alice/token` does, as a Go
// service does it. An http.Client whose Transport dials the Unix socket whatever the URL's host
// says; the requests, keep-alive and JSON answers are the usual ones.
//
//	go run agent_client.go app                        the APP access_token
//	go run agent_client.go token USER                 USER's saved access_token
//	go run agent_client.go login USER BK_TOKEN [IP]   log USER in with the bk_token cookie
//	go run agent_client.go refresh USER [REJECTED]    renew USER's token now
//
// Prints the access_token alone. An error is printed on stderr as the agent names it, exit
// status 1; 3 when no agent answers. The socket: $BKOAUTH_AGENT, else /run/bkoauth/agent.sock.
// In a service, keep one Agent (its http.Client keeps the connections) and call its methods.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Token is the agent's token answer (the refresh_token is never handed out).
type Token struct {
	AccessToken     string  `json:"access_token"`
	Scope           string  `json:"scope"`
	EnvName         string  `json:"env_name"`
	UserID          *string `json:"user_id"` // nil for the APP token
	Expires         string  `json:"expires"` // ISO 8601 UTC
	ExpiresAt       int64   `json:"expires_at"`
	ExpiresIn       int64   `json:"expires_in"`
	HasRefreshToken bool    `json:"has_refresh_token"`
}

// AgentError is an error answer: Name is the library's code name (TokenNotExist,
// TokenAPIError, StoreError) or the agent's (Forbidden, BadRequest, ShuttingDown).
type AgentError struct {
	Name, Message string
	Status        int
}

func (e *AgentError) Error() string { return e.Name + ": " + e.Message }

// Agent asks one bkoauth-agent.
type Agent struct {
	Socket string
	client *http.Client
}

func NewAgent(socket string) *Agent {
	if socket == "" {
		socket = os.Getenv("BKOAUTH_AGENT")
	}
	if socket == "" {
		socket = "/run/bkoauth/agent.sock"
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}
	return &Agent{Socket: socket, client: &http.Client{
		Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4},
		Timeout:   60 * time.Second,
	}}
}

func (a *Agent) ask(method, path string, body any) (*Token, error) {
	var payload *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		payload = bytes.NewReader(b)
	} else {
		payload = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, "http://agent"+path, payload) // the host is not looked at
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		return nil, &AgentError{e.Error, e.Message, resp.StatusCode}
	}
	var t Token
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, err
	}
	return &t, nil
}

func (a *Agent) AppToken() (*Token, error) { return a.ask("GET", "/v1/app/token", nil) }

func (a *Agent) UserToken(user string) (*Token, error) {
	return a.ask("GET", "/v1/users/"+url.PathEscape(user)+"/token", nil)
}

func (a *Agent) Login(user, bkToken, clientIP string) (*Token, error) {
	body := map[string]any{"cookies": map[string]string{"bk_token": bkToken}, "client_ip": clientIP}
	return a.ask("POST", "/v1/users/"+url.PathEscape(user)+"/login", body)
}

// Refresh renews the user's token now; rejected (when not "") is the token an API refused, so
// that a token another caller renewed meanwhile is reused instead of renewed again.
func (a *Agent) Refresh(user, rejected string) (*Token, error) {
	var body any
	if rejected != "" {
		body = map[string]string{"access_token": rejected}
	}
	return a.ask("POST", "/v1/users/"+url.PathEscape(user)+"/refresh", body)
}

func main() {
	args := os.Args[1:]
	agent := NewAgent("")
	var t *Token
	var err error
	switch {
	case len(args) == 1 && args[0] == "app":
		t, err = agent.AppToken()
	case len(args) == 2 && args[0] == "token":
		t, err = agent.UserToken(args[1])
	case (len(args) == 3 || len(args) == 4) && args[0] == "login":
		ip := "127.0.0.1"
		if len(args) == 4 {
			ip = args[3]
		}
		t, err = agent.Login(args[1], args[2], ip)
	case (len(args) == 2 || len(args) == 3) && args[0] == "refresh":
		rejected := ""
		if len(args) == 3 {
			rejected = args[2]
		}
		t, err = agent.Refresh(args[1], rejected)
	default:
		fmt.Fprintln(os.Stderr, "usage: agent_client app | token USER | login USER BK_TOKEN [IP] | refresh USER [REJECTED]")
		os.Exit(2)
	}
	var ae *AgentError
	switch {
	case errors.As(err, &ae):
		fmt.Fprintf(os.Stderr, "agent_client: %s\n", ae)
		os.Exit(1)
	case err != nil:
		fmt.Fprintf(os.Stderr, "agent_client: no agent at %s: start bkoauth-agent (%v)\n", agent.Socket, err)
		os.Exit(3)
	}
	fmt.Println(t.AccessToken)
}

// Package oidctest runs a real OpenID Connect provider in a test: the
// example OP of github.com/zitadel/oidc/v3 (its example/server packages,
// run in-process), on 127.0.0.1 at a port of its own, with its login form
// and the people a test gives it. It is a complete provider (discovery,
// keys, authorization code with PKCE, tokens, user info), not a fake.
package oidctest

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"
)

// The client Trail is registered as.
const (
	ClientID     = "trail"
	ClientSecret = "trail-secret"
)

// Password is every Person's password.
const Password = "correct horse battery staple"

// Person is someone the provider knows: they sign in on its login form
// with Username and Password.
type Person struct {
	ID, Username, Email string
}

// Provider is a running provider.
type Provider struct {
	Issuer string // http://127.0.0.1:PORT/
}

// Start runs the provider until the test ends, with people, and with the
// client ClientID (secret ClientSecret) allowed to redirect to
// redirectURIs.
func Start(t testing.TB, people []Person, redirectURIs ...string) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/"
	users := map[string]*storage.User{}
	for _, p := range people {
		users[p.ID] = &storage.User{ID: p.ID, Username: p.Username, Password: Password, FirstName: p.Username,
			Email: p.Email, EmailVerified: true, PreferredLanguage: language.English}
	}
	// The example's user store is read from a file or built in; a file
	// gives the test's people.
	path := filepath.Join(t.TempDir(), "users.json")
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := storage.StoreFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := storage.NewStorageWithClients(us, map[string]*storage.Client{
		ClientID: storage.WebClient(ClientID, ClientSecret, redirectURIs...),
	})
	// A nil logger leaves the process's default logger as it is.
	h := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &Provider{Issuer: issuer}
}

// Command webapp is a small net/http app that keeps its audit trail in an
// embedded Trail log (SQLite, signed checkpoints) through package client:
//
//   - POST /login: user_login_attempted, then user_login_success or
//     user_login_failed under the same correlation id (client.Begin)
//   - GET /export: data_exported, recorded before the CSV is sent
//   - POST /permissions: permission_granted or permission_revoked
//   - POST /entries/approve: bulk_operation over the entry ids
//
// Every route runs behind client.Middleware, so each event carries the
// client's IP, user agent, request id and trace id, and a refused request
// (401, 403) is recorded as access_denied. Users sign in with HTTP Basic
// authentication; the demo password of every user is "demo".
//
//	go run ./examples/webapp [-addr 127.0.0.1:8090] [-data DIR]
//
// Without -data the log lives in a temporary directory removed on exit; with
// it, DIR holds trail.db and the signing key log.key as `trail --data DIR`
// expects, so `trail query --data DIR --tenant webapp` shows the events.
package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/redact"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/tlog"
)

// tenant is the log the app's events go to.
const tenant = "webapp"

// demoPassword is every demo user's password.
const demoPassword = "demo"

// users are the demo accounts, by email, with their role.
var users = map[string]string{
	"alice@example.com": "admin",
	"bob@example.com":   "member",
}

// entries are the demo data /export serves.
var entries = [][]string{
	{"e-1", "120.00", "approved"},
	{"e-2", "75.50", "pending"},
	{"e-3", "310.25", "approved"},
	{"e-4", "42.00", "rejected"},
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address to listen on")
	data := flag.String("data", "", "directory of the audit log (default: a temporary one, removed on exit)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *data); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trail-webapp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cat := catalog.Default()
	db, err := openLog(ctx, dir, cat)
	if err != nil {
		return err
	}
	defer db.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newApp(client.NewLocal(db, tenant, trail.Policy{}), cat), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	fmt.Printf(`webapp listening on %s (audit log in %s)

  curl -i -d user=alice@example.com -d password=demo %[1]s/login
  curl -i -d user=alice@example.com -d password=wrong %[1]s/login
  curl -i -u alice@example.com:demo '%[1]s/export?status=approved'
  curl -i -u alice@example.com:demo -d user=bob@example.com -d permission=workspace.change_entry -d action=grant -d reason='Promoted to reviewer' %[1]s/permissions
  curl -i -u bob@example.com:demo -d user=bob@example.com -d permission=workspace.admin -d action=grant %[1]s/permissions
  curl -i -u alice@example.com:demo -d ids=e-1,e-2,e-3 -d criteria=auto_approval_eligible %[1]s/entries/approve

then, with the trail CLI: trail query --data %[2]s --tenant %s

`, url, dir, tenant)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// openLog opens the SQLite log in dir, signing its checkpoints with the key
// in dir/log.key, made on first use.
func openLog(ctx context.Context, dir string, cat *catalog.Catalog) (*sqlite.DB, error) {
	keyPath := filepath.Join(dir, "log.key")
	skey, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		var s string
		if s, _, err = tlog.GenerateKey("webapp"); err == nil {
			skey = []byte(s + "\n")
			if err = os.MkdirAll(dir, 0o700); err == nil {
				err = os.WriteFile(keyPath, skey, 0o600)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	signer, err := tlog.NewSigner(string(skey))
	if err != nil {
		return nil, err
	}
	v := &trail.Validator{Actions: cat, Redactor: redact.New(redact.Options{}), Limits: trail.DefaultLimits()}
	return sqlite.Open(ctx, filepath.Join(dir, "trail.db"), sqlite.Options{Validator: v, Signer: signer})
}

// app is the web app: its recorder, the catalog Begin pairs attempts in,
// and each email's consecutive failed logins.
type app struct {
	rec client.Recorder
	cat *catalog.Catalog

	mu       sync.Mutex
	failures map[string]int
}

// newApp returns the app's handler: its routes behind client.Middleware.
func newApp(rec client.Recorder, cat *catalog.Catalog) http.Handler {
	a := &app{rec: rec, cat: cat, failures: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /export", a.signedIn(a.export))
	mux.HandleFunc("POST /permissions", a.signedIn(a.permissions))
	mux.HandleFunc("POST /entries/approve", a.signedIn(a.approve))
	return client.Middleware(client.MiddlewareOptions{
		ActorFunc: func(r *http.Request) trail.Actor {
			if email, ok := authenticate(r); ok {
				return trail.Actor{Type: trail.ActorUser, ID: email, Roles: []string{users[email]}}
			}
			return trail.Actor{}
		},
		Recorder: rec,
		// /login records its own attempt and outcome; every other route's
		// refusals (401, 403) are recorded as access_denied.
		RecordAccess: func(r *http.Request, status int) bool { return r.Pattern != "POST /login" && status >= 400 },
	})(mux)
}

// authenticate checks the request's Basic credentials.
func authenticate(r *http.Request) (email string, ok bool) {
	email, password, ok := r.BasicAuth()
	if !ok || !checkPassword(email, password) {
		return "", false
	}
	return email, true
}

func checkPassword(email, password string) bool {
	_, known := users[email]
	return known && subtle.ConstantTimeCompare([]byte(password), []byte(demoPassword)) == 1
}

// signedIn refuses requests without valid credentials.
func (a *app) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := authenticate(r); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="webapp"`)
			http.Error(w, "sign in (Basic authentication)", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// auditFailed answers a request whose audit event could not be recorded:
// the app refuses to act unrecorded.
func auditFailed(w http.ResponseWriter, err error) {
	log.Printf("audit: %v", err)
	http.Error(w, "could not record the audit event", http.StatusInternalServerError)
}

// login checks a user's password, recording the attempt and its outcome.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	email, password := r.PostFormValue("user"), r.PostFormValue("password")
	if email == "" {
		http.Error(w, "want user and password", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	op, err := client.Begin(ctx, a.rec, a.cat, &trail.Event{
		Action:  catalog.UserLoginAttempted,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: email},
		Context: map[string]any{"email": email, "method": "password"},
	})
	if err != nil {
		auditFailed(w, err)
		return
	}
	if !checkPassword(email, password) {
		a.mu.Lock()
		a.failures[email]++
		n := a.failures[email]
		a.mu.Unlock()
		reason := "invalid_password"
		if _, known := users[email]; !known {
			reason = "user_not_found"
		}
		if err := op.Fail(ctx, reason, map[string]any{"attempts": n}); err != nil {
			auditFailed(w, err)
			return
		}
		http.Error(w, "wrong user or password", http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	delete(a.failures, email)
	a.mu.Unlock()
	if err := op.Succeed(ctx, map[string]any{"mfa": false, "remember_me": false}); err != nil {
		auditFailed(w, err)
		return
	}
	fmt.Fprintf(w, "welcome, %s\n", email)
}

// export sends the entries (those of ?status= when given) as CSV, recording
// the export first.
func (a *app) export(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write([]string{"id", "amount", "status"})
	n := 0
	for _, e := range entries {
		if status == "" || e[2] == status {
			cw.Write(e)
			n++
		}
	}
	cw.Flush()
	filters := map[string]any{}
	if status != "" {
		filters["status"] = status
	}
	err := client.DataExport(r.Context(), a.rec, trail.Actor{}, client.DataExportInfo{
		ExportType:  "entries",
		Filters:     filters,
		ResultCount: n,
		Format:      "csv",
		Reason:      "user_request",
		FileSize:    int64(buf.Len()),
	})
	if err != nil {
		auditFailed(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="entries.csv"`)
	w.Write(buf.Bytes())
}

// permissions grants or revokes a permission; only admins may.
func (a *app) permissions(w http.ResponseWriter, r *http.Request) {
	admin, _ := authenticate(r)
	if users[admin] != "admin" {
		http.Error(w, "only admins change permissions", http.StatusForbidden)
		return
	}
	user, permission, action := r.PostFormValue("user"), r.PostFormValue("permission"), r.PostFormValue("action")
	if user == "" || permission == "" || (action != "grant" && action != "revoke") {
		http.Error(w, "want user, permission and action=grant|revoke", http.StatusBadRequest)
		return
	}
	// … change the permission in the app's database …
	if err := client.PermissionChange(r.Context(), a.rec, trail.Actor{}, user, permission, action == "grant", r.PostFormValue("reason")); err != nil {
		auditFailed(w, err)
		return
	}
	fmt.Fprintf(w, "%s %s: %s\n", action, permission, user)
}

// approve approves the entries ids (comma-separated, or repeated).
func (a *app) approve(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	var ids []string
	for _, v := range r.PostForm["ids"] {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		http.Error(w, "want ids", http.StatusBadRequest)
		return
	}
	// … approve them in the app's database …
	if err := client.BulkOperation(r.Context(), a.rec, trail.Actor{}, "bulk_approve", ids, r.PostFormValue("criteria")); err != nil {
		auditFailed(w, err)
		return
	}
	fmt.Fprintf(w, "approved %d entries\n", len(ids))
}

package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/client"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/redact"
)

// exampleStore returns an in-memory store that validates against the built-in
// catalog and redacts secrets, as a real one would.
func exampleStore() *memory.Store {
	return memory.New(&trail.Validator{
		Actions:  catalog.Default(),
		Redactor: redact.New(redact.Options{}),
		Limits:   trail.DefaultLimits(),
	}, nil)
}

// exampleLast returns the newest event of tenant's log.
func exampleLast(st trail.Store, tenant string) *trail.Event {
	var last *trail.Event
	st.Scan(context.Background(), tenant, 0, 0, func(ev *trail.Event) error {
		last = ev
		return nil
	})
	return last
}

// Record a login into a store in the same process.
func ExampleNewLocal() {
	st := exampleStore()
	defer st.Close()
	rec := client.NewLocal(st, "acme", trail.Policy{})

	err := rec.Record(context.Background(), &trail.Event{
		Action:  catalog.UserLoginSuccess,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-alice"},
		Targets: []trail.Target{{Type: "session", ID: "s-1"}},
		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ev := exampleLast(st, "acme")
	fmt.Println(ev.Action, ev.Seq, ev.Outcome)
	// Output: user_login_success 1 success
}

// Pair an attempt with its outcome: the catalog says which action closes
// user_login_attempted, and both events share one correlation id.
func ExampleBegin() {
	st := exampleStore()
	defer st.Close()
	rec := client.NewLocal(st, "acme", trail.Policy{})
	ctx := context.Background()

	op, err := client.Begin(ctx, rec, catalog.Default(), &trail.Event{
		Action:  catalog.UserLoginAttempted,
		Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-alice"},
		Context: map[string]any{"email": "alice@example.com", "method": "password"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// … check the password …
	if err := op.Succeed(ctx, map[string]any{"mfa": false, "remember_me": true}); err != nil {
		fmt.Println(err)
		return
	}

	var evs []*trail.Event
	st.Scan(ctx, "acme", 0, 0, func(ev *trail.Event) error {
		evs = append(evs, ev)
		return nil
	})
	for _, ev := range evs {
		fmt.Println(ev.Action, ev.Outcome)
	}
	fmt.Println("same correlation id:", evs[0].CorrelationID == evs[1].CorrelationID && evs[0].CorrelationID == op.CorrelationID())
	// Output:
	// user_login_attempted attempted
	// user_login_success success
	// same correlation id: true
}

// A bulk approval of 12 entries keeps a sample of their ids (the first and
// last five), the count, and a digest of the whole list.
func ExampleBulkOperation() {
	st := exampleStore()
	defer st.Close()
	rec := client.NewLocal(st, "acme", trail.Policy{})
	actor := trail.Actor{Type: trail.ActorUser, ID: "u-alice"}

	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, fmt.Sprintf("e-%d", i))
	}
	if err := client.BulkOperation(context.Background(), rec, actor, "bulk_approve", ids, "auto_approval_eligible"); err != nil {
		fmt.Println(err)
		return
	}
	ev := exampleLast(st, "acme")
	fmt.Println(ev.Context["sample_ids"])
	fmt.Println(ev.Context["affected_count"])
	fmt.Println(ev.Context["ids_sha256"] == client.IDsDigest(ids))
	// Output:
	// [e-1 e-2 e-3 e-4 e-5 e-8 e-9 e-10 e-11 e-12]
	// 12
	// true
}

// Middleware carries the request's context (here the trace id of its W3C
// traceparent header) into every event recorded while serving it.
func ExampleMiddleware() {
	st := exampleStore()
	defer st.Close()
	rec := client.NewLocal(st, "acme", trail.Policy{})

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := client.FileOperation(r.Context(), rec, trail.Actor{}, client.FileInfo{Name: "q3.pdf"}, client.FileDownload)
		if err != nil {
			http.Error(w, "could not record the download", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("%PDF-1.7 …"))
	})
	h := client.Middleware(client.MiddlewareOptions{
		ActorFunc: func(r *http.Request) trail.Actor { return trail.Actor{Type: trail.ActorUser, ID: "u-alice"} },
	})(app)

	r := httptest.NewRequest("GET", "/files/q3.pdf", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), r)

	ev := exampleLast(st, "acme")
	fmt.Println(ev.Action, ev.Actor.ID, ev.Request.Path)
	fmt.Println(ev.Request.TraceID)
	// Output:
	// file_downloaded u-alice /files/q3.pdf
	// 4bf92f3577b34da6a3ce929d0e0e4736
}

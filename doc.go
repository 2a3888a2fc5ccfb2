// Package trail is a tamper-evident audit trail. It validates events
// against a catalog of auditable actions, strips secrets before anything is
// stored, and keeps each tenant's events in an append-only Merkle log whose
// signed checkpoints anyone holding the verifier key can check.
//
// An app builds a [Validator] from the built-in catalog (catalog.Default)
// and the redactor (redact.New), opens a [Store] with it and a checkpoint
// signer (tlog.NewSigner, of a key from tlog.GenerateKey), and appends
// events ([Event]):
//
//	v := &trail.Validator{Actions: catalog.Default(), Redactor: redact.New(redact.Options{})}
//	store, err := sqlite.Open(ctx, "trail.db", sqlite.Options{Validator: v, Signer: signer})
//	...
//	res, err := store.Append(ctx, "acme", []*trail.Event{{
//		Action:  catalog.UserLoginSuccess,
//		Actor:   trail.Actor{Type: trail.ActorUser, ID: "u-1"},
//		Context: map[string]any{"method": "password", "mfa": true, "remember_me": false},
//	}}, trail.AppendOptions{})
//
// sqlite.Open is the embedded store: one file, no server. postgres.Open
// keeps the log in PostgreSQL, for a fleet of Trail processes on one
// database; memory.New is for tests. [Store.Query] reads a page of the
// events matching a [Query], and [Store.Get] one event by its id.
//
// # Verifying
//
// tlog.VerifyStore checks a tenant's whole log under a verifier key
// (tlog.Signer.Verifier, or tlog.NewVerifier of the key auditors are given) and
// its tlog.Report names the first damage. To prove one event, open the
// latest checkpoint ([Log.Checkpoint], then tlog.Verifier.Open), ask
// tlog.InclusionProof for leaf ev.Seq-1 at the checkpoint's size, and check
// it with tlog.VerifyInclusion against tlog.LeafHash of the event's stored
// bytes (the Body of its [Leaf], from [Log.ScanLeaves]).
//
// Package client records events from an app, in-process or to a server.
// The server is cmd/trail: trail serve runs the HTTP API and web UI
// (package http), and trail verify, prove and export do the above from the
// command line.
package trail

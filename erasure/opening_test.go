package erasure_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/memory"
)

// An event's openings are its own keys: with them, and nothing else, a
// verifier opens the event as the Sealer does; not another event of the
// same subject; not once the subject is erased (its values read as
// erased); not with an opening changed.
func TestOpenings(t *testing.T) {
	ctx := context.Background()
	keys := memory.NewSubjectKeys()
	s := erasure.NewSealer(keys, catalog.Default())
	ev := failedLogin("u-1", alice)
	ev.ID = "01a21700-0000-7000-8000-000000000001"
	ev.Targets = []trail.Target{{Type: "user", ID: "u-2", Name: "Bob"}} // a second subject
	other := failedLogin("u-1", alice)
	other.ID = "01a21700-0000-7000-8000-000000000002"
	if err := s.Seal(ctx, "acme", []*trail.Event{ev, other}); err != nil {
		t.Fatal(err)
	}
	opened := ev.Clone()
	if err := s.Open(ctx, "acme", opened); err != nil {
		t.Fatal(err)
	}
	openings, err := s.Openings(ctx, "acme", ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(openings) != 2 {
		t.Fatalf("openings of key ids %v, want one per subject (2)", slices.Sorted(maps.Keys(openings)))
	}
	changed := maps.Clone(openings)
	for id, k := range changed {
		k = slices.Clone(k)
		k[0] ^= 1
		changed[id] = k
		break
	}
	erasedView := ev.Clone()
	erasedView.Actor.Name, erasedView.Actor.Email, erasedView.Request.IP, erasedView.Context["email"] = erasure.Erased, erasure.Erased, erasure.Erased, erasure.Erased
	erasedView.Targets[0].Name = "Bob"

	tests := []struct {
		name     string
		ev       *trail.Event
		openings map[string][]byte
		want     *trail.Event // nil: left as sealed
	}{
		{"its openings", ev, openings, opened},
		{"another event's openings", other, openings, nil},
		{"an opening changed", ev, changed, nil},
		{"no openings", ev, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.ev.Clone()
			if err := erasure.OpenWith("acme", got, tc.openings); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want != nil:
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("opened differently (-want +got):\n%s", diff)
				}
			case got.Actor.Email == alice || got.Context["email"] == alice:
				t.Errorf("opened: %+v", got)
			}
		})
	}

	// Erased: u-1's key has no opening; its values read as erased, u-2's
	// as they were.
	if _, err := s.Erase(ctx, "acme", "u-1"); err != nil {
		t.Fatal(err)
	}
	after, err := s.Openings(ctx, "acme", ev)
	if err != nil || len(after) != 1 {
		t.Fatalf("openings after the erasure: %d, %v; want u-2's alone", len(after), err)
	}
	got := ev.Clone()
	if err := erasure.OpenWith("acme", got, after); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(erasedView, got); diff != "" {
		t.Errorf("opened after the erasure (-want +got):\n%s", diff)
	}
}

// A blob sealed before event keys (enc1: under the subject's key itself)
// still opens, and has no opening.
func TestOpenSealedBefore(t *testing.T) {
	ctx := context.Background()
	keys := memory.NewSubjectKeys()
	s := erasure.NewSealer(keys, catalog.Default())
	got, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"})
	if err != nil {
		t.Fatal(err)
	}
	k := got[0]
	b, err := aes.NewCipher(k.Key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	const id = "01a21700-0000-7000-8000-000000000001"
	nonce := make([]byte, 12)
	ct := aead.Seal(nonce, nonce, []byte(`{"actor.email":"`+alice+`"}`), []byte("acme\x00"+k.ID+"\x00"+id))
	ev := &trail.Event{ID: id, Action: catalog.UserLoginFailed, Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1",
		Email: "enc1:" + k.ID + ":" + base64.RawURLEncoding.EncodeToString(ct)}}
	openings, err := s.Openings(ctx, "acme", ev)
	if err != nil || len(openings) != 0 {
		t.Errorf("openings %v, %v; want none", openings, err)
	}
	if err := s.Open(ctx, "acme", ev); err != nil || ev.Actor.Email != alice {
		t.Errorf("opened to %q, %v; want %q", ev.Actor.Email, err, alice)
	}
}

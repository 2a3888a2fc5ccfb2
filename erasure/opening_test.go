package erasure_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/erasure"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/storetest"
	"github.com/trailaudit/trail/tlog"
)

// An event's openings are its own keys: with them, and nothing else, a
// verifier opens the event as the Sealer does; not another event of the
// same subject; not once the subject is erased (its values read as
// erased); not with an opening changed.
func TestOpenings(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testOpenings(t, form.set) })
	}
}

func testOpenings(t *testing.T, form func(*erasure.Sealer)) {
	ctx := context.Background()
	keys := memory.NewSubjectKeys()
	s := newSealer(form, keys, catalog.Default())
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
	// u-1's opening changed (the subject whose values the case checks; a
	// key id picked from the map at random was u-2's half the time).
	changed := maps.Clone(openings)
	k1, err := keys.SubjectKeys(ctx, "acme", []string{"u-1"})
	if err != nil {
		t.Fatal(err)
	}
	u1 := k1[0].ID
	if openings[u1] == nil {
		t.Fatalf("no opening for u-1's key %s in %v", u1, slices.Sorted(maps.Keys(openings)))
	}
	changed[u1] = slices.Clone(openings[u1])
	changed[u1][0] ^= 1
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

// A verifiable export carries each event's openings: the bundle verifies,
// and shows the events in clear as their leaves' sealed bytes open, an
// erased subject's values reading erased; a cleartext or an opening changed
// in the bundle is damage.
func TestBundleOpenings(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testBundleOpenings(t, form.set) })
	}
}

func testBundleOpenings(t *testing.T, form func(*erasure.Sealer)) {
	ctx := context.Background()
	v := storetest.Validator()
	sealer := newSealer(form, memory.NewSubjectKeys(), v.Actions)
	v.Sealer = sealer
	store := erasure.Wrap(memory.New(v, storetest.Signer()), sealer)
	evs := []*trail.Event{failedLogin("u-1", alice), failedLogin("u-2", "bob@example.com"),
		{Action: catalog.UserLogout, Actor: trail.Actor{Type: trail.ActorService, ID: "svc"}, Context: map[string]any{"logout_method": "timeout"}}}
	if _, err := store.Append(ctx, "acme", evs, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Erase(ctx, "acme", "u-2"); err != nil {
		t.Fatal(err)
	}
	cp, err := tlog.OpenLatest(ctx, store, "acme", storetest.Signer().Verifier())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, _, err := tlog.WriteBundle(ctx, &buf, store, cp, trail.Query{Tenant: "acme", RecordedBefore: time.Now().Add(time.Minute)}, sealer); err != nil {
		t.Fatal(err)
	}
	bundle := buf.String()
	lines := strings.Split(strings.TrimSuffix(bundle, "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], `"opened":`) || !strings.Contains(lines[1], alice) ||
		!strings.Contains(lines[2], `"openings":{},"opened":`) || !strings.Contains(lines[2], `"email":"`+erasure.Erased+`"`) ||
		strings.Contains(lines[3], `"opened"`) {
		t.Fatalf("bundle lines:\n%s\nwant u-1's event opened, u-2's erased, the service's with nothing to open", bundle)
	}
	changedOpening := regexp.MustCompile(`"openings":\{"[0-9a-f]+":"(.)`).ReplaceAllStringFunc(lines[1], func(m string) string {
		if m[len(m)-1] == 'A' {
			return m[:len(m)-1] + "B"
		}
		return m[:len(m)-1] + "A"
	})
	tests := []struct {
		name   string
		bundle string
		opened int
		damage string // "" for none
	}{
		{"as written", bundle, 2, ""},
		{"a cleartext changed", strings.Replace(bundle, `"opened":{"action":"user_login_failed","actor":{"email":"`+alice, `"opened":{"action":"user_login_failed","actor":{"email":"mallory@example.com`, 1), 1,
			"line 2: the event in clear is not what the event's sealed bytes open to with its openings"},
		{"an erased value shown", strings.Replace(bundle, `"email":"`+erasure.Erased+`"`, `"email":"bob@example.com"`, 1), 1,
			"line 3: the event in clear is not what"},
		{"an opening changed", strings.Replace(bundle, lines[1], changedOpening, 1), 1, "line 2: the event in clear is not what"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bundle == bundle && tc.name != "as written" {
				t.Fatal("the edit changed nothing")
			}
			rep, err := tlog.VerifyBundleOpen(strings.NewReader(tc.bundle), storetest.Signer().Verifier(), erasure.OpenLeaf)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Opened != tc.opened {
				t.Errorf("opened %d, want %d", rep.Opened, tc.opened)
			}
			switch {
			case tc.damage == "" && !rep.OK():
				t.Errorf("damage %+v, want none", rep.Damage)
			case tc.damage != "" && (len(rep.Damage) != 1 || rep.Damage[0].Kind != tlog.Changed || !strings.Contains(rep.Damage[0].Detail, tc.damage)):
				t.Errorf("damage %+v, want one change saying %q", rep.Damage, tc.damage)
			}
		})
	}
}

// A verifiable export of an event sealed before event keys (enc1:) shows it
// sealed, as no opening can be handed out for it, and the verifier says
// its values cannot be opened rather than counting it among the events
// whose cleartext it checked; it is no damage, and the events around it
// are opened and checked as before.
func TestBundleSealedBefore(t *testing.T) {
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) { testBundleSealedBefore(t, form.prefix, form.set) })
	}
}

func testBundleSealedBefore(t *testing.T, prefix string, form func(*erasure.Sealer)) {
	ctx := context.Background()
	keys := memory.NewSubjectKeys()
	sealer := newSealer(form, keys, catalog.Default())
	// Stored as the store held it before event keys: the blob verbatim
	// (the store's validator sealing nothing yet).
	v := storetest.Validator()
	plain := memory.New(v, storetest.Signer())
	old := &trail.Event{Action: catalog.UserLoginFailed, Actor: trail.Actor{Type: trail.ActorUser, ID: "u-1",
		Email: "enc1:00000000deadbeef:" + strings.Repeat("A", 40)}, Context: map[string]any{"reason": "invalid_password", "attempts": 1, "email": ""}}
	if _, err := plain.Append(ctx, "acme", []*trail.Event{old}, trail.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// And an event sealed under its own key after it.
	v.Sealer = sealer
	res, err := plain.Append(ctx, "acme", []*trail.Event{failedLogin("u-2", alice)}, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := trail.MarshalCanonical(res.Events[0]); !bytes.Contains(b, []byte(`"`+prefix)) {
		t.Fatalf("the second event is not sealed under its key: %s", b)
	}
	cp, err := tlog.OpenLatest(ctx, plain, "acme", storetest.Signer().Verifier())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, _, err := tlog.WriteBundle(ctx, &buf, plain, cp, trail.Query{Tenant: "acme", RecordedBefore: time.Now().Add(time.Minute)}, sealer); err != nil {
		t.Fatal(err)
	}
	rep, err := tlog.VerifyBundleOpen(bytes.NewReader(buf.Bytes()), storetest.Signer().Verifier(), erasure.OpenLeaf)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Unopened != 1 || !slices.Equal(rep.Unopenable, []uint64{1}) {
		t.Errorf("report %+v; want no damage and seq 1 unopenable\n%s", rep, buf.String())
	}
	if rep.Opened != 1 {
		t.Errorf("%d events opened and checked, want 1 (seq 2, sealed under its own key)\n%s", rep.Opened, buf.String())
	}
}

// Events sealed in forms Seal no longer writes, by the code that wrote
// them (their stored bytes, their openings and what they opened to):
// enc2 (testdata/enc2.json) and enc3, the compact form with a zero nonce
// (testdata/enc3.json, by main at 53d9d03) open to exactly what they did;
// without one subject's opening, that subject's fields, and only theirs,
// read as erased.
func TestOpenAsBefore(t *testing.T) {
	for _, form := range []string{"enc2", "enc3"} {
		t.Run(form, func(t *testing.T) { testOpenAsBefore(t, form) })
	}
}

func testOpenAsBefore(t *testing.T, form string) {
	data, err := os.ReadFile("testdata/" + form + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Tenant   string            `json:"tenant"`
		Sealed   string            `json:"sealed"`
		Openings map[string][]byte `json:"openings"`
		Opened   string            `json:"opened"`
	}
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	for i, g := range golden {
		if !strings.Contains(g.Sealed, `"`+form+`:`) {
			t.Fatalf("event %d holds no %s blob: %s", i, form, g.Sealed)
		}
		got, err := erasure.OpenLeaf(g.Tenant, []byte(g.Sealed), g.Openings)
		if err != nil || string(got) != g.Opened {
			t.Errorf("event %d opened to\n%s, %v; want\n%s", i, got, err, g.Opened)
		}
		opened, err := trail.UnmarshalCanonical([]byte(g.Opened))
		if err != nil {
			t.Fatal(err)
		}
		erased := map[string]int{} // path → the number of subjects whose erasure erased it
		for id := range g.Openings {
			without := maps.Clone(g.Openings)
			delete(without, id)
			body, err := erasure.OpenLeaf(g.Tenant, []byte(g.Sealed), without)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := trail.UnmarshalCanonical(body)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for path, v := range personalValues(ev) {
				if v == erasure.Erased {
					erased[path]++
					n++
				} else if want := personalValues(opened)[path]; !cmp.Equal(v, want) {
					t.Errorf("event %d without key %s: %s reads %v, want %v", i, id, path, v, want)
				}
			}
			if n == 0 {
				t.Errorf("event %d without key %s: nothing reads as erased", i, id)
			}
		}
		for path, n := range erased {
			if n != 1 {
				t.Errorf("event %d: %s erased with %d subjects, want one", i, path, n)
			}
		}
	}
}

// personalValues returns the values of ev's fields that Seal may seal, by
// path.
func personalValues(ev *trail.Event) map[string]any {
	out := map[string]any{"actor.name": ev.Actor.Name, "actor.email": ev.Actor.Email, "request.ip": ev.Request.IP}
	for i, tg := range ev.Targets {
		out["targets."+strconv.Itoa(i)+".name"] = tg.Name
	}
	for k, v := range ev.Context {
		out["context."+k] = v
	}
	return out
}

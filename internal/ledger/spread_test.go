package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/trailaudit/trail"
)

// wide runs a test with more cores than this machine may have, so batches
// are spread over several chunks (and the race detector sees them).
func wide(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

func TestSpreadRefusalIsTheBatchs(t *testing.T) {
	wide(t)
	for _, bad := range [][]int{{0}, {999}, {3, 600, 601}, {250, 500, 750}} {
		evs := make([]*trail.Event, 1000)
		for i := range evs {
			evs[i] = login(fmt.Sprint("u", i))
		}
		for _, i := range bad {
			evs[i].Actor.ID = "" // required
		}
		f := &fake{}
		l := newLog(t, f, nil)
		_, got := l.Append(context.Background(), "acme", evs, trail.AppendOptions{})
		_, want := l.c.Validator.PrepareBatch("acme", evs, trail.Policy{}, t0)
		if want == nil || got == nil || got.Error() != want.Error() || !reflect.DeepEqual(trail.ErrorFields(got), trail.ErrorFields(want)) {
			t.Errorf("bad %v: err = %v, want %v", bad, got, want)
		}
		for _, i := range bad {
			if !hasPath(got, fmt.Sprintf("[%d].actor.id", i)) {
				t.Errorf("bad %v: no field error at [%d].actor.id: %v", bad, i, got)
			}
		}
		if len(f.calls) > 0 {
			t.Errorf("the store was called: %v", f.calls)
		}
	}
}

// Sequencing spread over the cores gives the rows one loop gives: seqs in
// the batch's order, the canonical bytes of each event, and the tree hashes
// of the leaves appended in order.
func TestSpreadSequence(t *testing.T) {
	wide(t)
	f := &fake{stored: oneEvent(t)}
	l := newLog(t, f, nil)
	evs := make([]*trail.Event, 1000)
	for i := range evs {
		evs[i] = login(fmt.Sprint("u", i))
	}
	res, err := l.Append(context.Background(), "acme", evs, trail.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.head("acme", oneEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range f.written {
		body, err := trail.MarshalCanonical(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Event.Seq != uint64(i+2) || res.Events[i].Seq != r.Event.Seq || res.Events[i].Actor.ID != fmt.Sprint("u", i):
			t.Fatalf("row %d: seq %d, result %d %s", i, r.Event.Seq, res.Events[i].Seq, res.Events[i].Actor.ID)
		case string(body) != string(r.Body):
			t.Fatalf("row %d: body is not the event's canonical bytes", i)
		case string(h.Tree.Append(body)) != string(r.Hashes):
			t.Fatalf("row %d: tree hashes differ from one loop's", i)
		}
	}
	if len(f.written) != len(evs) || f.cp.Size != 1001 || string(f.cp.tree.Root()) != string(h.Tree.Root()) {
		t.Errorf("%d rows, checkpoint of %d", len(f.written), f.cp.Size)
	}
}

// An event that fails to encode is named by its index, the first of the
// batch when several fail, as one loop names it.
func TestSpreadSequenceNamesFirstFailure(t *testing.T) {
	wide(t)
	evs := make([]*trail.Event, 1000)
	for i := range evs {
		evs[i] = login(fmt.Sprint("u", i))
		evs[i].ID = trail.NewID(t0)
	}
	for _, i := range []int{900, 420, 421} {
		evs[i].ID = fmt.Sprint("not-a-uuid-", i)
	}
	h := &Head{Tenant: "acme"}
	r, err := h.sequence(&Batch{Tenant: "acme", Events: evs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.halt()
	_, err = r.All()
	var te *trail.Error
	if !errors.As(err, &te) || te.Code != trail.EINTERNAL || te.Message != `event id "not-a-uuid-420" is not a UUID` {
		t.Errorf("err = %v", err)
	}
}

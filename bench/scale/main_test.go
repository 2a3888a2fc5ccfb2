package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// TestGrows grows a database through two sizes, in two runs (the second
// carries on from the first), and checks it holds what each line says.
func TestGrows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scale.db")
	var out strings.Builder
	if err := run(ctx, []string{"-db", path, "-sizes", "30,120", "-window", "20", "-batch", "10"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"-db", path, "-sizes", "120,150", "-window", "20", "-batch", "10"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "size 30: ") || !strings.HasPrefix(lines[1], "size 120: ") || !strings.HasPrefix(lines[2], "size 150: ") {
		t.Fatalf("output:\n%s\nwant a line for 30, 120, then 150 (120 reached already)", out.String())
	}
	db, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true, Validator: storetest.Validator()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.Count(ctx, trail.Query{Tenant: "acme"}); err != nil || n != 150 {
		t.Fatalf("count %d, %v; want 150", n, err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-db"},
		{[]string{"-db", "x", "-sizes", "10,5"}, "ascending"},
		{[]string{"-db", "x", "-sizes", "ten"}, "-sizes"},
		{[]string{"-db", "x", "-window", "0"}, "-window"},
	} {
		err := run(context.Background(), tc.args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: err %v, want one saying %s", tc.args, err, tc.want)
		}
	}
}

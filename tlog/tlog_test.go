package tlog

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"golang.org/x/mod/sumdb/note"
)

// Test keys, fixed so that notes, fuzz seeds and failures are repeatable.
// Both are named testKeyName; testKey's base64 holds '+', which NewSigner
// once misread.
const (
	testKeyName = "trail.example"
	testKey     = "PRIVATE+KEY+trail.example+cdb1c7dd+AUdZmDAS4+bQnC46KT7M7+1h7w1tOid/Dd9jo+18BY+q"
	testVKey    = "trail.example+cdb1c7dd+AWnqXeDwrc1umXuChGvQpLESyXnJbLj7qZUTjUknr4JO"
	otherKey    = "PRIVATE+KEY+trail.example+3e6a3a8b+AZxf7mg2Sr/CZxjTSWbxAQYarE6uXrya7m9y4H6Uz1BH"
	testTenant  = "acme"
)

func signer(tb testing.TB, skey string) *Signer {
	tb.Helper()
	s, err := NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// memLog is a trail.Log held in memory, written the way a store writes
// one, and open to tampering by tests. Its index values are what
// trail.IndexOf gives for each row's bytes as they are now, but where
// index says otherwise.
type memLog struct {
	rows  []trail.Leaf // sorted by Seq
	notes [][]byte     // checkpoints in write order
	fail  error        // when set, ScanLeaves fails with it halfway
	// index replaces the index values of a seq (nil: none kept), or adds
	// some at a seq of no row.
	index     map[uint64]*trail.IndexRow
	indexFail error              // when set, ScanIndex fails with it
	kept      []*trail.IndexRow  // by row: the values of keepIndex
	sizes     []trail.SizeRecord // what SizeRecords returns
}

// buildLog appends bodies to a new log the way a store does: each commit
// (of the next size in groups, cycled) writes its rows with the Hashes
// Tree.Append returns, then a checkpoint signed by s.
func buildLog(tb testing.TB, s *Signer, bodies [][]byte, groups ...int) *memLog {
	tb.Helper()
	l := &memLog{rows: make([]trail.Leaf, 0, len(bodies))}
	tree, err := NewTree(0, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for g := 0; len(l.rows) < len(bodies); g++ {
		for range min(groups[g%len(groups)], len(bodies)-len(l.rows)) {
			body := bodies[len(l.rows)]
			l.rows = append(l.rows, trail.Leaf{Seq: uint64(len(l.rows) + 1), Body: body, Hashes: tree.Append(body)})
		}
		l.sign(tb, s, tree)
	}
	return l
}

// sign appends a checkpoint of tree signed by s.
func (l *memLog) sign(tb testing.TB, s *Signer, tree *Tree) {
	tb.Helper()
	note, err := s.Sign(testTenant, tree.Size(), tree.Root())
	if err != nil {
		tb.Fatal(err)
	}
	l.notes = append(l.notes, note)
}

// event returns canonical-looking bytes of the event of seq, padded to
// about size bytes: "seq" is the last top-level member that holds digits,
// as in trail.MarshalCanonical's output.
func event(seq uint64, size int) []byte {
	b := fmt.Appendf(nil, `{"action":"document.viewed","context":{"pad":"`)
	b = append(b, strings.Repeat("x", max(0, size-110))...)
	return fmt.Appendf(b, `"},"id":"ev-%d","seq":%d,"tenant":"%s","v":1}`, seq, seq, testTenant)
}

func events(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = event(uint64(i+1), size)
	}
	return out
}

// clone returns a copy of l whose row and note lists can be changed
// without changing l's (the bytes are shared: replace them, do not edit).
func (l *memLog) clone() *memLog {
	return &memLog{rows: slices.Clone(l.rows), notes: slices.Clone(l.notes), index: maps.Clone(l.index), indexFail: l.indexFail, sizes: slices.Clone(l.sizes)}
}

// row returns the index of the row of seq, or -1.
func (l *memLog) row(seq uint64) int {
	i, ok := slices.BinarySearchFunc(l.rows, seq, func(r trail.Leaf, seq uint64) int { return cmp.Compare(r.Seq, seq) })
	if !ok {
		return -1
	}
	return i
}

func (l *memLog) Checkpoint(ctx context.Context, tenant string) ([]byte, error) {
	if len(l.notes) == 0 {
		return nil, trail.Errorf(trail.ENOTFOUND, "no checkpoint")
	}
	return l.notes[len(l.notes)-1], nil
}

func (l *memLog) Checkpoints(ctx context.Context, tenant string, fn func(note []byte) error) error {
	for _, n := range l.notes {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLog) TreeHashes(ctx context.Context, tenant string, nodes []trail.TreeNode) ([][]byte, error) {
	return ReadTreeHashes(nodes, func(seqs []uint64) ([][]byte, error) {
		out := make([][]byte, len(seqs))
		for i, seq := range seqs {
			if j := l.row(seq); j >= 0 {
				out[i] = l.rows[j].Hashes
			}
		}
		return out, nil
	})
}

func (l *memLog) ScanLeaves(ctx context.Context, tenant string, from, to uint64, fn func(trail.Leaf) error) error {
	for i, r := range l.rows {
		if l.fail != nil && i == len(l.rows)/2 {
			return l.fail
		}
		if r.Seq < from || (to != 0 && r.Seq >= to) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// keepIndex stores the index values of every row as they are now, as a
// SQL store keeps them beside its rows, so that ScanIndex does not derive
// them on each call.
func (l *memLog) keepIndex(tb testing.TB) *memLog {
	tb.Helper()
	l.kept = make([]*trail.IndexRow, len(l.rows))
	for i, r := range l.rows {
		ix, err := trail.CanonicalIndex(r.Body)
		if err != nil {
			tb.Fatal(err)
		}
		l.kept[i] = &trail.IndexRow{Seq: r.Seq, Index: ix}
	}
	return l
}

func (l *memLog) ScanIndex(ctx context.Context, tenant string, from, to uint64, fn func(trail.IndexRow) error) error {
	if l.indexFail != nil {
		return l.indexFail
	}
	in := func(seq uint64) bool { return seq >= from && (to == 0 || seq < to) }
	var out []trail.IndexRow
	start, _ := slices.BinarySearchFunc(l.rows, from, func(r trail.Leaf, seq uint64) int { return cmp.Compare(r.Seq, seq) })
	for i, r := range l.rows[start:] {
		if !in(r.Seq) {
			break
		}
		x, ok := l.index[r.Seq]
		if !ok && start+i < len(l.kept) {
			x, ok = l.kept[start+i], true
		}
		if ok {
			if x != nil {
				out = append(out, *x)
			}
			continue
		}
		ix := trail.IndexRow{Seq: r.Seq, Pruned: len(r.Body) == 0}
		if ev, err := trail.UnmarshalCanonical(r.Body); err == nil {
			ix.Index = trail.IndexOf(ev)
		}
		out = append(out, ix)
	}
	for seq, x := range l.index {
		if in(seq) && l.row(seq) < 0 && x != nil {
			out = append(out, *x)
		}
	}
	slices.SortFunc(out, func(a, b trail.IndexRow) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, x := range out {
		if err := fn(x); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLog) SizeRecords(ctx context.Context, tenant string) ([]trail.SizeRecord, error) {
	return l.sizes, nil
}

// mth is RFC 6962's Merkle Tree Hash, section 2.1, written from the RFC
// with crypto/sha256 alone: the reference Tree is checked against.
func mth(leaves [][]byte) []byte {
	var h [sha256.Size]byte
	switch n := len(leaves); n {
	case 0:
		h = sha256.Sum256(nil)
	case 1:
		h = sha256.Sum256(append([]byte{0}, leaves[0]...))
	default:
		k := 1
		for k*2 < n { // the largest power of two below n
			k *= 2
		}
		h = sha256.Sum256(slices.Concat([]byte{1}, mth(leaves[:k]), mth(leaves[k:])))
	}
	return h[:]
}

func TestTreeRootMatchesRFC6962(t *testing.T) {
	bodies := events(130, 60)
	tree, err := NewTree(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for size := 0; size <= len(bodies); size++ {
		if size > 0 {
			tree.Append(bodies[size-1])
		}
		if got, want := tree.Root(), mth(bodies[:size]); !bytes.Equal(got, want) {
			t.Fatalf("size %d: root %x, want %x", size, got, want)
		}
	}
}

// TestHashChildren: the node hash the tree makes is RFC 6962's, for hashes
// of the tree's size and, through the hasher, of any other.
func TestHashChildren(t *testing.T) {
	h32, h31 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 31)
	for _, tc := range []struct {
		name string
		l, r []byte
	}{{"one empty", h32, nil}, {"both sha-256", h32, bytes.Repeat([]byte{8}, 32)}, {"short", h31, h32}, {"empty", nil, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			want := sha256.Sum256(slices.Concat([]byte{1}, tc.l, tc.r))
			if got := hashChildren(tc.l, tc.r); !bytes.Equal(got, want[:]) {
				t.Errorf("hashChildren = %x, want %x", got, want)
			}
		})
	}
}

// TestTreeContinues checks that a tree rebuilt from a store's peak nodes
// (NewTree, PeakNodes, TreeHashes) and a Clone both go on like the
// original, and that each Append returns the leaf hash then the nodes it
// completed, as trail.Leaf.Hashes and trail.TreeNode.Seq describe.
func TestTreeContinues(t *testing.T) {
	ctx := context.Background()
	bodies := events(70, 60)
	l := buildLog(t, signer(t, testKey), bodies, 1)
	for _, r := range l.rows {
		if got, want := len(r.Hashes)/trail.HashSize, 1+countTrailingOnes(r.Seq-1); got != want || len(r.Hashes)%trail.HashSize != 0 {
			t.Fatalf("seq %d: %d bytes of Hashes, want %d hashes", r.Seq, len(r.Hashes), want)
		}
		if !bytes.Equal(r.Hashes[:trail.HashSize], LeafHash(r.Body)) {
			t.Fatalf("seq %d: Hashes do not start with the leaf hash", r.Seq)
		}
	}
	for size := range uint64(len(bodies)) {
		peaks, err := l.TreeHashes(ctx, testTenant, PeakNodes(size))
		if err != nil {
			t.Fatal(err)
		}
		tree, err := NewTree(size, peaks)
		if err != nil {
			t.Fatal(err)
		}
		clone := tree.Clone()
		tree.Append(bodies[size])
		if got, want := tree.Root(), mth(bodies[:size+1]); !bytes.Equal(got, want) {
			t.Fatalf("tree continued from size %d: root %x, want %x", size, got, want)
		}
		if got, want := clone.Root(), mth(bodies[:size]); !bytes.Equal(got, want) || clone.Size() != size {
			t.Fatalf("clone of size %d changed when the original grew", size)
		}
	}
	if _, err := NewTree(5, nil); err == nil {
		t.Error("NewTree(5, no peaks) succeeded")
	}
	if _, err := NewTree(1, [][]byte{{1, 2, 3}}); err == nil {
		t.Error("NewTree(1, a 3-byte peak) succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendHash of a 3-byte hash did not panic")
		}
	}()
	tree, _ := NewTree(0, nil)
	tree.AppendHash([]byte{1, 2, 3})
}

func countTrailingOnes(n uint64) int {
	k := 0
	for ; n&1 == 1; n >>= 1 {
		k++
	}
	return k
}

func TestNodeHash(t *testing.T) {
	hashes := bytes.Repeat([]byte{7}, 2*trail.HashSize)
	for _, tc := range []struct {
		level uint
		ok    bool
	}{{0, true}, {1, true}, {2, false}, {1 << 62, false}, {^uint(0), false}} {
		if _, ok := NodeHash(hashes, trail.TreeNode{Level: tc.level}); ok != tc.ok {
			t.Errorf("level %d: ok %v, want %v", tc.level, ok, tc.ok)
		}
	}
}

func flip(p [][]byte, i, j int) [][]byte {
	q := slices.Clone(p)
	q[i] = slices.Clone(q[i])
	q[i][j] ^= 1
	return q
}

func TestInclusionProof(t *testing.T) {
	ctx := context.Background()
	bodies := events(70, 40)
	l := buildLog(t, signer(t, testKey), bodies, 3, 1, 7)
	for size := uint64(1); size <= 70; size++ {
		root := mth(bodies[:size])
		for index := range size {
			p, err := InclusionProof(ctx, l, testTenant, index, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
			}
			leaf := LeafHash(bodies[index])
			if err := VerifyInclusion(leaf, index, size, p, root); err != nil {
				t.Fatalf("proof of %d in %d: %v", index, size, err)
			}
			if len(p) > 0 {
				if VerifyInclusion(leaf, index, size, flip(p, len(p)-1, 5), root) == nil {
					t.Fatalf("proof of %d in %d verifies with a byte flipped", index, size)
				}
			}
			if size > 1 && VerifyInclusion(leaf, (index+1)%size, size, p, root) == nil {
				t.Fatalf("proof of %d in %d verifies for index %d", index, size, (index+1)%size)
			}
		}
	}
	if _, err := InclusionProof(ctx, l, testTenant, 5, 5); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("index 5 in size 5: error %v, want EINVALID", err)
	}
	gone := l.clone()
	gone.rows = slices.Delete(gone.rows, 7, 8) // seq 8 holds the nodes of leaves 0..7
	if _, err := InclusionProof(ctx, gone, testTenant, 0, 20); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("proof needing a deleted row: error %v, want ENOTFOUND", err)
	}
}

func TestConsistencyProof(t *testing.T) {
	ctx := context.Background()
	bodies := events(70, 40)
	l := buildLog(t, signer(t, testKey), bodies, 5)
	for size2 := uint64(0); size2 <= 70; size2++ {
		root2 := mth(bodies[:size2])
		for size1 := uint64(0); size1 <= size2; size1++ {
			root1 := mth(bodies[:size1])
			p, err := ConsistencyProof(ctx, l, testTenant, size1, size2)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", size1, size2, err)
			}
			if err := VerifyConsistency(size1, size2, p, root1, root2); err != nil {
				t.Fatalf("proof from %d to %d: %v", size1, size2, err)
			}
			if len(p) > 0 && VerifyConsistency(size1, size2, flip(p, 0, 0), root1, root2) == nil {
				t.Fatalf("proof from %d to %d verifies with a byte flipped", size1, size2)
			}
			if size1 > 0 && VerifyConsistency(size1, size2, p, root2, mth(bodies[1:size2])) == nil {
				t.Fatalf("proof from %d to %d verifies for other roots", size1, size2)
			}
		}
	}
	if _, err := ConsistencyProof(ctx, l, testTenant, 6, 5); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("size 6 to 5: error %v, want EINVALID", err)
	}
}

func TestCheckpoint(t *testing.T) {
	s := signer(t, testKey)
	root := mth(events(3, 40))
	note, err := s.Sign(testTenant, 3, root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(testVKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != testKeyName {
		t.Errorf("verifier name %q, want %q", v.Name(), testKeyName)
	}
	cp, err := v.Open(testTenant, note)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Origin != Origin(testKeyName, testTenant) || cp.Size != 3 || !bytes.Equal(cp.Root, root) || !bytes.Equal(cp.Note, note) {
		t.Errorf("Open = %+v", cp)
	}
	if u, err := ParseUnverified(note); err != nil || u.Size != 3 || !bytes.Equal(u.Root, root) {
		t.Errorf("ParseUnverified = %+v, %v", u, err)
	}

	otherNote, err := signer(t, otherKey).Sign(testTenant, 3, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tenant string
		note   []byte
	}{
		{"another key of the same name", testTenant, otherNote},
		{"another tenant's origin", "globex", note},
		{"a changed size line", testTenant, bytes.Replace(note, []byte("\n3\n"), []byte("\n4\n"), 1)},
		{"no signature", testTenant, note[:bytes.Index(note, []byte("\n\n"))+2]},
		{"not a note", testTenant, []byte("hello")},
	} {
		if _, err := v.Open(tc.tenant, tc.note); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("Open of %s: error %v, want EINVALID", tc.name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	skey, vkey, err := GenerateKey("audit.example.com")
	if err != nil {
		t.Fatal(err)
	}
	s := signer(t, skey)
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	note, err := s.Sign(testTenant, 0, EmptyRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Verifier{v, s.Verifier()} {
		if _, err := v.Open(testTenant, note); err != nil {
			t.Errorf("Open of a note signed by a new key: %v", err)
		}
	}
	for _, name := range []string{"", "a b", "a+b", "a/b", "a\tb", "a\u2003b", "\xff"} {
		if _, _, err := GenerateKey(name); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("GenerateKey(%q): error %v, want EINVALID", name, err)
		}
	}
	for _, key := range []string{"", testVKey, "PRIVATE+KEY+x+00000000+AAAA"} {
		if _, err := NewSigner(key); trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("NewSigner(%q): error %v, want EINVALID", key, err)
		}
	}
	if _, err := NewVerifier(testKey); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("NewVerifier(a signer key): error %v, want EINVALID", err)
	}
}

// FuzzOpen checks that reading a checkpoint never panics, whatever the
// bytes, and that Open accepts only what ParseUnverified reads alike.
func FuzzOpen(f *testing.F) {
	s := signer(f, testKey)
	note, err := s.Sign(testTenant, 42, mth(events(2, 40)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(note)
	f.Add(note[:len(note)-10])
	f.Add([]byte("trail.example/acme\n42\nAAAA\n\n— x\n"))
	f.Add([]byte("\n\n"))
	v := s.Verifier()
	f.Fuzz(func(t *testing.T, b []byte) {
		u, uerr := ParseUnverified(b)
		cp, err := v.Open(testTenant, b)
		if err != nil {
			return
		}
		if uerr != nil || u.Size != cp.Size || !bytes.Equal(u.Root, cp.Root) {
			t.Fatalf("Open read size %d, ParseUnverified %+v, %v", cp.Size, u, uerr)
		}
	})
}

// TestOrigins: the origins of a log and the names its signatures go by
// (c2sp.org/tlog-checkpoint and signed-note: a log's key is named by its
// origin; a witness looks the log's keys up by the origin and checks the
// signature under that name). A new log's origin is NAME/trail/TENANT; a
// log started before keeps NAME/TENANT, signed under both it and NAME,
// as before; a checkpoint signed only the old way still verifies.
func TestOrigins(t *testing.T) {
	s := signer(t, testKey)
	root := mth(events(3, 40))
	text := func(origin string) string {
		return fmt.Sprintf("%s\n3\n%s\n", origin, base64.StdEncoding.EncodeToString(root))
	}
	sign := func(origin string) []byte {
		n, err := s.SignOrigin(testTenant, origin, 3, root)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	oldForm, err := note.Sign(&note.Note{Text: text("trail.example/acme")}, s.s) // as Trail signed before
	if err != nil {
		t.Fatal(err)
	}
	nameSigned, err := note.Sign(&note.Note{Text: text("trail.example/trail/acme")}, s.s) // never made by Trail
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		note   []byte
		origin string   // "" when Open fails
		sigs   []string // the names of its signatures
		vkeys  []string // note verifier keys it opens under (what a witness holds)
	}{
		{"a new log", sign(""), "trail.example/trail/acme", []string{"trail.example/trail/acme"},
			[]string{"trail.example/trail/acme+3d539bd3+AWnqXeDwrc1umXuChGvQpLESyXnJbLj7qZUTjUknr4JO"}},
		{"a log started before", sign("trail.example/acme"), "trail.example/acme", []string{"trail.example", "trail.example/acme"},
			[]string{testVKey, mustOriginKey(t, testVKey, "trail.example/acme")}},
		{"a checkpoint signed before", oldForm, "trail.example/acme", []string{"trail.example"}, []string{testVKey}},
		{"the new origin under the old name", nameSigned, "", []string{"trail.example"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.HasPrefix(string(tc.note), text(cmp.Or(tc.origin, "trail.example/trail/acme"))) {
				t.Errorf("note\n%s\nwant it to start with its origin, size and root", tc.note)
			}
			var names []string
			for _, line := range strings.Split(string(tc.note), "\n") {
				if name, ok := strings.CutPrefix(line, "— "); ok {
					names = append(names, strings.Fields(name)[0])
				}
			}
			if !slices.Equal(names, tc.sigs) {
				t.Errorf("signatures named %q, want %q", names, tc.sigs)
			}
			cp, err := s.Verifier().Open(testTenant, tc.note)
			switch {
			case tc.origin == "" && trail.ErrorCode(err) != trail.EINVALID:
				t.Errorf("Open = %+v, %v; want EINVALID", cp, err)
			case tc.origin != "" && (err != nil || cp.Origin != tc.origin):
				t.Errorf("Open = %+v, %v; want origin %s", cp, err, tc.origin)
			}
			for _, vkey := range tc.vkeys {
				if _, err := note.Open(tc.note, note.VerifierList(mustNoteVerifier(t, vkey))); err != nil {
					t.Errorf("note.Open under %s: %v", vkey, err)
				}
			}
		})
	}
	if _, err := s.SignOrigin(testTenant, "trail.example/globex", 3, root); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("SignOrigin of another tenant's origin: %v, want EINVALID", err)
	}
	if got, want := Origin("audit.example.com", "acme"), "audit.example.com/trail/acme"; got != want {
		t.Errorf("Origin = %s, want %s", got, want)
	}
	if _, err := OriginKey(testVKey, "bad origin"); trail.ErrorCode(err) != trail.EINVALID {
		t.Errorf("OriginKey of an origin with a space: %v, want EINVALID", err)
	}
}

func mustOriginKey(tb testing.TB, vkey, origin string) string {
	tb.Helper()
	k, err := OriginKey(vkey, origin)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustNoteVerifier(tb testing.TB, vkey string) note.Verifier {
	tb.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/sqlite"
	"github.com/trailaudit/trail/storetest"
)

// openSubjectKeys opens the key file at path, closed when the test ends.
func openSubjectKeys(t *testing.T, path string) *sqlite.SubjectKeys {
	t.Helper()
	return storetest.OpenSubjectKeys(t, sqlite.OpenSubjectKeys, path)
}

func TestSubjectKeys(t *testing.T) {
	storetest.RunSubjectKeys(t, func(t *testing.T) trail.SubjectKeyStore {
		return openSubjectKeys(t, filepath.Join(t.TempDir(), "subject-keys.db"))
	})
}

// TestSubjectKeysFile: the key file, its write-ahead log and its shared
// memory are mode 0600; an erased key's bytes are in
// none of them (the log is truncated); the keys survive close and reopen;
// and two openings of one file (trail serve and trail erase) share them.
func TestSubjectKeysFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "subject-keys.db")
	keys := openSubjectKeys(t, path)
	ks, err := keys.SubjectKeys(ctx, "acme", []string{"u-1", "u-2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory made for the key file has mode %v, want 0700", fi.Mode().Perm())
	}
	if !inFiles(t, path, ks[0].Key) {
		t.Fatal("a key is in neither the key file nor its log: the test looks in the wrong place")
	}

	other := openSubjectKeys(t, path)
	if got, err := other.SubjectKeys(ctx, "acme", []string{"u-1"}); err != nil || got[0].ID != ks[0].ID {
		t.Fatalf("a second opening of the file got %+v, %v; want key %s", got, err, ks[0].ID)
	}
	if n, err := other.EraseSubject(ctx, "acme", "u-1"); err != nil || n != 1 {
		t.Fatalf("EraseSubject = %d, %v", n, err)
	}
	if _, err := keys.KeyByID(ctx, "acme", ks[0].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("KeyByID after the other opening erased it: %v, want ENOTFOUND", err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("the write-ahead log holds %d bytes after an erasure, want it truncated", fi.Size())
	}
	if inFiles(t, path, ks[0].Key) {
		t.Error("the erased key is still in the key file or its log")
	}
	if !inFiles(t, path, ks[1].Key) {
		t.Error("the key not erased is gone from the file")
	}

	if err := keys.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	keys = openSubjectKeys(t, path)
	if got, err := keys.SubjectKeys(ctx, "acme", []string{"u-2"}); err != nil || got[0].ID != ks[1].ID || !bytes.Equal(got[0].Key, ks[1].Key) {
		t.Errorf("after reopening, u-2 has key %+v, %v; want %s", got, err, ks[1].ID)
	}
	if _, err := keys.KeyByID(ctx, "acme", ks[0].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("after reopening, the erased key: %v, want ENOTFOUND", err)
	}
}

// TestSubjectKeysFileMode: a key file that exists with a wider mode is
// made 0600 when opened.
func TestSubjectKeysFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subject-keys.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openSubjectKeys(t, path)
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("the key file has mode %v, want 0600", fi.Mode().Perm())
	}
}

// inFiles reports whether the database at path or its write-ahead log
// holds b.
func inFiles(t *testing.T, path string, b []byte) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

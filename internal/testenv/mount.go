package testenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// ReadOnly makes dir and everything under it read-only to this process
// until tb ends, as a backup mounted read-only is. A user other than root
// loses write permission on it; root, whom permissions do not stop, gets
// dir mounted read-only over itself (Linux, with CAP_SYS_ADMIN). Where
// neither can be done, it calls Missing. Either way it checks that a file
// can no longer be made in dir.
func ReadOnly(tb testing.TB, dir string) {
	tb.Helper()
	if os.Geteuid() > 0 {
		chmodTree(tb, dir, 0o222, false)
		tb.Cleanup(func() { chmodTree(tb, dir, 0o200, true) }) // so that the test's temporary directory can be removed
	} else if err := mountReadOnly(dir); err != nil {
		Missing(tb, "making %s read-only needs a user other than root, or root that may mount (Linux): %v", dir, err)
	} else {
		tb.Cleanup(func() { unmount(dir) })
	}
	probe := filepath.Join(dir, ".probe")
	if f, err := os.Create(probe); err == nil {
		f.Close()
		os.Remove(probe)
		tb.Fatalf("testenv.ReadOnly: %s is still writable", dir)
	}
}

// chmodTree takes the bits away from (or, with add, gives them to) every
// file and directory under dir.
func chmodTree(tb testing.TB, dir string, bits fs.FileMode, add bool) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() &^ bits
		if add {
			mode = fi.Mode().Perm() | bits
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// Tmpfs mounts a file system of size bytes on dir until tb ends: a disk
// that fills up. It needs root that may mount (Linux); elsewhere it calls
// Missing.
func Tmpfs(tb testing.TB, dir string, size int64) {
	tb.Helper()
	if err := mountTmpfs(dir, size); err != nil {
		Missing(tb, "a small file system needs root that may mount (Linux, %s): %v", runtime.GOOS, err)
		return
	}
	tb.Cleanup(func() { unmount(dir) })
}

var errNoMount = errors.New("mounting is not supported here")

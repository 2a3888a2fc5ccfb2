package testenv

import (
	"fmt"
	"os"
	"syscall"
)

func mountReadOnly(dir string) error {
	if os.Geteuid() != 0 {
		return errNoMount
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		unmount(dir)
		return fmt.Errorf("remount read-only: %w", err)
	}
	return nil
}

func mountTmpfs(dir string, size int64) error {
	if os.Geteuid() != 0 {
		return errNoMount
	}
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size))
}

// unmount detaches the mount on dir, even while files in it are open.
func unmount(dir string) { syscall.Unmount(dir, syscall.MNT_DETACH) }

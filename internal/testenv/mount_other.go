//go:build !linux

package testenv

func mountReadOnly(dir string) error          { return errNoMount }
func mountTmpfs(dir string, size int64) error { return errNoMount }
func unmount(dir string)                      {}

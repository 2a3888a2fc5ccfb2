//go:build !unix

package testenv

import "time"

// CPUTime is not known here: 0 (cpu_unix.go says what it is).
func CPUTime() time.Duration { return 0 }

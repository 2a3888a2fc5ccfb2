//go:build unix

package witness

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used: what a
// round costs apart from the machine's load, which stretches its wall
// time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

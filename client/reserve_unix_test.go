//go:build unix

package client

import (
	"fmt"
	"io"
	"net/netip"
	"syscall"
)

// reservePort binds a TCP socket to addr (an IPv4 address and port)
// without listening on it, so that while a test server is down its port
// refuses connections and no other process's listener can take it (the
// socket has no SO_REUSEADDR, so nothing else may bind the port). Close
// frees it.
func reservePort(addr string) (io.Closer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("reserve %s: an IPv4 address and port are needed (%v)", addr, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve %s: %w", addr, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve %s: %w", addr, err)
	}
	return fdCloser(fd), nil
}

type fdCloser int

func (fd fdCloser) Close() error { return syscall.Close(int(fd)) }

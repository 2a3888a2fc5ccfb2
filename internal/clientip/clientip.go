// Package clientip finds the address of an HTTP request's client, believing
// X-Forwarded-For only from trusted proxies. The API server and the client
// middleware share it.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// FromRequest returns the address of r's client: the connection's, or,
// from a trusted proxy, the rightmost X-Forwarded-For entry that is not a
// trusted proxy (entries left of one that does not parse are not
// believed). It returns "" when the connection's address does not parse.
func FromRequest(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	addr := ap.Addr().Unmap().WithZone("")
	if !isTrusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap().WithZone("")
		if !isTrusted(a) {
			return a.String()
		}
		addr = a
	}
	return addr.String()
}

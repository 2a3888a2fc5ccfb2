package http

// People behind an identity-aware proxy (oauth2-proxy, Pomerium and the
// like): the proxy signs them in and names them in request headers. Those
// headers are believed only when the people file says proxy-headers and
// the request's connection comes from a trusted proxy's address
// (Config.TrustedProxies, serve's --trusted-proxy); from anywhere else
// they are ignored, so a client cannot name itself. Every trusted proxy
// must then set or strip them on every request (oauth2-proxy does). The
// person is mapped by the people file like one signed in with OpenID
// Connect, and gets a session of their own (method proxy), which ends when
// the headers name someone else.

import (
	"cmp"
	"net/http"
	"net/netip"
	"strings"
)

// proxyPerson returns the person r's identity headers name, when they
// are believed; nil when r carries none or they are not believed.
func (s *Server) proxyPerson(r *http.Request) *person {
	if s.c.People == nil || !s.c.People.ProxyHeaders {
		return nil
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !s.trusted(ap.Addr().Unmap()) {
		return nil
	}
	h := r.Header
	email := cmp.Or(h.Get("X-Forwarded-Email"), h.Get("X-Auth-Request-Email"))
	user := cmp.Or(h.Get("X-Forwarded-User"), h.Get("X-Auth-Request-User"), email)
	if user == "" {
		return nil
	}
	var groups []string
	for _, v := range append(h.Values("X-Forwarded-Groups"), h.Values("X-Auth-Request-Groups")...) {
		for g := range strings.SplitSeq(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
	}
	return &person{subject: "proxy#" + user, email: email, groups: groups, next: safeNext(r.URL.RequestURI())}
}

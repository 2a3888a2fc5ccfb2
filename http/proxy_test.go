package http_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	trailhttp "github.com/trailaudit/trail/http"
)

// An identity-aware proxy's headers sign a person in only when the people
// file says proxy-headers and the request comes from a trusted proxy's
// address; the person is mapped like any other and recorded as the actor.
func TestUIProxyHeaders(t *testing.T) {
	const rules = "map group=acme-auditors tenant=acme scopes=read\n"
	oauth2Proxy := http.Header{"X-Forwarded-Email": {"alice@acme.example"}, "X-Forwarded-User": {"alice"}, "X-Forwarded-Groups": {"staff,acme-auditors"}}
	authRequest := http.Header{"X-Auth-Request-Email": {"alice@acme.example"}, "X-Auth-Request-User": {"alice"}, "X-Auth-Request-Groups": {"acme-auditors"}}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		file    string
		trusted []netip.Prefix
		hdr     http.Header
		status  int    // of GET /ui/
		want    string // in the answer
	}{
		{"oauth2-proxy's headers from a trusted proxy", "proxy-headers\n" + rules, loopback, oauth2Proxy, http.StatusOK, "alice@acme.example"},
		{"X-Auth-Request headers from a trusted proxy", "proxy-headers\n" + rules, loopback, authRequest, http.StatusOK, "alice@acme.example"},
		{"from an address that is no trusted proxy", "proxy-headers\n" + rules, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}, oauth2Proxy, http.StatusSeeOther, ""},
		{"without proxy-headers in the people file", rules, loopback, oauth2Proxy, http.StatusSeeOther, ""},
		{"a person no rule maps", "proxy-headers\n" + rules, loopback, http.Header{"X-Forwarded-Email": {"eve@other.example"}}, http.StatusForbidden,
			"you signed in as eve@other.example, but this Trail gives eve@other.example no tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			people, err := trailhttp.ParsePeople(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			db := servePeople(t, ln, trailhttp.Config{People: people, TrustedProxies: tc.trusted})
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/ui/", nil)
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(strings.ReplaceAll(string(b), "&#39;", "'"), tc.want) {
				t.Fatalf("GET /ui/: %d, want %d with %q:\n%.600s", res.StatusCode, tc.status, tc.want, b)
			}
			pg, err := db.Query(context.Background(), trail.Query{Tenant: "acme", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if tc.status != http.StatusOK {
				if len(pg.Events) != 0 {
					t.Errorf("refused, yet acme's log has %d records", len(pg.Events))
				}
				return
			}
			var actions []string
			for _, ev := range pg.Events {
				actions = append(actions, ev.Action)
				if ev.Actor.Type != trail.ActorUser || ev.Actor.ID != "proxy#alice" || ev.Actor.Email != "alice@acme.example" || ev.Request.SessionID == "" {
					t.Errorf("%s recorded with actor %+v, session %q; want alice through the proxy, in a session", ev.Action, ev.Actor, ev.Request.SessionID)
				}
				if ev.Action == catalog.UserLoginSuccess && ev.Context["method"] != "proxy" {
					t.Errorf("the sign-in's method is %v; want proxy", ev.Context["method"])
				}
			}
			if len(actions) != 2 || actions[0] != catalog.UserLoginSuccess || actions[1] != catalog.DataViewed {
				t.Errorf("acme's log has %v; want the sign-in and the read", actions)
			}
			// The next request, with the session's cookie, is in the same
			// session: no second sign-in.
			for _, c := range res.Cookies() {
				req.AddCookie(c)
			}
			res, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if pg, err = db.Query(context.Background(), trail.Query{Tenant: "acme", Limit: 100}); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK || len(pg.Events) != 3 || pg.Events[2].Action != catalog.DataViewed ||
				pg.Events[2].Request.SessionID != pg.Events[0].Request.SessionID {
				t.Errorf("with its cookie: %d, and acme's log has %d records; want 200 and one more read in the same session", res.StatusCode, len(pg.Events))
			}
		})
	}
}

package detect

import (
	"context"
	"time"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
)

// mfaAfterNewAddress raises an alert when an account's MFA is disabled
// soon after a successful login from an address the account had not
// logged in from before. Sigma cannot say "an address not seen before"
// (that is the account's whole history, not a window of events), so it
// is a Go rule: at each user_mfa_disabled event it reads the account's
// logins before it through the store's actor index.
type mfaAfterNewAddress struct {
	// within is how soon after the login the MFA change counts; lookback
	// how far back the account's earlier logins are searched.
	within, lookback time.Duration
	// maxHistory bounds the earlier logins read: an account with more
	// in the lookback is taken to have used the address.
	maxHistory int
}

func (m mfaAfterNewAddress) check(ctx context.Context, q Reader, ev *trail.Event) (*hit, error) {
	if ev.Action != catalog.UserMfaDisabled {
		return nil, nil
	}
	account := ""
	for _, t := range ev.Targets {
		if t.Type == "user" {
			account = t.ID
			break
		}
	}
	if account == "" && ev.Actor.Type == trail.ActorUser {
		account = ev.Actor.ID
	}
	if account == "" {
		return nil, nil
	}
	logins, err := q.Query(ctx, trail.Query{Tenant: ev.Tenant, ActorID: account, Actions: []string{catalog.UserLoginSuccess},
		OccurredAfter: ev.OccurredAt.Add(-m.within), OccurredBefore: ev.OccurredAt.Add(time.Nanosecond), Descending: true, Limit: 20})
	if err != nil {
		return nil, err
	}
	for _, login := range logins.Events {
		if login.Seq >= ev.Seq || login.Request.IP == "" {
			continue
		}
		isNew, err := m.newAddress(ctx, q, login)
		if err != nil || !isNew {
			if err != nil {
				return nil, err
			}
			continue
		}
		return &hit{evidence: []uint64{login.Seq, ev.Seq}, count: 2, trigger: ev.Seq, from: login.OccurredAt, to: ev.OccurredAt,
			group: map[string]any{"account": account, "request.ip": login.Request.IP}}, nil
	}
	return nil, nil
}

// newAddress reports whether login's address is new for its account: the
// account logged in before (within the lookback, at an earlier seq), and
// never from that address. An account with no earlier login has no
// history to be new to.
func (m mfaAfterNewAddress) newAddress(ctx context.Context, q Reader, login *trail.Event) (bool, error) {
	query := trail.Query{Tenant: login.Tenant, ActorID: login.Actor.ID, Actions: []string{catalog.UserLoginSuccess},
		OccurredAfter: login.OccurredAt.Add(-m.lookback), OccurredBefore: login.OccurredAt.Add(time.Nanosecond), Limit: trail.MaxPageSize}
	earlier, read := 0, 0
	for read < m.maxHistory {
		page, err := q.Query(ctx, query)
		if err != nil {
			return false, err
		}
		for _, ev := range page.Events {
			read++
			if ev.Seq >= login.Seq {
				continue
			}
			if ev.Request.IP == login.Request.IP {
				return false, nil
			}
			earlier++
		}
		if page.Next == "" {
			return earlier > 0, nil
		}
		query.Cursor = page.Next
	}
	return false, nil
}

package trail

import (
	"context"
	"fmt"
)

// TenantLister lists the tenants that have a log: what runs over every
// tenant's log (the detection engines) finds them through it. Every store
// implements it.
type TenantLister interface {
	// Tenants returns every tenant with at least one event, in byte
	// order.
	Tenants(ctx context.Context) ([]string, error)
}

// CursorStore keeps where each of Trail's consumers of the log (a stream's
// sink, a detection rule) has got to in each tenant's log: the last seq it
// has finished with, so that after a restart it reads on from there. Every
// store implements it.
type CursorStore interface {
	// Cursor returns the last seq consumer name has finished with in
	// tenant's log: 0 when it has none.
	Cursor(ctx context.Context, name, tenant string) (uint64, error)
	// SetCursor records seq as name's position in tenant's log. It MUST
	// refuse (ECONFLICT, changing nothing) to move a cursor backwards, so
	// that two runners of one consumer cannot undo each other's progress;
	// setting the position it holds is a no-op.
	SetCursor(ctx context.Context, name, tenant string, seq uint64) error
}

// CheckCursorName returns an EINVALID error unless name can name a
// consumer: 1 to 200 characters, printable, no spaces.
func CheckCursorName(name string) error {
	if name == "" || len(name) > 200 {
		return Invalid("bad cursor", FieldError{Path: "name", Message: "want 1 to 200 characters"})
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return Invalid("bad cursor", FieldError{Path: "name", Message: fmt.Sprintf("control character or space %q", r)})
		}
	}
	return nil
}

// CursorBehind is the error of a SetCursor that would move a cursor back.
func CursorBehind(name, tenant string, at, seq uint64) error {
	return Errorf(ECONFLICT, "cursor %s of tenant %s is at %d; it never moves back (to %d)", name, tenant, at, seq)
}

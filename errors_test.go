package trail_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/trailaudit/trail"
)

func TestErrorCodes(t *testing.T) {
	cause := errors.New("disk full: /var/lib/trail")
	for _, tc := range []struct {
		err           error
		code, message string
	}{
		{nil, "", ""},
		{cause, trail.EINTERNAL, "internal error"},
		{trail.Errorf(trail.ENOTFOUND, "no event %q", "e1"), trail.ENOTFOUND, `no event "e1"`},
		{fmt.Errorf("appending: %w", trail.Errorf(trail.ECONFLICT, "key reused")), trail.ECONFLICT, "key reused"},
		{trail.Errorf(trail.EINTERNAL, "store: %w", cause), trail.EINTERNAL, "store: disk full: /var/lib/trail"},
	} {
		if got := trail.ErrorCode(tc.err); got != tc.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.code)
		}
		if got := trail.ErrorMessage(tc.err); got != tc.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tc.err, got, tc.message)
		}
	}
	wrapped := trail.Errorf(trail.EINTERNAL, "store: %w", cause)
	if !errors.Is(wrapped, cause) {
		t.Error("a coded error must unwrap to its cause")
	}
}

// TestStoreError: a store's failure carries the code its classifier
// gives, and a message naming the store, what failed and why, never the
// driver's text; what is coded already, or a context's end, passes as is.
func TestStoreError(t *testing.T) {
	full := errors.New("database or disk is full (13)")
	classify := func(err error) (string, string) {
		if err == full {
			return trail.ESTORAGEFULL, "the disk is full"
		}
		return trail.EINTERNAL, ""
	}
	coded := trail.Errorf(trail.ENOTFOUND, "no event")
	for _, tc := range []struct {
		err           error
		code, message string
	}{
		{full, trail.ESTORAGEFULL, "sqlite: commit: the disk is full"},
		{errors.New("constraint failed"), trail.EINTERNAL, "sqlite: commit"},
		{coded, trail.ENOTFOUND, "no event"},
		{context.Canceled, trail.EINTERNAL, "internal error"},
	} {
		err := trail.StoreError("sqlite", "commit", tc.err, classify)
		if trail.ErrorCode(err) != tc.code || trail.ErrorMessage(err) != tc.message || !errors.Is(err, tc.err) {
			t.Errorf("StoreError(%v) = %v (%s, %q), want %s, %q, unwrapping to the cause", tc.err, err, trail.ErrorCode(err), trail.ErrorMessage(err), tc.code, tc.message)
		}
	}
	if trail.StoreError("sqlite", "commit", nil, classify) != nil {
		t.Error("StoreError(nil) is not nil")
	}
}

func TestInvalidListsEveryField(t *testing.T) {
	err := trail.Invalid("event refused", trail.FieldError{Path: "actor.id", Message: "required"}, trail.FieldError{Path: "action", Message: "required"})
	if got, want := err.Error(), "invalid: event refused: actor.id: required; action: required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if len(trail.ErrorFields(fmt.Errorf("wrapped: %w", err))) != 2 {
		t.Error("ErrorFields must see through wrapping")
	}
}

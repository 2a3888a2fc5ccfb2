package trail

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Error codes. Every error Trail returns to a caller carries one of these, so
// that adapters (the HTTP API, the CLI) can map it to a status or an exit code
// in exactly one place, whatever layer produced it.
const (
	EINVALID      = "invalid"      // the input is malformed or breaks a rule; Fields says where
	ENOTFOUND     = "not_found"    // the thing asked for does not exist (or is not visible to the caller)
	ECONFLICT     = "conflict"     // the request contradicts what is stored (e.g. an idempotency key reused with another body)
	EUNAUTHORIZED = "unauthorized" // the caller could not be identified
	EFORBIDDEN    = "forbidden"    // the caller is known but may not do this
	EINTERNAL     = "internal"     // Trail failed; the caller did nothing wrong
	// Failures of what Trail stores into, which pass: the caller did
	// nothing wrong and may retry later. The stores decide them, each from
	// its driver's errors, in one place (their internal wrappers).
	EUNAVAILABLE = "unavailable"  // the store cannot be reached or used now (database down or unreachable, store closed, disk failing)
	ESTORAGEFULL = "storage_full" // the store has no room to write (the disk or the database is full)
)

// Error is Trail's coded error. Message is safe to show to the caller: it never
// holds a secret or a value from the input, only field paths and rules.
type Error struct {
	Code    string       // one of the E* codes
	Message string       // human-readable summary
	Fields  []FieldError // for EINVALID: every offending field, by JSON path
	Err     error        // the underlying cause, if any (not shown to callers)
}

// FieldError names one offending field of an input by its JSON path (for
// example "actor.type" or "context.attempts") and says what is wrong with it.
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Error implements the error interface. It lists the field errors after the
// message, so that a log line or CLI output shows everything at once.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Path)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is and errors.As see through
// a coded error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a coded error with a formatted message. A %w verb in format
// is honoured: the wrapped error becomes Err.
func Errorf(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Invalid returns an EINVALID error listing the given field errors.
func Invalid(message string, fields ...FieldError) *Error {
	return &Error{Code: EINVALID, Message: message, Fields: fields}
}

// StoreError wraps err, a failure of the store named store while it did
// what, with the code classify gives it and what classify says of it
// (EINTERNAL and nothing, for a failure it does not know): the one way a
// store's internal wrapper codes its driver's errors. Coded errors, context
// errors and nil are returned as they are. The message names what failed
// and why ("sqlite: commit: the disk is full"), never a value; err stays in
// Err for logs.
func StoreError(store, what string, err error, classify func(error) (code, why string)) error {
	var te *Error
	if err == nil || errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	code, why := classify(err)
	msg := store + ": " + what
	if why != "" {
		msg += ": " + why
	}
	return &Error{Code: code, Message: msg, Err: err}
}

// ErrorCode returns the code of the first coded error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the first coded error in
// err's chain. Uncoded errors are internal and their text may hold details a
// caller must not see, so they read as "internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the field errors of the first coded error in err's chain.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

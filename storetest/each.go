package storetest

import "testing"

// storeCase is one test of a store's conformance suite.
type storeCase[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runEach runs each test on a fresh store from open, closed after it when
// it has a Close method.
func runEach[S any](t *testing.T, open func(t *testing.T) S, tests []storeCase[S]) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if c, ok := any(s).(interface{ Close() error }); ok {
				t.Cleanup(func() { c.Close() })
			}
			tc.fn(t, s)
		})
	}
}

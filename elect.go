package trail

import "context"

// Elector chooses, among the processes that share one deployment's store,
// the one that runs the singleton background work: the root log and its
// submission to witnesses, the detection rules and the sinks. Each of them
// run twice would do its work twice (two root entries for one checkpoint,
// two alerts for one finding, every message delivered twice), so exactly
// one process runs them at a time. Implementations: postgres (an advisory
// lock held by a connection of its own), sqlite (a lock on a file beside
// the database), memory (one store, one process: the electors of one store
// take turns). The storetest package holds the conformance suite every
// Elector passes (RunElector).
//
// Contract:
//   - Acquire MUST block until this process leads, or ctx ends (then it
//     MUST return ctx's error and lead nothing). A follower MUST keep
//     trying on its own, so that it takes over when the leader dies.
//   - Acquire MUST NOT return a Lease while another Lease on the same
//     deployment is held and not yet Lost: at no moment may two processes
//     both hold a Lease that is not Lost.
//   - Where leadership can be lost without this process giving it up (a
//     connection that broke), the Lease MUST report it on Lost promptly,
//     before another process can take leadership; an implementation MUST
//     document its bound.
type Elector interface {
	Acquire(ctx context.Context) (Lease, error)
}

// Lease is leadership held. The holder MUST stop the singleton work as soon
// as Lost is closed, and MUST Release the Lease when done with it.
type Lease interface {
	// Lost MUST be closed when leadership is lost, and when Release
	// returns. It is never closed while this process still leads.
	Lost() <-chan struct{}
	// Release gives leadership up: once it returns, another process MAY
	// acquire it. Releasing a Lease that is lost or released already MUST
	// do nothing and return nil.
	Release(ctx context.Context) error
}

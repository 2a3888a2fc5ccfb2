package witness

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/trailaudit/trail"
)

// Cosigned is a tenant's checkpoint witnessed by a quorum of a policy's
// witnesses: for the root log (trail.RootTenant), its checkpoint cosigned;
// for any other log, its checkpoint proven by the root log (Root).
type Cosigned struct {
	Tenant string
	Size   uint64
	// Note is the log's signed checkpoint. Of the root log, it has the
	// witnesses' signature lines appended: still a signed note, which a
	// client checks with the log's verifier key and the witnesses' keys.
	// Of a tenant's log, it is the tenant's signed checkpoint of Size,
	// made again from its root entry (Policy.VerifyTenant checks it).
	Note []byte
	// Cosignatures are the valid ones, by witness, their Time read from
	// the signatures themselves: of the root checkpoint.
	Cosignatures []*trail.Cosignature
	// Root proves a tenant's checkpoint witnessed: nil for the root log.
	Root *RootProof
}

// BadCosignatureError reports a kept cosignature, under the name and key
// of a policy's witness, that does not verify over the checkpoint it is
// kept with: the witness never signed it (damage, not a missing
// witness).
type BadCosignatureError struct {
	Tenant  string
	Size    uint64
	Witness string
	Detail  string
}

func (e *BadCosignatureError) Error() string {
	return fmt.Sprintf("tenant %s: the cosignature kept of the checkpoint of size %d by witness %s is forged: %s", e.Tenant, e.Size, e.Witness, e.Detail)
}

// Check returns those of cosigs (kept of one checkpoint of one tenant)
// that are valid cosignatures by the policy's witnesses of the checkpoint
// each is kept with, with their times as signed. A cosignature that is not
// of a policy witness (another name or key) is left out; one of a policy
// witness's key that does not verify is an error holding a
// *BadCosignatureError.
func (p *Policy) Check(cosigs []*trail.Cosignature) ([]*trail.Cosignature, error) {
	var out []*trail.Cosignature
	for _, c := range cosigs {
		text, _, err := noteText(c.Checkpoint)
		if err != nil {
			return nil, &BadCosignatureError{Tenant: c.Tenant, Size: c.Size, Witness: c.Witness, Detail: "the checkpoint kept with it is not a signed note"}
		}
		for _, w := range p.Witnesses {
			at, ok, err := w.cosignature(text, c.Line)
			if err != nil {
				return nil, &BadCosignatureError{Tenant: c.Tenant, Size: c.Size, Witness: w.Name, Detail: err.Error()}
			}
			if ok {
				v := *c
				v.Time = at
				out = append(out, &v)
				break
			}
		}
	}
	return out, nil
}

// Witnessed returns tenant's witnessed checkpoint: for the root log, its
// largest checkpoint whose kept cosignatures include valid ones by a
// quorum of the policy's witnesses; for a tenant's log, its last entry in
// that root checkpoint, with the entry's inclusion proof (Cosigned.Root;
// check it with VerifyTenant). It returns ENOTFOUND when there is none (a
// log not witnessed yet, or whose witnesses are down or refuse it), and
// an error holding a *BadCosignatureError when a kept cosignature it
// reads is forged.
func (p *Policy) Witnessed(ctx context.Context, s Store, tenant string) (*Cosigned, error) {
	if tenant != trail.RootTenant {
		return p.tenantWitnessed(ctx, s, tenant)
	}
	return p.logWitnessed(ctx, s, tenant)
}

// logWitnessed returns tenant's largest checkpoint a quorum cosigned.
func (p *Policy) logWitnessed(ctx context.Context, cs trail.CosignatureStore, tenant string) (*Cosigned, error) {
	latest, err := cs.LatestCosignatures(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var sizes []uint64
	for _, c := range latest {
		sizes = append(sizes, c.Size)
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	// A quorum at a size needs Quorum witnesses whose latest is at least
	// that size: try the largest sizes first.
	for i := len(sizes) - 1; i >= 0; i-- {
		kept, err := cs.Cosignatures(ctx, tenant, sizes[i])
		if err != nil {
			return nil, err
		}
		valid, err := p.Check(kept)
		if err != nil {
			return nil, err
		}
		if c := p.quorum(tenant, sizes[i], valid); c != nil {
			return c, nil
		}
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "tenant %s: no checkpoint is cosigned by a quorum of the witnesses (%s) yet", tenant, p)
}

// quorum returns the cosigned checkpoint of the first checkpoint text
// (all valid cosignatures of one size are of the same text in a sound
// store) that a quorum of valid cosignatures cosigns, or nil.
func (p *Policy) quorum(tenant string, size uint64, valid []*trail.Cosignature) *Cosigned {
	for _, first := range valid {
		var of []*trail.Cosignature
		for _, c := range valid {
			if bytes.Equal(c.Checkpoint, first.Checkpoint) {
				of = append(of, c)
			}
		}
		if len(of) < p.Quorum {
			continue
		}
		var lines strings.Builder
		for _, c := range of {
			lines.WriteString(c.Line)
		}
		note := append(bytes.Clone(first.Checkpoint), lines.String()...)
		return &Cosigned{Tenant: tenant, Size: size, Note: note, Cosignatures: of}
	}
	return nil
}

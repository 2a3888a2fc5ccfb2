package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
	"github.com/trailaudit/trail/witness"
)

// policyFile is the witness policy's file in the data directory, read
// when --witness-policy is not given.
const policyFile = "witnesses"

// policyFlag is --witness-policy, of the commands that witness (serve) or
// check what witnesses cosigned (verify).
// After load, policy is the policy read (nil: none) and path its file.
type policyFlag struct {
	file   string
	policy *witness.Policy
	path   string
	every  time.Duration // serve's --witness-interval
}

func (f *policyFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.file, "witness-policy", "", "witness policy file: witness NAME VKEY URL lines and a quorum K line (default DATA/"+policyFile+" when it exists)")
}

// load reads the policy: --witness-policy (or TRAIL_WITNESS_POLICY), else
// DATA/witnesses when that exists. It returns nil and "" when none is
// configured; a policy that does not parse is a usage error naming the
// file and the line.
func (f *policyFlag) load(e *env, sf *storeFlags) (*witness.Policy, string, error) {
	p, path, err := f.read(e, sf)
	f.policy, f.path = p, path
	return p, path, err
}

func (f *policyFlag) read(e *env, sf *storeFlags) (*witness.Policy, string, error) {
	path := f.file
	if path == "" {
		path = filepath.Join(sf.data, policyFile)
	}
	b, err := os.ReadFile(e.path(path))
	if f.file == "" && errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", usageError("--witness-policy: %v", err)
	}
	p, err := witness.ParsePolicy(string(b))
	if err != nil {
		return nil, "", usageError("--witness-policy %s: %v", path, strings.TrimPrefix(err.Error(), "invalid: "))
	}
	return p, path, nil
}

// describe says which policy a command holds the log to.
func describePolicy(p *witness.Policy, path string) string {
	return fmt.Sprintf("witness policy %s from %s", p, path)
}

// printWitnessed prints tenant's witnessed checkpoint with its root proof,
// checked, as JSON: trail checkpoint --witnessed.
func printWitnessed(ctx context.Context, e *env, pf *policyFlag, sf *storeFlags, d *deployment, v *tlog.Verifier, tenant string) error {
	c, err := witnessed(ctx, e, pf, sf, d, v, tenant, e.stderr)
	switch {
	case err != nil:
		return err
	case pf.policy == nil:
		return usageError("--witnessed: no witness policy (--witness-policy, or DATA/%s)", policyFile)
	case c == nil:
		return uncheckedError("tenant %s: no checkpoint is witnessed by a quorum of the %s yet", tenant, describePolicy(pf.policy, pf.path))
	}
	return writeJSON(e.stdout, struct {
		Checkpoint string             `json:"checkpoint"`
		Size       uint64             `json:"size"`
		Witnessed  *witness.RootProof `json:"witnessed"`
	}{string(c.Note), c.Size, c.Root})
}

// witnessed loads the witness policy and returns tenant's checkpoint
// witnessed through the root log, its chain checked under v
// (Policy.VerifyTenant), nil when there is no policy or no such
// checkpoint (verify then says it could not check, after the log's own
// checks). A forged cosignature, or a chain that does not hold (a root
// entry changed, a checkpoint the root log does not hold), is damage,
// reported on stdout.
func witnessed(ctx context.Context, e *env, pf *policyFlag, sf *storeFlags, d *deployment, v *tlog.Verifier, tenant string, says io.Writer) (*witness.Cosigned, error) {
	p, path, err := pf.load(e, sf)
	if err != nil || p == nil {
		return nil, err
	}
	fmt.Fprintf(says, "holding the log to the %s\n", describePolicy(p, path))
	c, err := p.Witnessed(ctx, d.Witness, tenant)
	var forged *witness.BadCosignatureError
	var damage *tlog.DamageError
	switch {
	case errors.As(err, &forged):
		fmt.Fprintf(e.stdout, "DAMAGE: %v\n", forged)
		return nil, errFound
	case errors.As(err, &damage):
		fmt.Fprintf(e.stdout, "DAMAGE: the root log, which witnesses the tenants' checkpoints: %v\n", err)
		return nil, errFound
	case trail.ErrorCode(err) == trail.ENOTFOUND:
		return nil, nil
	case err != nil:
		return nil, uncheckedError("reading the cosignatures of tenant %s: %v", tenant, err)
	}
	if _, err := p.VerifyTenant(v, tenant, c); err != nil {
		fmt.Fprintf(e.stdout, "DAMAGE: the witnessed checkpoint of size %d: %v\n", c.Size, err)
		return nil, errFound
	}
	return c, nil
}

package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/tlog"
)

// LatestCheckpoint fetches the tenant's latest signed checkpoint (GET
// /v1/checkpoint), checks its signature with RemoteOptions.Verifier and
// holds it to the latest one remembered (tlog.CheckRemembered, with the
// consistency proofs of GET /v1/proofs/consistency): one of another
// size that the log extends replaces the remembered one; a smaller one is
// a rollback and one the log does not extend a fork, both refused with an
// ECONFLICT error wrapping a *tlog.InconsistentError that names both
// sizes and roots. A checkpoint that does not verify is EINVALID.
// LatestCheckpoint needs Verifier, and Key to carry the verify scope.
func (r *Remote) LatestCheckpoint(ctx context.Context) (*tlog.Checkpoint, error) {
	o := &r.d.o
	if o.Verifier == nil {
		return nil, trail.Errorf(trail.EINVALID, "client: LatestCheckpoint: no Verifier in RemoteOptions")
	}
	var doc struct {
		Checkpoint string `json:"checkpoint"`
	}
	if err := r.d.get(ctx, "/v1/checkpoint", nil, &doc); err != nil {
		return nil, err
	}
	cp, err := o.Verifier.Open(o.Tenant, []byte(doc.Checkpoint))
	if err != nil {
		return nil, fmt.Errorf("client: the server's latest checkpoint of tenant %s: %w", o.Tenant, err)
	}
	prove := func(ctx context.Context, from, to uint64) ([][]byte, error) {
		var p struct {
			Proof [][]byte `json:"proof"`
		}
		q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
		err := r.d.get(ctx, "/v1/proofs/consistency", q, &p)
		return p.Proof, err
	}
	if err := tlog.CheckRemembered(ctx, o.Remembered, cp, true, prove); err != nil {
		return nil, fmt.Errorf("client: the server's latest checkpoint of tenant %s: %w", o.Tenant, err)
	}
	return cp, nil
}

// get reads the JSON answer to GET path?q into out; an answer other than
// 200 is the server's problem as a coded error.
func (d *deliverer) get(ctx context.Context, path string, q url.Values, out any) error {
	u := strings.TrimSuffix(d.o.URL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("client: building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+d.o.Key)
	req.Header.Set("User-Agent", "trail-client-go")
	res, err := d.hc.Do(req)
	if err != nil {
		return trail.Errorf(trail.EUNAVAILABLE, "client: GET %s: %w", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		p := readProblem(res)
		return fmt.Errorf("client: trail serve answered %d %s to GET %s: %w", res.StatusCode, http.StatusText(res.StatusCode), path, p.coded(p.Errors))
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(out); err != nil {
		return trail.Errorf(trail.EINTERNAL, "client: the answer to GET %s: %w", path, err)
	}
	return nil
}

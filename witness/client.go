package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxResponse bounds what Trail reads of a witness's answer.
const maxResponse = 64 << 10

// conflictError is a witness's 409: the size it last cosigned is not the
// old size submitted.
type conflictError struct{ size uint64 }

func (e *conflictError) Error() string {
	return fmt.Sprintf("the witness last cosigned size %d", e.size)
}

// RefusedError is a witness's refusal of a checkpoint: it will not cosign
// it as it stands, which retrying does not change (c2sp.org/tlog-witness:
// 403 the log or its key is unknown to it or the signature does not
// verify, 404 the log is unknown, 422 the consistency proof does not
// prove the checkpoint extends what it cosigned, 400 the request is
// malformed; or it has cosigned a larger tree of the log than the one
// submitted). A fork or a rollback of the log is refused so.
type RefusedError struct {
	Witness string
	Status  int    // the HTTP status of the answer
	Reason  string // what it means, and what the witness said
	// WitnessSize is the size the witness has cosigned, when it said
	// (409), else 0.
	WitnessSize uint64
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("witness %s refused the checkpoint (HTTP %d): %s", e.Witness, e.Status, e.Reason)
}

// addCheckpoint submits a signed checkpoint to w's add-checkpoint with the
// consistency proof from oldSize, the size w last cosigned
// (c2sp.org/tlog-witness), and returns w's cosignature line of it,
// verified, and the time it carries. The errors: *conflictError (409: w
// last cosigned another size), *RefusedError, or any other for a witness
// that could not answer (down, overloaded, a bad answer).
func (w *Witness) addCheckpoint(ctx context.Context, hc *http.Client, oldSize uint64, proof [][]byte, note []byte) (string, time.Time, error) {
	text, _, err := noteText(note)
	if err != nil {
		return "", time.Time{}, err
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	body.WriteString("\n")
	body.Write(note)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", &body)
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("witness %s: read the answer: %w", w.Name, err)
	}
	said := strings.TrimSpace(string(answer))
	if len(said) > 200 {
		said = said[:200] + "…"
	}
	refused := func(why string) error {
		return &RefusedError{Witness: w.Name, Status: resp.StatusCode, Reason: why + " (the witness said: " + strconv.Quote(said) + ")"}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		for _, line := range strings.SplitAfter(string(answer), "\n") {
			at, ok, err := w.cosignature(text, line)
			if err != nil {
				return "", time.Time{}, err
			}
			if ok {
				return strings.TrimSuffix(line, "\n") + "\n", at, nil
			}
		}
		return "", time.Time{}, fmt.Errorf("witness %s answered no cosignature by its key %s: is the policy's verifier key right?", w.Name, w.VKey)
	case http.StatusConflict:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		size, err := strconv.ParseUint(strings.TrimSpace(string(answer)), 10, 64)
		if mt != "text/x.tlog.size" || err != nil {
			return "", time.Time{}, fmt.Errorf("witness %s: a 409 without its size (text/x.tlog.size): %q", w.Name, said)
		}
		return "", time.Time{}, &conflictError{size: size}
	case http.StatusForbidden:
		return "", time.Time{}, refused("it does not accept this log's checkpoints: the log or its key is unknown to it, or the signature does not verify")
	case http.StatusNotFound:
		return "", time.Time{}, refused("it does not know this log's origin")
	case http.StatusUnprocessableEntity:
		return "", time.Time{}, refused("the consistency proof does not prove this checkpoint extends the one it cosigned: the log forked")
	case http.StatusBadRequest:
		return "", time.Time{}, refused("it found the request malformed")
	}
	return "", time.Time{}, fmt.Errorf("witness %s: HTTP %d: %q", w.Name, resp.StatusCode, said)
}

// errRefused reports whether err is a refusal.
func errRefused(err error) (*RefusedError, bool) {
	var r *RefusedError
	ok := errors.As(err, &r)
	return r, ok
}

package trail

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Cosignature is one witness's cosignature of a tenant's checkpoint
// (c2sp.org/tlog-cosignature), as Trail keeps it once it has verified it
// (package witness): a note signature line that, appended to the
// checkpoint of that size, makes it a cosigned checkpoint.
type Cosignature struct {
	Tenant  string    `json:"tenant"`
	Size    uint64    `json:"size"`    // the size of the checkpoint cosigned
	Witness string    `json:"witness"` // the witness's name (its key's name)
	Time    time.Time `json:"time"`    // when the witness signed: the cosignature's timestamp
	Line    string    `json:"line"`    // the signature line, "— NAME BASE64\n"
	// Checkpoint is the signed checkpoint (the log's note, as submitted)
	// that Line cosigns: Checkpoint with Line appended is the cosigned
	// checkpoint.
	Checkpoint []byte `json:"checkpoint"`
}

// CosignatureStore keeps the witnesses' cosignatures of the tenants'
// checkpoints, beside the checkpoints, in the store's database.
//
// Contract: AddCosignature checks c (CheckCosignature) and keeps it; a
// second one for the same tenant, size and witness is ignored, the first
// stays (cosignatures are evidence: never changed or deleted).
// Cosignatures returns those kept of tenant's checkpoint of size, by
// witness name. LatestCosignatures returns, for each witness, the one kept
// of tenant's largest size, by witness name. LogSizes returns the size of
// every tenant's log that holds an event, as its head records it: how a
// witnessing loop finds the logs that grew. LatestCheckpoints returns the
// latest signed checkpoint (what Log.Checkpoint returns) of each of
// tenants that has one, by tenant, leaving out those with none: how a
// witnessing loop reads the checkpoints of the logs that grew with a
// query for many logs rather than one a log.
type CosignatureStore interface {
	AddCosignature(ctx context.Context, c *Cosignature) error
	Cosignatures(ctx context.Context, tenant string, size uint64) ([]*Cosignature, error)
	LatestCosignatures(ctx context.Context, tenant string) ([]*Cosignature, error)
	LogSizes(ctx context.Context) (map[string]uint64, error)
	LatestCheckpoints(ctx context.Context, tenants []string) (map[string][]byte, error)
}

// MaxCheckpointNote bounds the signed checkpoint a cosignature keeps.
const MaxCheckpointNote = 8 << 10

// CheckCosignature returns an EINVALID error naming c's bad fields, or nil.
// It checks the form only; the signature is checked by package witness
// before a cosignature is kept.
func CheckCosignature(c *Cosignature) error {
	if c == nil {
		return Invalid("bad cosignature", FieldError{Path: "witness", Message: "required"})
	}
	var fe []FieldError
	if m := CheckLog(c.Tenant); m != "" {
		fe = append(fe, FieldError{Path: "tenant", Message: m})
	}
	if c.Size == 0 {
		fe = append(fe, FieldError{Path: "size", Message: "a checkpoint of an empty log is not cosigned"})
	}
	if c.Witness == "" || len(c.Witness) > MaxNameLen || strings.IndexFunc(c.Witness, unicode.IsSpace) >= 0 || strings.Contains(c.Witness, "+") {
		fe = append(fe, FieldError{Path: "witness", Message: fmt.Sprintf("want a key name: 1 to %d bytes, no spaces or '+'", MaxNameLen)})
	}
	if f := CheckTime("time", c.Time); f != nil {
		fe = append(fe, *f)
	}
	if !strings.HasPrefix(c.Line, "— "+c.Witness+" ") || !strings.HasSuffix(c.Line, "\n") || strings.Count(c.Line, "\n") != 1 || len(c.Line) > 1024 {
		fe = append(fe, FieldError{Path: "line", Message: "want one note signature line of the witness: \"— NAME BASE64\" and a newline"})
	}
	if len(c.Checkpoint) == 0 || len(c.Checkpoint) > MaxCheckpointNote {
		fe = append(fe, FieldError{Path: "checkpoint", Message: fmt.Sprintf("want the signed checkpoint cosigned, 1 to %d bytes", MaxCheckpointNote)})
	}
	if len(fe) > 0 {
		return Invalid("bad cosignature", fe...)
	}
	return nil
}

package trail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// ActionStore keeps the custom actions registered at run time (POST
// /v1/actions), so that they survive a restart: the service loads them into
// the catalog when it starts.
//
// Contract: SaveAction MUST refuse a name already saved (ECONFLICT);
// SavedActions returns them in the order they were saved.
type ActionStore interface {
	SaveAction(ctx context.Context, a *Action) error
	SavedActions(ctx context.Context) ([]*Action, error)
}

// Sealer encrypts the personal data of prepared events under their data
// subject's key before they are stored, so that erasing a subject (deleting
// its keys) leaves its data unreadable everywhere while the stored bytes,
// and so the log's proofs, stay as they were. Package erasure implements
// it. Stores call Validator.Seal after PrepareBatch.
type Sealer interface {
	Seal(ctx context.Context, tenant string, evs []*Event) error
}

// SubjectKeyStore keeps the data keys of data subjects, apart from the
// events they protect.
//
// Contract: SubjectKeys returns, for each subject, its current key (32
// bytes) and the key's id, creating keys for subjects that have none (never
// reviving an erased one), all in one write; KeyByID returns ENOTFOUND for
// an unknown or erased key; EraseSubject deletes every key of the subject
// so that no copy stays readable in the store, and returns how many it
// deleted.
type SubjectKeyStore interface {
	SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]SubjectKey, error)
	KeyByID(ctx context.Context, tenant, id string) ([]byte, error)
	EraseSubject(ctx context.Context, tenant, subject string) (int, error)
}

// SubjectKey is one data subject's key.
type SubjectKey struct {
	ID  string
	Key []byte
}

// NewSubjectKey makes a subject key: a random id of 16 hex digits and 32
// random bytes (an AES-256 key). SubjectKeyStore implementations call it
// for each key they create.
func NewSubjectKey() (SubjectKey, error) {
	var id [8]byte
	key := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return SubjectKey{}, err
	}
	if _, err := rand.Read(key); err != nil {
		return SubjectKey{}, err
	}
	return SubjectKey{ID: hex.EncodeToString(id[:]), Key: key}, nil
}

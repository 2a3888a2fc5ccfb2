package trail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// ActionStore keeps the custom actions each tenant registered at run time
// (POST /v1/actions), so that they survive a restart: the service loads
// them into each tenant's view of the catalog when it starts. A
// registration is its tenant's alone: two tenants may save the same name
// with different definitions.
//
// Contract: SaveAction MUST refuse a tenant name CheckTenant refuses
// (EINVALID) and a name the tenant saved already (ECONFLICT); SavedActions
// returns every tenant's, in the order they were saved, each a copy the
// caller may change.
type ActionStore interface {
	SaveAction(ctx context.Context, tenant string, a *Action) error
	SavedActions(ctx context.Context) ([]SavedAction, error)
}

// SavedAction is a custom action a tenant registered.
type SavedAction struct {
	Tenant string
	Action *Action
}

// CheckSavedAction refuses what no ActionStore saves, naming the field:
// what every SaveAction checks first.
func CheckSavedAction(tenant string, a *Action) error {
	var fe []FieldError
	if m := CheckTenant(tenant); m != "" {
		fe = append(fe, FieldError{Path: "tenant", Message: m})
	}
	if a == nil || a.Name == "" {
		fe = append(fe, FieldError{Path: "name", Message: "required"})
	}
	if len(fe) > 0 {
		return Invalid("bad action", fe...)
	}
	return nil
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

// ActionMigrationNote is what a store's migration of the custom actions
// saved before they were per tenant says of the action name: the tenants
// (comma-separated, "" for none) it was given to, those whose log
// recorded its registration or holds an event of it.
func ActionMigrationNote(name, tenants string) string {
	if tenants == "" {
		return fmt.Sprintf("custom action %s, saved when custom actions were shared by every tenant, is in no tenant's log, so no tenant has it now: register it again in the tenant that needs it", name)
	}
	return fmt.Sprintf("custom action %s, saved when custom actions were shared by every tenant, now belongs to tenant %s (whose log registered or used it); other tenants no longer see it", name, tenants)
}

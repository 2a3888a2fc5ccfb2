package trail

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KeyScope is one thing a tenant's API key may do (not to be confused
// with an event's Scope). A request needs the scope of its route; the
// tenant it acts on always comes from the key. No scope reaches beyond the
// key's tenant: managing tenants takes an operator credential
// (NewOperatorKey), a different kind of credential.
type KeyScope string

// The scopes.
const (
	ScopeIngest KeyScope = "ingest" // append events
	ScopeRead   KeyScope = "read"   // query events and the catalog
	ScopeExport KeyScope = "export" // export events
	ScopeVerify KeyScope = "verify" // checkpoints, proofs and verification
	ScopeAdmin  KeyScope = "admin"  // manage the key's own tenant: its keys, holds, erasures and custom actions
)

// KeyScopes lists every scope, in a fixed order.
var KeyScopes = []KeyScope{ScopeIngest, ScopeRead, ScopeExport, ScopeVerify, ScopeAdmin}

// Valid reports whether s is one of KeyScopes.
func (s KeyScope) Valid() bool { return slices.Contains(KeyScopes, s) }

// APIKey is the record of an API key: everything but its secret, of which
// only a SHA-256 hash is kept.
type APIKey struct {
	ID        string     `json:"id"`     // public; the key's text begins with it
	Tenant    string     `json:"tenant"` // the tenant every request with the key acts for
	Name      string     `json:"name"`   // what it is for, for people
	Scopes    []KeyScope `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt time.Time  `json:"revoked_at,omitzero"`
	Hash      []byte     `json:"-"` // SHA-256 of the secret part
}

// Operator reports whether k is an operator credential rather than a
// tenant's key: one kept under the reserved tenant OperatorTenant.
func (k *APIKey) Operator() bool { return k.Tenant == OperatorTenant }

// Has reports whether k carries scope s.
func (k *APIKey) Has(s KeyScope) bool { return slices.Contains(k.Scopes, s) }

// Revoked reports whether k has been revoked.
func (k *APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// KeyStore keeps API keys. The stores implement it in the same database as
// the events.
//
// Contract: CreateKey MUST refuse an existing ID (ECONFLICT); Key MUST
// return ENOTFOUND for an unknown ID; RevokeKey sets RevokedAt once (a
// second revocation keeps the first time) and returns ENOTFOUND for an
// unknown ID; Keys lists a tenant's keys (all tenants' for "") in creation
// order, revoked ones included.
type KeyStore interface {
	CreateKey(ctx context.Context, k *APIKey) error
	Key(ctx context.Context, id string) (*APIKey, error)
	Keys(ctx context.Context, tenant string) ([]*APIKey, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// keyPrefix begins every API key's text: "trail_" KEYID "_" SECRET.
const keyPrefix = "trail_"

// OperatorKeyPrefix begins every operator credential's text:
// "trailop_" KEYID "_" SECRET.
const OperatorKeyPrefix = "trailop_"

// OperatorTenant is the reserved tenant the operator credentials are kept
// under in the KeyStore, and whose log records what operators do. No
// tenant can take the name: CheckTenant refuses it (a tenant's name starts
// with a letter or digit), so neither events nor keys of a tenant reach it.
const OperatorTenant = "_operators"

// RootTenant is the reserved tenant of the root log: a log whose events
// are the tenants' checkpoints (their size and root hash, under a hash of
// their origin), the one log submitted to witnesses (package witness). As
// OperatorTenant, no tenant can take the name, and only Trail's own
// records reach it.
const RootTenant = "_root"

// Reserved reports whether log is one of the logs Trail keeps for itself
// (OperatorTenant, RootTenant) rather than a tenant's: no tenant has it,
// and no tenant's view lists it (GET /v1/tenants leaves them out).
func Reserved(log string) bool { return log == OperatorTenant || log == RootTenant }

// CheckLog is CheckTenant, except that it also accepts OperatorTenant and
// RootTenant: the names of the logs Trail keeps (the tenants', the
// operators' and the root log). Only Trail's own records reach the
// reserved logs (the pipeline refuses an outside append to them).
func CheckLog(log string) string {
	if Reserved(log) {
		return ""
	}
	return CheckTenant(log)
}

// NewOperatorKey makes an operator credential: the kind of credential that
// manages tenants (their keys, for any tenant) rather than acting on one
// tenant's data. It is an APIKey of tenant OperatorTenant with no scopes,
// whose text (trailop_ID_SECRET) is shown once. Only the CLI and the
// service's bootstrap make one: no route of the API does.
func NewOperatorKey(name string, now time.Time) (text string, k *APIKey, err error) {
	if len(name) > 200 {
		return "", nil, Invalid("bad operator credential", FieldError{Path: "name", Message: "longer than 200 bytes"})
	}
	text, k, err = newKey(OperatorTenant, name, nil, now)
	if err != nil {
		return "", nil, err
	}
	return OperatorKeyPrefix + strings.TrimPrefix(text, keyPrefix), k, nil
}

// NewAPIKey makes a key for tenant: 32 random bytes of secret, a random
// 12-character id, and the text the caller is shown once (trail_ID_SECRET).
// The record keeps only the secret's hash.
func NewAPIKey(tenant, name string, scopes []KeyScope, now time.Time) (text string, k *APIKey, err error) {
	var fe []FieldError
	if m := CheckTenant(tenant); m != "" {
		fe = append(fe, FieldError{Path: "tenant", Message: m})
	}
	if len(name) > 200 {
		fe = append(fe, FieldError{Path: "name", Message: "longer than 200 bytes"})
	}
	if len(scopes) == 0 {
		fe = append(fe, FieldError{Path: "scopes", Message: "required: one or more of ingest, read, export, verify, admin"})
	}
	for i, s := range scopes {
		if !s.Valid() {
			fe = append(fe, FieldError{Path: PathIndex("scopes", i), Message: fmt.Sprintf("%q is not one of ingest, read, export, verify, admin", s)})
		}
	}
	if len(fe) > 0 {
		return "", nil, Invalid("bad API key", fe...)
	}
	return newKey(tenant, name, scopes, now)
}

// newKey makes the key record and its text (trail_ID_SECRET) from
// arguments already checked.
func newKey(tenant, name string, scopes []KeyScope, now time.Time) (text string, k *APIKey, err error) {
	var id [6]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, err
	}
	k = &APIKey{ID: hex.EncodeToString(id[:]), Tenant: tenant, Name: name, CreatedAt: now.UTC()}
	for _, s := range KeyScopes { // canonical order, no repeats
		if slices.Contains(scopes, s) {
			k.Scopes = append(k.Scopes, s)
		}
	}
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	h := sha256.Sum256([]byte(s))
	k.Hash = h[:]
	return keyPrefix + k.ID + "_" + s, k, nil
}

// ParseAPIKey splits a key's text (a tenant's key, trail_ID_SECRET, or an
// operator credential, trailop_ID_SECRET) into its id and the hash of its
// secret, or returns EUNAUTHORIZED when it is not shaped like either.
// Whether the text is an operator's is its prefix; the record found by the
// id must be of the same kind (see APIKey.Operator).
func ParseAPIKey(text string) (id string, hash []byte, err error) {
	rest, ok := strings.CutPrefix(text, keyPrefix)
	if !ok {
		rest, ok = strings.CutPrefix(text, OperatorKeyPrefix)
	}
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 || len(secret) != 43 {
		return "", nil, Errorf(EUNAUTHORIZED, "not an API key (want trail_ID_SECRET, or trailop_ID_SECRET for an operator)")
	}
	h := sha256.Sum256([]byte(secret))
	return id, h[:], nil
}

// Matches reports, in constant time, whether hash is the hash of k's
// secret.
func (k *APIKey) Matches(hash []byte) bool {
	return subtle.ConstantTimeCompare(k.Hash, hash) == 1
}

// CheckAPIKey refuses a key record a store cannot keep, naming each bad
// field: what every KeyStore's CreateKey checks first.
func CheckAPIKey(k *APIKey) error {
	if k == nil {
		return Invalid("bad API key", FieldError{Path: "id", Message: "required"})
	}
	var fe []FieldError
	if k.ID == "" {
		fe = append(fe, FieldError{Path: "id", Message: "required"})
	}
	if len(k.Hash) == 0 {
		fe = append(fe, FieldError{Path: "hash", Message: "required"})
	}
	for i, s := range k.Scopes {
		if !s.Valid() {
			fe = append(fe, FieldError{Path: PathIndex("scopes", i), Message: fmt.Sprintf("unknown scope %q: one of %v", s, KeyScopes)})
		}
	}
	if f := CheckTime("created_at", k.CreatedAt); f != nil {
		fe = append(fe, *f)
	}
	if !k.RevokedAt.IsZero() {
		if f := CheckTime("revoked_at", k.RevokedAt); f != nil {
			fe = append(fe, *f)
		}
	}
	if len(fe) > 0 {
		return Invalid("bad API key", fe...)
	}
	return nil
}

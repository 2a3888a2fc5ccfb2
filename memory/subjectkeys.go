package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/trailaudit/trail"
)

// SubjectKeys keeps the keys of data subjects (package erasure) in memory,
// apart from any Store: for tests, examples and tools, beside a Store. It
// is safe for concurrent use; callers get their own copy of each key.
type SubjectKeys struct {
	mu      sync.Mutex
	keys    map[subjectKeyID]subjectKey
	current map[subjectKeyID]string // by tenant and subject: the subject's key id
}

// subjectKeyID names a key by tenant and id, or a subject by tenant and
// subject.
type subjectKeyID struct{ tenant, name string }

type subjectKey struct {
	subject string
	key     []byte
}

var _ trail.SubjectKeyStore = (*SubjectKeys)(nil)

// NewSubjectKeys returns an empty key store.
func NewSubjectKeys() *SubjectKeys {
	return &SubjectKeys{keys: map[subjectKeyID]subjectKey{}, current: map[subjectKeyID]string{}}
}

// SubjectKeys returns the subjects' keys, creating the missing ones.
func (m *SubjectKeys) SubjectKeys(ctx context.Context, tenant string, subjects []string) ([]trail.SubjectKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]trail.SubjectKey, len(subjects))
	for i, subject := range subjects {
		if id, ok := m.current[subjectKeyID{tenant, subject}]; ok {
			out[i] = trail.SubjectKey{ID: id, Key: slices.Clone(m.keys[subjectKeyID{tenant, id}].key)}
			continue
		}
		k, err := trail.NewSubjectKey()
		if err != nil {
			return nil, err
		}
		m.keys[subjectKeyID{tenant, k.ID}] = subjectKey{subject: subject, key: slices.Clone(k.Key)}
		m.current[subjectKeyID{tenant, subject}] = k.ID
		out[i] = k
	}
	return out, nil
}

// KeyByID returns a key, or ENOTFOUND once erased.
func (m *SubjectKeys) KeyByID(ctx context.Context, tenant, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.keys[subjectKeyID{tenant, id}]; ok {
		return slices.Clone(v.key), nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no subject key %s (erased)", id)
}

// EraseSubject deletes the subject's keys, zeroing their bytes.
func (m *SubjectKeys) EraseSubject(ctx context.Context, tenant, subject string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, v := range m.keys {
		if k.tenant == tenant && v.subject == subject {
			clear(v.key)
			delete(m.keys, k)
			n++
		}
	}
	delete(m.current, subjectKeyID{tenant, subject})
	return n, nil
}

// Package baseline is what the seed apps do, for benchmarks to measure
// Trail against in the same run: one audit_logs row per event, a JSON
// context column, an index on user and on action, each event its own
// INSERT and COMMIT, in SQLite with the same durability as Trail's
// (WAL, synchronous=FULL).
package baseline

import (
	"database/sql"
	"encoding/json"
	"time"

	"github.com/trailaudit/trail"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

const table = `CREATE TABLE audit_logs (
	id TEXT PRIMARY KEY, action TEXT NOT NULL, user_id TEXT, resource_type TEXT, resource_id TEXT,
	ip_address TEXT, user_agent TEXT, session_id TEXT, request_id TEXT, organization TEXT, workspace TEXT,
	context TEXT, created_at INTEGER NOT NULL);
CREATE INDEX audit_logs_user ON audit_logs (user_id, created_at);
CREATE INDEX audit_logs_action ON audit_logs (action, created_at);`

// Open creates the seeds' table in a new database file at path.
func Open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(table); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Insert writes one event the seeds' way: one INSERT, committed alone.
func Insert(db *sql.DB, ev *trail.Event) error {
	ctx, _ := json.Marshal(ev.Context)
	var rtype, rid string
	if len(ev.Targets) > 0 {
		rtype, rid = ev.Targets[0].Type, ev.Targets[0].ID
	}
	_, err := db.Exec(`INSERT INTO audit_logs (id, action, user_id, resource_type, resource_id, ip_address, user_agent,
		session_id, request_id, organization, workspace, context, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		trail.NewID(time.Now()), ev.Action, ev.Actor.ID, rtype, rid, ev.Request.IP, ev.Request.UserAgent,
		ev.Request.SessionID, ev.Request.RequestID, ev.Scope.Organization, ev.Scope.Workspace, string(ctx), time.Now().UnixNano())
	return err
}

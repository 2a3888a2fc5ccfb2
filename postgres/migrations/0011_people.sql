-- People's UI sessions (trail.SessionPerson): the name (email) they are
-- known by and the scopes their mapping gave them. A key's session has
-- neither: it acts as its key.
ALTER TABLE sessions ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN scopes text[] NOT NULL DEFAULT '{}';

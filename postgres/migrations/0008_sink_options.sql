-- What a sink does with a message its receiver refuses for good
-- (trail.SinkConfig.OnRefusal): stop (the default, and what every sink
-- stored before did) or skip, recording the skip in the log.
ALTER TABLE sinks ADD COLUMN on_refusal text NOT NULL DEFAULT 'stop';

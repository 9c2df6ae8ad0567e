package claim

// The keys of a queue's operational indexes. Each is named {P:T}:... with a
// hash tag, so that no index key can be taken for a job record (P:T:<id>;
// the prefix holds no '{') and all index keys of one queue share a Redis
// Cluster slot. T is the queue's name in Redis keys.

// tag is the hash-tagged stem {P:T} of a queue's index keys.
func (s *Store) tag(tube string) string {
	return "{" + s.prefix + ":" + tube + "}"
}

// DeadKey is the queue's dead-letter index: a sorted set of job IDs scored
// by bury time in Unix milliseconds.
func (s *Store) DeadKey(tube string) string {
	return s.tag(tube) + ":dead"
}

// DeadInfoKey is the hash beside DeadKey: job ID to the JSON of its entry
// ({"ref","at","att","cls","msg"}).
func (s *Store) DeadInfoKey(tube string) string {
	return s.tag(tube) + ":dead:info"
}

// ConsumersKey is the queue's consumer registry: a sorted set of consumer
// IDs scored by the time of their latest entry in Unix milliseconds.
func (s *Store) ConsumersKey(tube string) string {
	return s.tag(tube) + ":consumers"
}

// ConsumerKey is the string holding consumer id's latest registry entry
// (JSON), which expires unless rewritten.
func (s *Store) ConsumerKey(tube, id string) string {
	return s.tag(tube) + ":consumer:" + id
}

// PausedKey is the string that, while it exists, pauses the queue: JSON
// {"by","since"}, with no TTL.
func (s *Store) PausedKey(tube string) string {
	return s.tag(tube) + ":paused"
}

// AuditKey is the stream of operators' actions on every queue under the
// prefix (fields who, what, queue).
func (s *Store) AuditKey() string {
	return "{" + s.prefix + "}:audit"
}

// ProducersKey is the queue's producer registry: a sorted set of producer
// IDs scored by the time of their latest entry in Unix milliseconds.
func (s *Store) ProducersKey(tube string) string {
	return s.tag(tube) + ":producers"
}

// ProducerKey is the string holding producer id's latest registry entry
// (JSON), which expires unless rewritten.
func (s *Store) ProducerKey(tube, id string) string {
	return s.tag(tube) + ":producer:" + id
}

// OpKey is the hash of bulk operation id on the queue's dead letters: its
// progress, kept for OpTTL.
func (s *Store) OpKey(tube, id string) string {
	return s.tag(tube) + ":op:" + id
}

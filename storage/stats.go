package storage

// CommitStats returns how many write transactions the committer has run
// (each ends with bbolt's fsyncs) and how many requests they carried
// (appends, creates, snapshots, outbox writes, pings), since Open. Their
// ratio is the average group-commit size across all documents.
func (db *DB) CommitStats() (commits, requests int64) {
	return db.commits.Load(), db.committed.Load()
}

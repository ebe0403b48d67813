package storage

import "time"

// CommitStats returns how many write transactions the committer has run
// (each ends with bbolt's fsyncs) and how many requests they carried
// (appends, creates, snapshots, outbox writes, pings), since Open. Their
// ratio is the average group-commit size across all documents.
func (db *DB) CommitStats() (commits, requests int64) {
	return db.commits.Load(), db.committed.Load()
}

// ObserveCommits has f called after each write transaction with how long
// it took, from its start to its end: the page writes and bbolt's two
// fsyncs, across all documents. It may be set at any time, and replaces
// the observer before it; nil stops the calls. f runs on the committer,
// so it must be quick.
func (db *DB) ObserveCommits(f func(took time.Duration)) {
	if f == nil {
		db.onCommit.Store(nil)
		return
	}
	db.onCommit.Store(&f)
}

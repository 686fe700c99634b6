// Package recordings keeps tamper-evident session recordings: events are appended to a
// durable local spool (fsynced in group commits), sealed into gzip JSON Lines segments that
// form a SHA-256 hash chain per session and replica, closed by an Ed25519-signed manifest,
// and uploaded to a [Sink] (directory or S3). Invariants: an event acknowledged by
// [Recorder.Sync] survives a crash; nothing is dropped without a metric and a log line.
package recordings

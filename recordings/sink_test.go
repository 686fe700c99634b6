package recordings_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
	"github.com/mcpguard/mcpguard/recordings/recordingstest"
)

func TestDirSinkContract(t *testing.T) {
	recordingstest.Run(t, func(t *testing.T) recordings.Sink {
		s, err := recordings.NewDir(t.TempDir())
		require.NoError(t, err)
		return s
	})
}

var bucketN atomic.Int64

func TestS3SinkContract(t *testing.T) {
	srv := recordingstest.StartS3(t)
	recordingstest.Run(t, func(t *testing.T) recordings.Sink {
		s, err := recordings.NewS3(srv.Bucket(t, fmt.Sprintf("contract-%d", bucketN.Add(1)), false))
		require.NoError(t, err)
		return s
	})
}

// versitygw's GetObjectRetention reply is not parsed by minio-go, so retention is checked
// by what it must cause: deleting the locked version is refused.
func TestS3ObjectLockRetention(t *testing.T) {
	srv := recordingstest.StartS3(t)
	cfg := srv.Bucket(t, "locked", true)
	cfg.ObjectLock = recordings.ObjectLock{Mode: "COMPLIANCE", Days: 1}
	s, err := recordings.NewS3(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Put(t.Context(), "p/k", []byte("kept")))

	c := srv.Client(t)
	info, err := c.StatObject(t.Context(), "locked", "p/k", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, info.VersionID, "object lock needs a versioned object")
	err = c.RemoveObject(t.Context(), "locked", "p/k", minio.RemoveObjectOptions{VersionID: info.VersionID})
	require.Error(t, err, "a version under COMPLIANCE retention must not be deletable")
	b, err := s.Get(t.Context(), "p/k")
	require.NoError(t, err)
	require.Equal(t, []byte("kept"), b)

	// Without retention the same delete succeeds: the failure above is the lock's doing.
	plain := srv.Bucket(t, "unlocked", true)
	ps, err := recordings.NewS3(plain)
	require.NoError(t, err)
	require.NoError(t, ps.Put(t.Context(), "p/k", []byte("gone")))
	info, err = c.StatObject(t.Context(), "unlocked", "p/k", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.NoError(t, c.RemoveObject(t.Context(), "unlocked", "p/k", minio.RemoveObjectOptions{VersionID: info.VersionID}))
}

// Storage down for a while, then back: everything recorded meanwhile is uploaded once.
func TestS3OutageThenRecovery(t *testing.T) {
	srv := recordingstest.StartS3(t)
	s3cfg := srv.Bucket(t, "outage", false)
	sink, err := recordings.NewS3(s3cfg)
	require.NoError(t, err)
	cfg := testConfig(t)
	cfg.Sink = recordings.SinkConfig{Type: "s3", Prefix: "rec", S3: s3cfg}
	cfg.Segment.MaxBytes = 1 << 10
	key := testKey(t)
	r := openRecorder(t, cfg, sink, key)

	srv.Stop(t)
	for i := range 20 {
		exchange(t, r, "out-1", i)
	}
	require.NoError(t, r.Record(recordings.Event{Kind: recordings.KindSessionEnd, Session: "out-1"}))
	require.NoError(t, r.Sync(t.Context()))
	time.Sleep(300 * time.Millisecond) // several failed upload attempts
	srv.Start(t)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.Close(ctx))
	v := verify(t, sink, "rec", "out-1", key.Public().(ed25519.PublicKey))
	require.True(t, v.OK(), v.String())
	require.Equal(t, 62, v.Events)

	a := recordings.NewArchive(sink, "rec")
	s, err := a.Find(t.Context(), "out-1")
	require.NoError(t, err)
	evs, err := a.Events(t.Context(), s)
	require.NoError(t, err)
	seen := map[uint64]bool{}
	for _, e := range evs {
		require.False(t, seen[e.Seq], "event %d stored twice", e.Seq)
		seen[e.Seq] = true
	}
	require.Len(t, seen, 62)
}
